"""`train.scheduler: {type: ReduceLROnPlateau, monitor: <value>, step_every: N, ...}` for every model.

`monitor` is a logged training value (its mean over `step_every` iterations steps the schedulers; default
`print_freq`) or a validation metric (stepped at each validation). For a validation metric `mode` follows
the direction the metric declares (`min` for FID, `max` for PSNR) unless the block gives one.
"""

from __future__ import annotations

from typing import Any

import torch


class PlateauMixin:
    """Expects BaseModel (`opt`, `schedulers`, `log_dict`, ValidationMixin)."""

    default_plateau_monitor: str | None = None  # a model may name its natural training value (GANModel: l_g)
    plateau_monitor: str | None = None

    def plateau_options(self, sched_opt: dict) -> dict:
        """Take `monitor` and `step_every` out of a ReduceLROnPlateau block; return the scheduler's kwargs."""
        sched_opt = dict(sched_opt)
        monitor = sched_opt.pop('monitor', self.default_plateau_monitor)
        if not monitor:
            names = ', '.join(self.validation_metric_types()) or 'none'
            raise KeyError('train.scheduler.monitor: ReduceLROnPlateau needs the logged value or validation '
                           f'metric to watch; validation metrics: {names}.')
        self.plateau_monitor = monitor
        self.plateau_every = int(sched_opt.pop('step_every', self._print_freq()))
        if monitor in self.validation_metric_types() and 'mode' not in sched_opt:
            sched_opt['mode'] = 'min' if self.metric_better(monitor) == 'lower' else 'max'
        self._plateau_sum, self._plateau_count, self._plateau_seen = 0.0, 0, False
        return sched_opt

    def _print_freq(self) -> int:
        return int((self.opt.get('logger') or {}).get('print_freq', 100))

    def plateau_grace_iters(self) -> int:
        """Iterations after which a monitored training value must have been logged at least once."""
        return self._print_freq()

    def observe_plateau(self, current_iter: int) -> None:
        """Average the monitored training value over `step_every` iterations, then step the schedulers."""
        monitor = self.plateau_monitor
        if monitor is None or monitor in self.validation_metric_types():
            return
        if monitor not in self.log_dict:
            if current_iter > self.plateau_grace_iters() and not self._plateau_seen:
                raise KeyError(f'train.scheduler.monitor: {monitor!r} is not a logged value; logged: '
                               f'{", ".join(self.log_dict)}; or a validation metric: '
                               f'{", ".join(self.validation_metric_types()) or "none"}.')
            return
        self._plateau_seen = True
        self._plateau_sum += float(self.log_dict[monitor])
        self._plateau_count += 1
        if self._plateau_count >= self.plateau_every:
            self.step_plateau(self._plateau_sum / self._plateau_count)
            self._plateau_sum, self._plateau_count = 0.0, 0

    def step_plateau(self, value: float) -> None:
        for s in self.schedulers:
            if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
                s.step(value)

    def after_validation(self, results: dict) -> None:
        if self.is_train and self.plateau_monitor in results:
            self.step_plateau(results[self.plateau_monitor])

    def plateau_state(self) -> dict[str, Any]:
        return {'plateau_acc': [self._plateau_sum, self._plateau_count]} if self.plateau_monitor else {}

    def load_plateau_state(self, state: dict) -> None:
        if self.plateau_monitor is not None and 'plateau_acc' in state:
            self._plateau_sum, self._plateau_count = float(state['plateau_acc'][0]), int(state['plateau_acc'][1])
