"""gfpgan: a registry- and YAML-driven framework for training and running face-restoration GANs.

Importing the package is cheap: networks, datasets, losses and models are imported when a registry
is first asked for a name (or when their module is imported directly).
"""
from __future__ import annotations

from typing import Any

__version__ = '2.0.0.dev0'
__all__ = ['GFPGANer', '__version__']


def __getattr__(name: str) -> Any:
    if name == 'GFPGANer':
        from gfpgan.restorer import GFPGANer
        return GFPGANer
    raise AttributeError(f"module 'gfpgan' has no attribute {name!r}")
