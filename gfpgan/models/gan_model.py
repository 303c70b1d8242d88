"""GANModel: unconditional image synthesis (DCGAN, lightweight GAN, ...) through the training framework.

One D step per iteration and one G step every `net_d_iters` iterations, each optionally split into
`accumulate_grad_batches` micro-batches (DDP gradient sync only on the last one). Options under `train`:

    gan_opt: {type: GANLoss, gan_type: vanilla|lsgan|wgan|wgan_softplus|hinge, loss_weight: 1}
    optim_g / optim_d: {type: Adam, lr: 2e-4, betas: [0.5, 0.999]}
    scheduler: {type: ReduceLROnPlateau, monitor: l_g | fid | <logged key>, step_every: 100, factor, patience}
    net_d_iters: 1            # n-critic: G is updated every n-th iteration
    net_d_init_iters: 0       # D-only warm-up iterations
    accumulate_grad_batches: 1
    r1_reg_weight: 0          # R1 on reals (lazy: every `net_d_reg_every` iterations, scaled up to match)
    net_d_reg_every: 1
    gp_weight: 0              # WGAN-GP gradient penalty
    recon_weight: 1           # weight of a discriminator's self-supervised reconstruction loss, if it has one
    diffaug: {policy: 'color,translation,cutout', prob: 1.0 | auto, target: 0.6, speed_imgs: 100000,
              num_images: 500}   # auto: adaptive, starting from a guess for a dataset of that size
    ema_decay: 0.999          # 0 turns the EMA generator off
    ema_start_iter: 0         # before it, the EMA copy just follows the generator
    data_range: [0, 1]        # range of the dataset's `gt` tensors; mapped to the generator's [-1, 1]
    amp: false | bf16 | fp16  # also read from the top-level `amp`

Options under `val`: `val_freq` (FID every N iterations, when a `val` dataset of real images is given),
`fid: {num_samples, batch_size, ...}` (see `GANModel.fid_options`), `grids: {freq, num, nrow}` (sample
grids from fixed latents, raw and EMA), `keep_best: true | fid | fid_ema` (`models/net_g_best.pth` on a new best).

Logged: `l_d` (= `l_d_real` + `l_d_fake`), `l_g`, `D(x)` and `D(G(z))_d` (mean D output on reals / fakes in the
D step), `D(G(z))_pre_g` / `D(G(z))_post_g` (on the G step's latents before / after G's update; post at print
iterations only), plus `l_d_recon`, `l_d_gp`, `l_d_r1`, `aug_prob` when used. D outputs are probabilities
for BCE (`vanilla`) and raw scores otherwise. A loss-curve PNG is redrawn at each checkpoint.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
from collections import OrderedDict
from typing import Any, Iterator

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gfpgan.archs import build_network
from gfpgan.archs.diffaugment import AdaptiveAugmentProbability, DiffAugment, aug_prob_for_dataset_size
from gfpgan.losses import build_loss
from gfpgan.models.base_model import BaseModel
from gfpgan.models.gan_evaluation import FIDValidationMixin
from gfpgan.models.gan_sampling import generate, latent_dim_of, make_grid
from gfpgan.models.lr_scheduler import build_scheduler
from gfpgan.utils.checkpoint_io import atomic_write
from gfpgan.utils.dist import get_dist_info
from gfpgan.utils.image_io import imwrite
from gfpgan.utils.registry import MODEL_REGISTRY


def _set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


@MODEL_REGISTRY.register()
class GANModel(FIDValidationMixin, BaseModel):
    """Any `network_g` (latent -> image) against any `network_d` (image -> logits); see the module docstring."""

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.net_g = self.model_to_device(build_network(opt['network_g'], 'network_g'))
        self.print_network(self.net_g)
        self.latent_dim = latent_dim_of(self.get_bare_model(self.net_g), opt['network_g'])
        path = opt.get('path') or {}
        if path.get('pretrain_network_g'):
            key = path.get('param_key_g', 'params')
            if self.is_train and path.get('resume_state'):
                key = 'params'  # resuming: the trained weights, whatever param_key_g picks for a fresh start
            self.load_network(self.net_g, path['pretrain_network_g'], path.get('strict_load_g', True), key)
        grids = (opt.get('val') or {}).get('grids') or {}
        seed = int(opt.get('manual_seed') or 0)
        self.fixed_z = torch.randn(int(grids.get('num', 16)), self.latent_dim,
                                   generator=torch.Generator().manual_seed(seed + 2024))
        low, high = (opt.get('train') or {}).get('data_range', (0, 1))
        self.data_range = (float(low), float(high))  # of the datasets' `gt`; G works in [-1, 1]
        self.history: list[dict[str, float]] = []  # logged values at print iterations, for the loss curve
        self.net_g_ema = None
        self.plateau_monitor = None
        if self.is_train:
            self.init_training_settings()

    # ------------------------------------------------------------------ set-up
    def init_training_settings(self) -> None:
        train_opt = self.opt['train']
        path = self.opt.get('path') or {}
        self.net_g.train()
        self.net_d = self.model_to_device(build_network(self.opt['network_d'], 'network_d'))
        self.print_network(self.net_d)
        if path.get('pretrain_network_d'):
            self.load_network(self.net_d, path['pretrain_network_d'], path.get('strict_load_d', True),
                              path.get('param_key_d', 'params'))
        self.net_d.train()
        self.d_has_aux = bool(getattr(self.get_bare_model(self.net_d), 'returns_aux_loss', False))

        self.ema_decay = float(train_opt.get('ema_decay', 0) or 0)
        self.ema_start_iter = int(train_opt.get('ema_start_iter', 0))
        if self.ema_decay > 0:
            self.net_g_ema = build_network(self.opt['network_g'], 'network_g').to(self.device)
            if path.get('pretrain_network_g'):
                self.load_network(self.net_g_ema, path['pretrain_network_g'], True, 'params_ema')
            else:
                self.model_ema(0)
            self.net_g_ema.eval()
            _set_requires_grad(self.net_g_ema, False)

        if 'gan_opt' not in train_opt:
            raise KeyError("GANModel: train.gan_opt is required, e.g. {type: GANLoss, gan_type: vanilla}.")
        self.gan_type = train_opt['gan_opt'].get('gan_type')
        self.cri_gan = build_loss(train_opt['gan_opt'], 'train.gan_opt').to(self.device)
        self.r1_reg_weight = float(train_opt.get('r1_reg_weight', 0) or 0)
        self.net_d_reg_every = int(train_opt.get('net_d_reg_every', 1))
        self.gp_weight = float(train_opt.get('gp_weight', 0) or 0)
        self.recon_weight = float(train_opt.get('recon_weight', 1.0))
        self.net_d_iters = int(train_opt.get('net_d_iters', 1))
        self.net_d_init_iters = int(train_opt.get('net_d_init_iters', 0))
        self.accumulate = int(train_opt.get('accumulate_grad_batches', 1))
        if self.accumulate < 1 or self.net_d_iters < 1 or self.net_d_reg_every < 1:
            raise ValueError('train: accumulate_grad_batches, net_d_iters and net_d_reg_every must be >= 1.')
        self._setup_diffaug(train_opt.get('diffaug'))
        self._setup_amp(train_opt.get('amp', self.opt.get('amp')))

        self.setup_optimizers()
        self.setup_schedulers()

    def _setup_diffaug(self, aug_opt: dict | None) -> None:
        self.ada = None
        if not aug_opt:
            self.diffaug = None
            return
        aug_opt = dict(aug_opt)
        prob = aug_opt.pop('prob', 1.0)
        policy = aug_opt.pop('policy', 'color,translation,cutout')
        if prob == 'auto':  # ADA-style control, starting from a guess by dataset size when it is given
            num_images = aug_opt.pop('num_images', None)
            if num_images and 'init_prob' not in aug_opt:
                aug_opt['init_prob'] = aug_prob_for_dataset_size(int(num_images))
            self.ada = AdaptiveAugmentProbability(**aug_opt)
            prob = self.ada.prob
        elif aug_opt:
            raise KeyError(f'train.diffaug: {sorted(aug_opt)} only apply with prob: auto.')
        self.diffaug = DiffAugment(policy, float(prob))

    def _setup_amp(self, amp: Any) -> None:
        """`amp`: false, true (bf16 on CPU, fp16 on CUDA), 'bf16' or 'fp16' (fp16 gets a gradient scaler)."""
        if amp in (None, False, 'none', 'false'):
            self.amp_dtype = None
        elif amp is True:
            self.amp_dtype = torch.float16 if self.device.type == 'cuda' else torch.bfloat16
        elif amp in ('bf16', 'bfloat16'):
            self.amp_dtype = torch.bfloat16
        elif amp in ('fp16', 'float16'):
            self.amp_dtype = torch.float16
        else:
            raise ValueError(f"amp: expected false, true, 'bf16' or 'fp16', got {amp!r}.")
        use_scaler = self.amp_dtype == torch.float16 and self.device.type == 'cuda'
        self.scaler_g = torch.amp.GradScaler('cuda', enabled=use_scaler)
        self.scaler_d = torch.amp.GradScaler('cuda', enabled=use_scaler)

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def setup_optimizers(self) -> None:
        train_opt = self.opt['train']
        for label, net in (('g', self.net_g), ('d', self.net_d)):
            if f'optim_{label}' not in train_opt:
                raise KeyError(f'GANModel: train.optim_{label} is required, e.g. {{type: Adam, lr: 2e-4}}.')
            optim_opt = dict(train_opt[f'optim_{label}'])
            params = [p for p in net.parameters() if p.requires_grad]
            setattr(self, f'optimizer_{label}', self.get_optimizer(optim_opt.pop('type'), params, **optim_opt))
        self.optimizers += [self.optimizer_g, self.optimizer_d]

    def setup_schedulers(self) -> None:
        """As BaseModel, plus ReduceLROnPlateau stepped with the mean of a monitored value."""
        sched_opt = dict((self.opt.get('train') or {}).get('scheduler') or {})
        self.plateau_monitor = None
        if not sched_opt:
            return
        if sched_opt.get('type') == 'ReduceLROnPlateau':
            self.plateau_monitor = sched_opt.pop('monitor', 'l_g')
            default_every = int((self.opt.get('logger') or {}).get('print_freq', 100))
            self.plateau_every = int(sched_opt.pop('step_every', default_every))
            self._plateau_sum, self._plateau_count, self._plateau_seen = 0.0, 0, False
        self.schedulers = [build_scheduler(o, sched_opt) for o in self.optimizers]

    # ------------------------------------------------------------------ data
    def feed_data(self, data: dict) -> None:
        low, high = self.data_range
        self.real = ((data['gt'].to(self.device, non_blocking=True).float() - low) / (high - low)) * 2 - 1

    def sample_latents(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.device)

    # ------------------------------------------------------------------ scores
    def _score(self, logits: torch.Tensor) -> torch.Tensor:
        """Mean D output as logged: a probability for BCE (vanilla), the raw score otherwise."""
        logits = logits.detach().float()
        return torch.sigmoid(logits).mean() if self.gan_type == 'vanilla' else logits.mean()

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return self.diffaug(x) if self.diffaug is not None else x

    def _micro_batches(self, net: nn.Module, *tensors: torch.Tensor) -> Iterator[tuple]:
        """Yield `accumulate` aligned chunks; DDP skips its gradient all-reduce on all but the last."""
        n = tensors[0].shape[0]
        if n % self.accumulate:
            raise ValueError(f'GANModel: the batch of {n} does not split into accumulate_grad_batches='
                             f'{self.accumulate} equal micro-batches; make batch_size_per_gpu a multiple of it.')
        chunks = list(zip(*(t.chunk(self.accumulate) for t in tensors)))
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            ctx = net.no_sync() if isinstance(net, DistributedDataParallel) and not last else contextlib.nullcontext()
            with ctx:
                yield chunk

    # ------------------------------------------------------------------ D and G backward passes
    def backward_d(self, real: torch.Tensor, z: torch.Tensor, current_iter: int) -> dict[str, torch.Tensor]:
        """Accumulate D's gradients for reals `real` and fakes G(z); return the batch-mean losses and scores."""
        from gfpgan.losses.regularizers import gradient_penalty_loss, r1_penalty

        bare_g = self.get_bare_model(self.net_g)
        do_r1 = self.r1_reg_weight > 0 and current_iter % self.net_d_reg_every == 0
        logs: dict[str, torch.Tensor] = OrderedDict()

        def add(key: str, value: torch.Tensor) -> None:
            logs[key] = logs.get(key, 0) + value.detach().float() / self.accumulate

        for real_i, z_i in self._micro_batches(self.net_d, real, z):
            with torch.no_grad(), self._autocast():
                fake_i = bare_g(z_i)
            real_in, fake_in = self._augment(real_i), self._augment(fake_i.float())
            with self._autocast():
                out_real = self.net_d(real_in, calc_aux_loss=True) if self.d_has_aux else self.net_d(real_in)
                real_pred, l_recon = out_real if self.d_has_aux else (out_real, None)
                fake_pred = self.net_d(fake_in)
            real_pred, fake_pred = real_pred.float(), fake_pred.float()
            l_real = self.cri_gan(real_pred, True, is_disc=True)
            l_fake = self.cri_gan(fake_pred, False, is_disc=True)
            total = l_real + l_fake
            add('l_d_real', l_real)
            add('l_d_fake', l_fake)
            add('l_d', l_real + l_fake)
            add('D(x)', self._score(real_pred))
            add('D(G(z))_d', self._score(fake_pred))
            if self.ada is not None:
                self.diffaug.prob = self.ada.update(real_pred)
            if l_recon is not None:
                total = total + self.recon_weight * l_recon.float()
                add('l_d_recon', l_recon)
            if self.gp_weight > 0:
                l_gp = self.gp_weight * gradient_penalty_loss(self.net_d, real_in.detach(), fake_in.detach())
                total = total + l_gp
                add('l_d_gp', l_gp)
            if do_r1:
                real_r1 = real_in.detach().requires_grad_(True)
                l_r1 = r1_penalty(self.net_d(real_r1), real_r1)
                total = total + self.r1_reg_weight / 2 * self.net_d_reg_every * l_r1
                add('l_d_r1', l_r1)
            self.scaler_d.scale(total / self.accumulate).backward()
        return logs

    def backward_g(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Accumulate G's gradients for fakes G(z) judged by D (D's weights get no gradient)."""
        bare_d = self.get_bare_model(self.net_d)  # D is not updated here, so no DDP sync for it
        logs: dict[str, torch.Tensor] = OrderedDict()
        _set_requires_grad(bare_d, False)
        try:
            for (z_i,) in self._micro_batches(self.net_g, z):
                with self._autocast():
                    fake_i = self.net_g(z_i)
                fake_pred = bare_d(self._augment(fake_i.float()))
                fake_pred = fake_pred.float()
                l_g = self.cri_gan(fake_pred, True, is_disc=False)
                logs['l_g'] = logs.get('l_g', 0) + l_g.detach() / self.accumulate
                logs['D(G(z))_pre_g'] = logs.get('D(G(z))_pre_g', 0) + self._score(fake_pred) / self.accumulate
                self.scaler_g.scale(l_g / self.accumulate).backward()
        finally:
            _set_requires_grad(bare_d, True)
        return logs

    # ------------------------------------------------------------------ one iteration
    def optimize_parameters(self, current_iter: int) -> None:
        batch = self.real.shape[0]
        self.optimizer_d.zero_grad(set_to_none=True)
        logs = self.backward_d(self.real, self.sample_latents(batch), current_iter)
        self.scaler_d.step(self.optimizer_d)
        self.scaler_d.update()

        g_step = current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters
        log_now = current_iter % self._print_freq() == 0
        if g_step:
            self.optimizer_g.zero_grad(set_to_none=True)
            z = self.sample_latents(batch)
            logs.update(self.backward_g(z))
            self.scaler_g.step(self.optimizer_g)
            self.scaler_g.update()
            if log_now:  # how D judges the same latents once G has moved
                logs['D(G(z))_post_g'] = self._score_after_g_step(z)
            if self.net_g_ema is not None:
                self.model_ema(self.ema_decay if current_iter >= self.ema_start_iter else 0.0)
        if self.diffaug is not None and self.ada is not None:
            logs['aug_prob'] = torch.tensor(self.diffaug.prob)
        self.log_dict = self.reduce_loss_dict(logs)
        if log_now:
            self.history.append({'iter': float(current_iter), **self.log_dict})
        self._observe_plateau(current_iter)
        grids = (self.opt.get('val') or {}).get('grids') or {}
        freq = int(grids.get('freq', 0) or 0)
        if freq and current_iter % freq == 0:
            self.save_sample_grids(current_iter)

    @torch.no_grad()
    def _score_after_g_step(self, z: torch.Tensor) -> torch.Tensor:
        """D's mean output on (augmented, as in the G step) G(z), leaving no trace: the RNG and BatchNorm
        statistics are restored afterwards, so how often one logs never changes the training."""
        nets = [self.get_bare_model(self.net_g), self.get_bare_model(self.net_d)]
        saved = [[b.clone() for b in net.buffers()] for net in nets]
        try:
            with torch.random.fork_rng(devices=[self.device] if self.device.type == 'cuda' else []), \
                    self._autocast():
                return self._score(nets[1](self._augment(nets[0](z).float())))
        finally:
            for net, bufs in zip(nets, saved):
                for b, old in zip(net.buffers(), bufs):
                    b.copy_(old)

    def _print_freq(self) -> int:
        return int((self.opt.get('logger') or {}).get('print_freq', 100))

    # ------------------------------------------------------------------ plateau scheduler
    def _observe_plateau(self, current_iter: int) -> None:
        """Average the monitored training value over `step_every` iterations, then step the schedulers."""
        if self.plateau_monitor is None or self.plateau_monitor in self._validation_metrics():
            return
        if self.plateau_monitor not in self.log_dict:
            # G's values appear only on G steps (net_d_iters, warm-up) and post-G scores only on print steps
            late = current_iter > self.net_d_init_iters + self.net_d_iters * self._print_freq()
            if late and not self._plateau_seen:
                raise KeyError(f'train.scheduler.monitor: {self.plateau_monitor!r} is not a logged value; '
                               f'logged: {", ".join(self.log_dict)}; or a validation metric: fid, fid_ema.')
            return
        self._plateau_seen = True
        self._plateau_sum += float(self.log_dict[self.plateau_monitor])
        self._plateau_count += 1
        if self._plateau_count >= self.plateau_every:
            self.step_plateau(self._plateau_sum / self._plateau_count)
            self._plateau_sum, self._plateau_count = 0.0, 0

    def _validation_metrics(self) -> tuple[str, ...]:
        return ('fid', 'fid_ema')

    def step_plateau(self, value: float) -> None:
        for s in self.schedulers:
            if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
                s.step(value)

    # ------------------------------------------------------------------ sampling and visuals
    def generate(self, z: torch.Tensor, ema: bool = False) -> torch.Tensor:
        """Images in [-1, 1] (CPU) from latents, by the raw or the EMA generator, in eval mode."""
        net = self.net_g_ema if ema and self.net_g_ema is not None else self.get_bare_model(self.net_g)
        return generate(net, z)

    def save_sample_grids(self, current_iter: int) -> list[str]:
        """Write `visualization/samples_<iter>.png` (and `samples_ema_<iter>.png`) from the fixed latents."""
        if get_dist_info()[0] != 0:
            return []
        nrow = int(((self.opt.get('val') or {}).get('grids') or {}).get('nrow', 0) or 0)
        nrow = nrow or max(1, int(math.sqrt(self.fixed_z.shape[0])))
        folder = self.opt['path']['visualization']
        written = []
        for tag, ema in (('samples', False), ('samples_ema', True)):
            if ema and self.net_g_ema is None:
                continue
            path = os.path.join(folder, f'{tag}_{current_iter:08d}.png')
            imwrite(make_grid(self.generate(self.fixed_z, ema=ema), nrow=nrow), path)
            written.append(path)
        return written

    @torch.no_grad()
    def test(self) -> None:
        self.output = self.generate(self.fixed_z, ema=self.net_g_ema is not None)

    def get_current_visuals(self) -> dict[str, torch.Tensor]:
        return OrderedDict(result=(self.output + 1) / 2)

    def save_loss_curve(self) -> str | None:
        """Plot the logged losses and scores to `visualization/loss_curve.png` (skipped without matplotlib)."""
        if get_dist_info()[0] != 0 or not self.history:
            return None
        try:
            import matplotlib
            matplotlib.use('Agg')
            import matplotlib.pyplot as plt
        except Exception as err:  # optional dependency
            logging.getLogger('gfpgan').warning(f'No loss curve: matplotlib is not available ({err}).')
            return None
        iters = [h['iter'] for h in self.history]
        fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(11, 4))
        for ax, keys in ((ax_loss, ('l_d', 'l_g')), (ax_score, ('D(x)', 'D(G(z))_pre_g', 'D(G(z))_post_g'))):
            for key in keys:
                pts = [(i, h[key]) for i, h in zip(iters, self.history) if key in h]
                if pts:
                    ax.plot(*zip(*pts), label=key)
            ax.set_xlabel('iteration')
            ax.legend()
            ax.grid(alpha=0.3)
        ax_loss.set_title('losses')
        ax_score.set_title('D outputs (probabilities)' if self.gan_type == 'vanilla' else 'D outputs (scores)')
        fig.tight_layout()
        path = os.path.join(self.opt['path']['visualization'], 'loss_curve.png')
        atomic_write(path, lambda tmp: fig.savefig(tmp, format='png', dpi=90))
        plt.close(fig)
        return path

    # ------------------------------------------------------------------ checkpoints
    def save(self, epoch: int, current_iter: int) -> None:
        if self.net_g_ema is not None:
            self.save_network([self.net_g, self.net_g_ema], 'net_g', current_iter, ['params', 'params_ema'])
        else:
            self.save_network(self.net_g, 'net_g', current_iter)
        self.save_network(self.net_d, 'net_d', current_iter)
        self.save_loss_curve()

    def save_training_state(self, epoch: int, current_iter: int, extra: dict | None = None) -> str | None:
        state = {'history': self.history}
        if self.ada is not None:
            state['ada'] = self.ada.state_dict()
        if self.plateau_monitor is not None:
            state['plateau_acc'] = [self._plateau_sum, self._plateau_count]
        return super().save_training_state(epoch, current_iter, {**(extra or {}), 'gan_model': state})

    def resume_training(self, resume_state: dict) -> None:
        super().resume_training(resume_state)
        state = resume_state.get('gan_model') or {}
        self.history = list(state.get('history', []))
        if self.ada is not None and 'ada' in state:
            self.ada.load_state_dict(state['ada'])
            self.diffaug.prob = self.ada.prob
        if self.plateau_monitor is not None and 'plateau_acc' in state:
            self._plateau_sum, self._plateau_count = float(state['plateau_acc'][0]), int(state['plateau_acc'][1])
