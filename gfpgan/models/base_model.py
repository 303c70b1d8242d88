"""BaseModel: the lifecycle every training recipe shares, so a recipe holds only what is its own.

Shared here (one concept per mixin file): networks, pretrained loading, DDP/compile wrapping, EMA and
checkpoints (`networks.py`); AMP and channels_last (`precision.py`); the validation loop, best values,
best checkpoint and image naming (`validation.py`); ReduceLROnPlateau on a logged value or a validation
metric (`plateau.py`); `degrade_on: device` (`device_degradation.py`); and
below, the recipe's `train:` options, optimizers and schedulers from their registries, learning-rate
warm-up, training state, loss reduction.

A recipe subclasses it, declares its `train:` keys as `train_options` (a pydantic model; the values are
read from `self.train_opt`, so a declared key that nothing reads cannot exist), its `val:` keys as
`val_options` and the networks it builds as `networks` (the option validator reads all three), and fills in the hooks
`feed_data`, `optimize_parameters` and `save` (`test` and `get_current_visuals` serve paired restoration
as they are).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar, Iterable

import torch

from gfpgan.models.device_degradation import DeviceDegradationMixin
from gfpgan.models.lr_scheduler import build_scheduler
from gfpgan.models.networks import NetworkMixin
from gfpgan.models.optimizers import build_optimizer
from gfpgan.models.plateau import PlateauMixin
from gfpgan.models.precision import PrecisionMixin
from gfpgan.models.validation import ValidationMixin
from gfpgan.utils.checkpoint_io import save_checkpoint
from gfpgan.utils.dist import all_reduce_sum, get_dist_info
from gfpgan.utils.logger import get_root_logger
from gfpgan.utils.option_schema import TrainOptionsBase, ValOptions


class BaseModel(NetworkMixin, PrecisionMixin, PlateauMixin, ValidationMixin, DeviceDegradationMixin):
    """Shared machinery of training recipes; see the module docstring."""

    train_options: ClassVar[type[TrainOptionsBase]] = TrainOptionsBase  # the `train:` keys it reads
    val_options: ClassVar[type[ValOptions]] = ValOptions  # the `val:` keys it reads
    networks: ClassVar[tuple[str, ...]] = ('g',)  # the <x> of every network_<x> block it builds

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.device = torch.device('cuda' if opt.get('num_gpu', 0) != 0 and torch.cuda.is_available() else 'cpu')
        if self.device.type == 'cuda':
            self.device = torch.device('cuda', torch.cuda.current_device())
        self.is_train = opt.get('is_train', False)
        self.optimizers: list[torch.optim.Optimizer] = []
        self.schedulers: list[Any] = []
        self.log_dict: OrderedDict[str, float] = OrderedDict()
        self.best_metric_results: dict[str, dict[str, dict[str, float]]] = {}
        self.metric_results: dict[str, float] = {}
        self.logger = get_root_logger()
        self._lrs_before_warmup: list[list[float]] | None = None
        self.train_opt = self.train_options.model_validate(opt.get('train') or {}) if self.is_train else None
        if self.is_train and self.device.type == 'cpu':
            # Adam's second moments under small betas/loss weights decay into denormal floats, which x86
            # CPUs process ~100x slower: the optimizer steps would dominate the iteration.
            torch.set_flush_denormal(True)
        self.setup_precision()
        self.setup_device_degradation()

    # ------------------------------------------------------------------ recipe hooks
    def feed_data(self, data: dict) -> None:
        raise NotImplementedError

    def optimize_parameters(self, current_iter: int) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def test(self) -> None:
        """`output` = `eval_generator()` (the EMA one if any, else `net_g`) on `lq`, in eval mode."""
        net = self.eval_generator()
        was_training = net.training
        net.eval()
        with self.autocast():
            self.output = self.eval_forward(net, self.lq).float()
        net.train(was_training)

    def eval_forward(self, net: torch.nn.Module, lq: torch.Tensor) -> torch.Tensor:
        """The restoration network's forward at evaluation (a recipe may pass options, e.g. fixed noise)."""
        return net(lq)

    def get_current_visuals(self) -> dict[str, torch.Tensor]:
        """`lq`, `result` (and `gt` when the batch had it) as float CPU tensors (BasicSR's keys)."""
        visuals = OrderedDict(lq=self.lq.detach().float().cpu(), result=self.output.detach().float().cpu())
        if getattr(self, 'gt', None) is not None:
            visuals['gt'] = self.gt.detach().float().cpu()
        return visuals

    def save(self, epoch: int, current_iter: int) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ optimisation
    def make_optimizer(self, key: str, params: Iterable[torch.nn.Parameter], betas: tuple[float, float] | None = None,
                       ratio: float = 1.0) -> torch.optim.Optimizer:
        """The optimizer of `train.<key>` (OPTIMIZER_REGISTRY) over `params`.

        `betas`: the recipe's default when the block gives none. `ratio` scales lr and betas
        (`b ** ratio`), as lazy regularisation every k steps asks with ratio k/(k+1)."""
        cfg = getattr(self.train_opt, key, None)
        if not cfg:
            raise KeyError(f'{type(self).__name__}: train.{key} is required, e.g. {{type: Adam, lr: !!float 2e-3}}.')
        cfg = dict(cfg)
        chosen = cfg.pop('betas', betas)
        if chosen is not None:
            cfg['betas'] = tuple(float(b) ** ratio for b in chosen)
        optimizer = build_optimizer(cfg, params, f'train.{key}', lr_scale=ratio)
        self.optimizers.append(optimizer)
        return optimizer

    def setup_schedulers(self) -> None:
        """One scheduler per optimizer from `train.scheduler` (SCHEDULER_REGISTRY); see plateau.py for
        ReduceLROnPlateau's `monitor` and `step_every`."""
        opt = dict((self.train_opt.scheduler if self.train_opt is not None else None) or {})
        if not opt:
            return
        if opt.get('type') == 'ReduceLROnPlateau':
            opt = self.plateau_options(opt)
        self.schedulers = [build_scheduler(o, opt) for o in self.optimizers]

    def update_learning_rate(self, current_iter: int, warmup_iter: int = -1) -> None:
        """Step the schedulers (not ReduceLROnPlateau: it is stepped with a value), then scale by the
        linear warm-up factor `current_iter / warmup_iter` while `current_iter < warmup_iter`.

        The previous warm-up factor is undone first, so a chainable scheduler (torch's MultiStepLR) steps
        from its own rate, not from the warmed-up one."""
        if self._lrs_before_warmup is not None:
            for optimizer, lrs in zip(self.optimizers, self._lrs_before_warmup):
                for group, lr in zip(optimizer.param_groups, lrs):
                    group['lr'] = lr
            self._lrs_before_warmup = None
        if current_iter > 1:
            for s in self.schedulers:
                if not isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    s.step()
        if current_iter < warmup_iter:
            self._lrs_before_warmup = [[g['lr'] for g in o.param_groups] for o in self.optimizers]
            for optimizer in self.optimizers:
                for group in optimizer.param_groups:
                    group['lr'] = group['lr'] * current_iter / warmup_iter

    def get_current_learning_rate(self) -> list[float]:
        return [group['lr'] for group in self.optimizers[0].param_groups] if self.optimizers else []

    # ------------------------------------------------------------------ training state
    def save_training_state(self, epoch: int, current_iter: int, extra: dict | None = None) -> str | None:
        """Write `training_states/<iter>.state` atomically: optimizers, schedulers, scalers, counters, RNGs."""
        if current_iter == -1 or get_dist_info()[0] != 0:
            return None
        import os

        from gfpgan.utils.rng_state import get_rng_state

        state = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers],
            'grad_scalers': {name: s.state_dict() for name, s in self.grad_scalers.items()},
            'lrs_before_warmup': self._lrs_before_warmup,
            'rng': get_rng_state(),
            'best_metric_results': self.best_metric_results,
            **self.plateau_state(),
        }
        state.update(extra or {})
        path = os.path.join(self.opt['path']['training_states'], f'{current_iter}.state')
        save_checkpoint(state, path)
        return path

    def resume_training(self, resume_state: dict) -> None:
        """Restore optimizers, schedulers and scalers (networks were loaded from `pretrain_network_*` already)."""
        if len(resume_state['optimizers']) != len(self.optimizers):
            raise ValueError('Resume state has a different number of optimizers than this model builds.')
        for o, s in zip(self.optimizers, resume_state['optimizers']):
            o.load_state_dict(s)
        for sch, s in zip(self.schedulers, resume_state['schedulers']):
            sch.load_state_dict(s)
        for name, s in (resume_state.get('grad_scalers') or {}).items():
            if name in self.grad_scalers and s:
                self.grad_scalers[name].load_state_dict(s)
        self._lrs_before_warmup = resume_state.get('lrs_before_warmup')
        self.load_plateau_state(resume_state)
        self.best_metric_results = resume_state.get('best_metric_results', {}) or {}

    # ------------------------------------------------------------------ logging
    def reduce_loss_dict(self, loss_dict: dict[str, torch.Tensor]) -> OrderedDict[str, float]:
        """Average each loss over ranks and return plain floats (one collective for all of them)."""
        names = list(loss_dict)
        if not names:
            return OrderedDict()
        values = torch.stack([torch.as_tensor(loss_dict[k]).detach().float().mean().to(self.device) for k in names])
        world = get_dist_info()[1]
        if world > 1:
            all_reduce_sum(values)
            values /= world
        return OrderedDict(zip(names, values.cpu().tolist()))

    def get_current_log(self) -> OrderedDict[str, float]:
        return self.log_dict
