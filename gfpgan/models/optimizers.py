"""Optimizers for `train.optim_<x>.type`: torch's own classes, registered under their torch names.

`OPTIMIZER_REGISTRY.get('Adam')` is `torch.optim.Adam`; a project or user optimizer registers beside
them (`@OPTIMIZER_REGISTRY.register()`), so each YAML `type` is one registry lookup.
"""
from __future__ import annotations

import inspect
from typing import Any, Iterable

import torch

from gfpgan.utils.registry import OPTIMIZER_REGISTRY

for _name, _cls in sorted(vars(torch.optim).items()):
    if inspect.isclass(_cls) and issubclass(_cls, torch.optim.Optimizer) and _cls is not torch.optim.Optimizer:
        OPTIMIZER_REGISTRY.register(_cls, name=_name)


def build_optimizer(opt: dict, params: Iterable[Any], what: str, lr_scale: float = 1.0) -> torch.optim.Optimizer:
    """`{type, lr, **kwargs}` -> the registered optimizer over `params`; `betas` lists become tuples.

    `lr_scale` multiplies `lr` (GFPGAN's lazy-R1 discriminator runs at k/(k+1) of the given rate).
    """
    cfg = dict(opt)
    if 'type' not in cfg or 'lr' not in cfg:
        raise KeyError(f"{what}: an optimizer block needs 'type' (e.g. Adam) and 'lr'; got {sorted(cfg)}.")
    kind = cfg.pop('type')
    if kind not in OPTIMIZER_REGISTRY:
        OPTIMIZER_REGISTRY.get(kind)  # raises with the close names and the choices
    if 'betas' in cfg:
        cfg['betas'] = tuple(float(b) for b in cfg['betas'])
    cfg['lr'] = float(cfg['lr']) * lr_scale
    try:
        return OPTIMIZER_REGISTRY.get(kind)(list(params), **cfg)
    except TypeError as err:
        raise TypeError(f'{what} (type {kind}): {err}.') from err
