import sys

from gfpgan.gan.cli import main

sys.exit(main())
