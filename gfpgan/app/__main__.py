"""`python -m gfpgan.app`: see `gfpgan.app.cli`."""
import sys

from gfpgan.app.cli import main

sys.exit(main())
