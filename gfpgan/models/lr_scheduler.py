"""Learning-rate schedulers beyond torch's own, picked by name from `train.scheduler.type`."""

from __future__ import annotations

import math
from typing import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class MultiStepRestartLR(LRScheduler):
    """MultiStepLR with optional restarts (BasicSR): lr x gamma at each milestone, reset at each restart."""

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Sequence[int],
        gamma: float = 0.1,
        restarts: Sequence[int] = (0,),
        restart_weights: Sequence[float] = (1,),
        last_epoch: int = -1,
    ) -> None:
        self.milestones, self.gamma = sorted(milestones), gamma
        self.restarts, self.restart_weights = list(restarts), list(restart_weights)
        if len(self.restarts) != len(self.restart_weights):
            raise ValueError('scheduler: restarts and restart_weights must have the same length.')
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t = self.last_epoch
        start = max([r for r in self.restarts if r <= t], default=0)
        weight = self.restart_weights[self.restarts.index(start)] if start in self.restarts else 1
        decays = sum(1 for m in self.milestones if start < m <= t)
        return [base * weight * self.gamma**decays for base in self.base_lrs]


class CosineAnnealingRestartLR(LRScheduler):
    """Cosine annealing over consecutive periods, each restarting at base lr x its restart weight."""

    def __init__(
        self,
        optimizer: Optimizer,
        periods: Sequence[int],
        restart_weights: Sequence[float] = (1,),
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if len(periods) != len(restart_weights):
            raise ValueError('scheduler: periods and restart_weights must have the same length.')
        self.periods, self.restart_weights, self.eta_min = list(periods), list(restart_weights), eta_min
        self.cumulative = [sum(self.periods[: i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t = self.last_epoch
        idx = next((i for i, c in enumerate(self.cumulative) if t <= c), len(self.periods) - 1)
        start = self.cumulative[idx - 1] if idx > 0 else 0
        weight, period = self.restart_weights[idx], self.periods[idx]
        cos = 0.5 * (1 + math.cos(math.pi * min(t - start, period) / period))
        return [self.eta_min + weight * cos * (base - self.eta_min) for base in self.base_lrs]


SCHEDULERS = {
    'MultiStepLR': MultiStepRestartLR,
    'MultiStepRestartLR': MultiStepRestartLR,
    'CosineAnnealingRestartLR': CosineAnnealingRestartLR,
}


def build_scheduler(optimizer: Optimizer, opt: dict):
    """Build a scheduler from `{type: ..., **kwargs}`; ReduceLROnPlateau is torch's and is stepped with a value."""
    from torch.optim import lr_scheduler

    kwargs = {k: v for k, v in opt.items() if k not in ('type', 'monitor')}
    kind = opt.get('type')
    if kind in SCHEDULERS:
        return SCHEDULERS[kind](optimizer, **kwargs)
    if kind == 'ReduceLROnPlateau':
        return lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
    if kind and hasattr(lr_scheduler, kind):
        return getattr(lr_scheduler, kind)(optimizer, **kwargs)
    raise ValueError(
        f'train.scheduler.type: unknown scheduler {kind!r}. Choices: {", ".join(SCHEDULERS)}, ReduceLROnPlateau, '
        'or any torch.optim.lr_scheduler class.'
    )
