"""Learning-rate schedulers for `train.scheduler.type`, all in SCHEDULER_REGISTRY.

torch's schedulers are registered under their torch names, with torch's meaning (`MultiStepLR` is
torch's); BasicSR's `MultiStepRestartLR` and `CosineAnnealingRestartLR` are defined here under BasicSR's
names. `ReduceLROnPlateau` is stepped by the model with a monitored value (`monitor`), not per iteration.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Sequence

from torch.optim import Optimizer, lr_scheduler
from torch.optim.lr_scheduler import LRScheduler

from gfpgan.utils.registry import SCHEDULER_REGISTRY

# schedulers that take callables or other schedulers cannot come from an option file
_NOT_FROM_YAML = ('LRScheduler', 'LambdaLR', 'MultiplicativeLR', 'SequentialLR', 'ChainedScheduler')
for _name, _cls in sorted(vars(lr_scheduler).items()):
    if (inspect.isclass(_cls) and not _name.startswith('_') and _name not in _NOT_FROM_YAML
            and issubclass(_cls, (LRScheduler, lr_scheduler.ReduceLROnPlateau))):
        SCHEDULER_REGISTRY.register(_cls, name=_name)

MODEL_KEYS = ('type', 'monitor', 'step_every')  # read by the models, not passed to the scheduler


@SCHEDULER_REGISTRY.register()
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


@SCHEDULER_REGISTRY.register()
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


def build_scheduler(optimizer: Optimizer, opt: dict) -> Any:
    """The registered scheduler `opt['type']` over `optimizer`, with the rest of `opt` (less MODEL_KEYS)."""
    kind = opt.get('type')
    if kind not in SCHEDULER_REGISTRY:
        raise ValueError(
            f'train.scheduler.type: unknown scheduler {kind!r}. Choices: {", ".join(SCHEDULER_REGISTRY.keys())}.'
        )
    kwargs = {k: v for k, v in opt.items() if k not in MODEL_KEYS}
    try:
        return SCHEDULER_REGISTRY.get(kind)(optimizer, **kwargs)
    except TypeError as err:
        raise TypeError(f'train.scheduler (type {kind}): {err}.') from err
