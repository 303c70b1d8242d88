"""Framework utilities: registries, options, logging, distributed helpers, image and checkpoint I/O.

Only torch, numpy, cv2 and yaml are imported here, so every other layer may depend on this one.

`from gfpgan.utils import GFPGANer` and `from gfpgan.utils import FaceRestoreHelper` also work:
upstream's `gfpgan/utils.py` held both names and downstream code imports them from there. They are
resolved on first access (module `__getattr__`), so `import gfpgan.utils` never pulls in the
networks or the face tools.
"""
from __future__ import annotations

from typing import Any

# upstream name -> module that defines it here
_UPSTREAM_NAMES = {
    'GFPGANer': 'gfpgan.restorer',
    'FaceRestoreHelper': 'gfpgan.face.face_restore_helper',
}
__all__ = list(_UPSTREAM_NAMES)


def __getattr__(name: str) -> Any:
    if name in _UPSTREAM_NAMES:
        import importlib

        return getattr(importlib.import_module(_UPSTREAM_NAMES[name]), name)
    raise AttributeError(f"module 'gfpgan.utils' has no attribute {name!r}")
