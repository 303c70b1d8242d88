"""Network architectures; every `*_arch.py` module here registers its networks in ARCH_REGISTRY."""
from __future__ import annotations

import copy

from torch import nn

from gfpgan.utils.registry import ARCH_REGISTRY, build_from_registry

__all__ = ['ARCH_REGISTRY', 'build_network']


def build_network(opt: dict, what: str = 'network') -> nn.Module:
    """Build a network from an option dict `{type: <registered name>, **constructor kwargs}`."""
    return build_from_registry(ARCH_REGISTRY, copy.deepcopy(opt), what)
