"""Losses; every `*_loss.py` module here registers its losses in LOSS_REGISTRY."""
from __future__ import annotations

import copy

from torch import nn

from gfpgan.utils.registry import LOSS_REGISTRY, build_from_registry

__all__ = ['LOSS_REGISTRY', 'build_loss']


def build_loss(opt: dict, what: str = 'loss') -> nn.Module:
    """Build a loss from an option dict `{type: <registered name>, **kwargs}`."""
    return build_from_registry(LOSS_REGISTRY, copy.deepcopy(opt), what)
