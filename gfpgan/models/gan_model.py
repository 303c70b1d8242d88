"""GANModel: image synthesis (DCGAN, lightweight GAN, conditional, ACGAN, InfoGAN, BEGAN) through the framework.

One D step per iteration and one G step every `net_d_iters` iterations, each optionally split into
`accumulate_grad_batches` micro-batches (DDP gradient sync only on the last one). Options under `train`
(declared in `GANTrainOptions`; `amp`, `channels_last` and `compile` are the top-level keys of every model):

    gan_opt: {type: GANLoss, gan_type: vanilla|lsgan|wgan|wgan_softplus|hinge, loss_weight: 1}  (or ACGANLoss,
              DualContrastiveLoss; class labels, D's heads, info_opt, aux_32_weight: gan_heads.py; BEGAN's
              began_opt instead of gan_opt: gan_began.py)
    optim_g / optim_d: {type: Adam, lr: 2e-4, betas: [0.5, 0.999]}
    scheduler: {type: ReduceLROnPlateau, monitor: l_g | fid | <logged key>, step_every: 100, factor, patience}
    net_d_iters: 1            # n-critic: G is updated every n-th iteration
    net_d_init_iters: 0       # D-only warm-up iterations
    accumulate_grad_batches: 1
    r1_reg_weight: 0          # R1 on reals (lazy: every `net_d_reg_every` iterations, scaled up to match)
    net_d_reg_every: 1
    gp_weight: 0              # WGAN-GP gradient penalty (GradientPenaltyLoss)
    dragan_weight: 0          # DRAGAN penalty around perturbed reals (DRAGANLoss)
    recon_weight: 1           # weight of a discriminator's self-supervised reconstruction loss, if it has one
    diffaug: {policy: 'color,translation,cutout', prob: 1.0 | auto, target: 0.6, speed_imgs: 100000,
              num_images: 500}   # auto: adaptive, starting from a guess for a dataset of that size
    ema_decay: 0              # e.g. 0.999; 0: no EMA generator (no net_g_ema attribute)
    ema_start_iter: 0         # before it, the EMA copy just follows the generator
    data_range: [0, 1]        # range of the dataset's `gt` tensors; mapped to the generator's [-1, 1]

Options under `val`: `val_freq` (FID every N iterations, when a `val` dataset of real images is given),
`fid: {num_samples, batch_size, ...}` (see `GANModel.fid_options`), `inception_score: {weights_path, splits}`
(`is`, `is_ema` of the FID samples), `grids: {freq, num, nrow}` (sample
grids from fixed latents, raw and EMA), `keep_best: true | fid | fid_ema` (`models/net_g_best.pth` on a new best),
`save_img` (the EMA sample grid, named as every model's validation images).

Logged: `l_d` (= `l_d_real` + `l_d_fake`), `l_g`, `D(x)` and `D(G(z))_d` (mean D output on reals / fakes in the
D step), `D(G(z))_pre_g` / `D(G(z))_post_g` (on the G step's latents before / after G's update; post at print
iterations only), plus `l_d_recon`, `l_d_gp`, `l_d_r1`, `aug_prob` and the heads' `l_d_cls`, `l_g_info`, ...
when used. D outputs are probabilities for BCE (`vanilla`) and raw scores otherwise. A loss-curve PNG is
redrawn at each checkpoint.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections import OrderedDict
from typing import Iterator, Literal, Union

import torch
from pydantic import Field
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gfpgan.archs.diffaugment import AdaptiveAugmentProbability, DiffAugment, aug_prob_for_dataset_size
from gfpgan.losses.regularizer_loss import DRAGANLoss, GradientPenaltyLoss
from gfpgan.models.adversarial import AdversarialMixin
from gfpgan.models.base_model import BaseModel
from gfpgan.models.gan_began import BEGANMixin, BEGANTrainOptions
from gfpgan.models.gan_evaluation import FIDValidationMixin, GANModelValOptions
from gfpgan.models.gan_heads import GANHeadsMixin, GANHeadsTrainOptions
from gfpgan.models.gan_sampling import generate, grid_nrow, latent_dim_of, make_grid, num_classes_of, sample_inputs
from gfpgan.models.networks import set_requires_grad
from gfpgan.utils.checkpoint_io import atomic_write
from gfpgan.utils.dist import get_dist_info
from gfpgan.utils.image_io import imwrite
from gfpgan.utils.option_schema import OptionsModel
from gfpgan.utils.registry import MODEL_REGISTRY


class DiffAugOptions(OptionsModel):
    """`train.diffaug`: DiffAugment's policy and probability; with `prob: auto` the ADA controller's options."""

    policy: str = Field('color,translation,cutout', description='comma-separated DiffAugment transforms')
    prob: Union[float, Literal['auto']] = Field(1.0, description='probability per sample, or auto (adaptive)')
    num_images: Union[int, None] = Field(None, ge=1, description='auto: dataset size, for the starting probability')
    target: Union[float, None] = Field(None, description='auto: target sign(D(real)) mean')
    speed_imgs: Union[int, None] = Field(None, ge=1, description='auto: images for the probability to move by 1')
    interval: Union[int, None] = Field(None, ge=1, description='auto: update every this many D steps')
    init_prob: Union[float, None] = Field(None, ge=0, le=1, description='auto: starting probability')
    max_prob: Union[float, None] = Field(None, ge=0, le=1, description='auto: upper bound')


class GANTrainOptions(GANHeadsTrainOptions, BEGANTrainOptions):
    """`train:` keys of GANModel; the discriminator's are shared, the heads' and BEGAN's are their mixins'."""

    accumulate_grad_batches: int = Field(1, ge=1, description='micro-batches per step (DDP syncs on the last)')
    gp_weight: float = Field(0.0, ge=0, description='WGAN-GP gradient penalty weight')
    dragan_weight: float = Field(0.0, ge=0, description='DRAGAN gradient penalty weight (around perturbed reals)')
    recon_weight: float = Field(1.0, ge=0, description="weight of a discriminator's self-supervised reconstruction")
    diffaug: Union[DiffAugOptions, None] = Field(None, description='differentiable augmentation of D inputs')
    ema_decay: float = Field(0.0, ge=0, lt=1, description='EMA of G; 0: no EMA generator')
    ema_start_iter: int = Field(0, ge=0, description='before it, the EMA copy just follows G')
    data_range: tuple[float, float] = Field((0.0, 1.0), description="range of the dataset's gt tensors")


@MODEL_REGISTRY.register()
class GANModel(GANHeadsMixin, BEGANMixin, FIDValidationMixin, AdversarialMixin, BaseModel):
    """Any `network_g` (latent -> image) against any `network_d` (image -> logits); see the module docstring."""

    train_options = GANTrainOptions
    val_options = GANModelValOptions
    networks = ('g', 'd')
    default_plateau_monitor = 'l_g'

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.net_g = self.build_net('network_g')
        self.latent_dim = latent_dim_of(self.get_bare_model(self.net_g), opt['network_g'])
        self.num_classes = num_classes_of(self.get_bare_model(self.net_g))  # 0: unconditional
        self.labels: torch.Tensor | None = None  # of the real batch, when conditional
        grids = (opt.get('val') or {}).get('grids') or {}
        seed = int(opt.get('manual_seed') or 0)
        self.fixed_z, self.fixed_labels, _ = sample_inputs(  # labels cycle through the classes
            int(grids.get('num', 16)), self.latent_dim, self.num_classes, self.info_dims(),
            torch.Generator().manual_seed(seed + 2024))
        low, high = (opt.get('train') or {}).get('data_range', (0, 1))
        self.data_range = (float(low), float(high))  # of the datasets' `gt`; G works in [-1, 1]
        self.history: list[dict[str, float]] = []  # logged values at print iterations, for the loss curve
        if self.is_train:
            self.init_training_settings()

    # ------------------------------------------------------------------ set-up
    def init_training_settings(self) -> None:
        train = self.train_opt
        self.net_g.train()
        self.net_d = self.build_net('network_d')
        self.net_d.train()
        self.d_has_aux = bool(getattr(self.get_bare_model(self.net_d), 'returns_aux_loss', False))
        self.setup_ema(train.ema_decay)
        self.ema_start_iter = train.ema_start_iter
        if not self.setup_began():
            self.setup_adversarial()
        self.cri_gp = GradientPenaltyLoss(train.gp_weight) if train.gp_weight > 0 else None
        self.cri_dragan = DRAGANLoss(train.dragan_weight) if train.dragan_weight > 0 else None
        self.setup_heads()
        self.recon_weight = train.recon_weight
        self.accumulate = train.accumulate_grad_batches
        self._setup_diffaug(train.diffaug)
        self.keep_best_target()  # a wrong val.keep_best fails here, not after the first validation
        self.optimizer_g = self.make_optimizer('optim_g', [p for p in self.net_g.parameters() if p.requires_grad])
        self.optimizer_d = self.make_optimizer('optim_d', [p for p in self.net_d.parameters() if p.requires_grad])
        self.scaler_g, self.scaler_d = self.grad_scaler('g'), self.grad_scaler('d')
        self.setup_schedulers()

    def _setup_diffaug(self, aug: DiffAugOptions | None) -> None:
        self.ada = None
        if aug is None:
            self.diffaug = None
            return
        ada_opt = aug.model_dump(exclude={'policy', 'prob', 'num_images'}, exclude_none=True)
        prob = aug.prob
        if prob == 'auto':  # ADA-style control, starting from a guess by dataset size when it is given
            if aug.num_images and 'init_prob' not in ada_opt:
                ada_opt['init_prob'] = aug_prob_for_dataset_size(int(aug.num_images))
            self.ada = AdaptiveAugmentProbability(**ada_opt)
            prob = self.ada.prob
        elif ada_opt or aug.num_images:
            raise KeyError(f'train.diffaug: {sorted(ada_opt) + (["num_images"] if aug.num_images else [])} '
                           'only apply with prob: auto.')
        self.diffaug = DiffAugment(aug.policy, float(prob))

    def plateau_grace_iters(self) -> int:
        # G's values appear only on G steps (net_d_iters, warm-up) and post-G scores only on print steps
        return self.net_d_init_iters + self.net_d_iters * self._print_freq()

    # ------------------------------------------------------------------ data
    def feed_data(self, data: dict) -> None:
        low, high = self.data_range
        self.real = ((self.to_device(data['gt']).float() - low) / (high - low)) * 2 - 1
        self.read_labels(data)

    # ------------------------------------------------------------------ scores
    def _score(self, logits: torch.Tensor) -> torch.Tensor:
        """Mean D output as logged: a probability for BCE (vanilla), the raw score otherwise."""
        logits = logits.detach().float()
        return torch.sigmoid(logits).mean() if self.gan_type == 'vanilla' else logits.mean()

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return self.diffaug(x) if self.diffaug is not None else x

    def _micro_batches(self, net: nn.Module, *tensors: torch.Tensor) -> Iterator[tuple]:
        """Yield `accumulate` aligned chunks (None stays None); DDP skips its gradient all-reduce on all but
        the last."""
        n = tensors[0].shape[0]
        if n % self.accumulate:
            raise ValueError(f'GANModel: the batch of {n} does not split into accumulate_grad_batches='
                             f'{self.accumulate} equal micro-batches; make batch_size_per_gpu a multiple of it.')
        chunks = list(zip(*(t.chunk(self.accumulate) if t is not None else [None] * self.accumulate
                            for t in tensors)))
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            ctx = net.no_sync() if isinstance(net, DistributedDataParallel) and not last else contextlib.nullcontext()
            with ctx:
                yield chunk

    # ------------------------------------------------------------------ D and G backward passes
    def backward_d(self, real: torch.Tensor, fakes: tuple | torch.Tensor, current_iter: int) -> dict[str, torch.Tensor]:
        """Accumulate D's gradients for reals `real` (labels `self.labels`) and fakes G(z, y) from
        `fakes` = (z, y, InfoGAN codes) of `sample_fakes` (or just z); return the batch-mean losses and scores."""
        z, y_fake, codes = fakes if isinstance(fakes, tuple) else (fakes, None, None)
        if self.cri_began is not None:
            return self.began_backward_d(real, z)
        bare_g = self.get_bare_model(self.net_g)
        do_r1 = self.is_r1_step(current_iter)
        logs: dict[str, torch.Tensor] = OrderedDict()

        def add(key: str, value: torch.Tensor) -> None:
            logs[key] = logs.get(key, 0) + value.detach().float() / self.accumulate

        for real_i, y_i, z_i, yf_i, *codes_i in self._micro_batches(self.net_d, real, self.labels, z, y_fake,
                                                                     *(codes or ())):
            with torch.no_grad(), self.autocast():
                fake_i = self.run_g(bare_g, z_i, yf_i)
            real_in, fake_in = self._augment(real_i), self._augment(fake_i.float())
            with self.autocast():
                real_pred, heads_r = self.judge(self.net_d, real_in, y_i, recon=True)
                fake_pred, heads_f = self.judge(self.net_d, fake_in, yf_i)
            l_recon = heads_r.pop('recon_loss', None)
            l_real, l_fake = self.adversarial_d(real_pred, fake_pred)
            total = l_real + l_fake
            add('l_d_real', l_real)
            add('l_d_fake', l_fake)
            add('l_d', l_real + l_fake)
            add('D(x)', self._score(real_pred))
            add('D(G(z))_d', self._score(fake_pred))
            for key, value in self.head_losses_d(heads_r, heads_f, y_i, yf_i, tuple(codes_i) or None).items():
                total = total + value
                add(key, value)
            if self.ada is not None:
                self.diffaug.prob = self.ada.update(real_pred)
            if l_recon is not None:
                total = total + self.recon_weight * l_recon.float()
                add('l_d_recon', l_recon)
            if self.cri_gp is not None:
                l_gp = self.cri_gp(self.net_d, real_in.detach(), fake_in.detach())
                total = total + l_gp
                add('l_d_gp', l_gp)
            if self.cri_dragan is not None:
                l_dragan = self.cri_dragan(self.net_d, real_in.detach())
                total = total + l_dragan
                add('l_d_dragan', l_dragan)
            if do_r1:
                real_r1 = real_in.detach().requires_grad_(True)
                l_r1 = self.cri_r1(self.judge(self.net_d, real_r1, y_i)[0], real_r1)
                total = total + l_r1
                add('l_d_r1', l_r1)
            self.scaler_d.scale(total / self.accumulate).backward()
        return logs

    def backward_g(self, fakes: tuple | torch.Tensor) -> dict[str, torch.Tensor]:
        """Accumulate G's gradients for fakes G(z, y) judged by D (D's weights get no gradient)."""
        z, y_fake, codes = fakes if isinstance(fakes, tuple) else (fakes, None, None)
        if self.cri_began is not None:
            return self.began_backward_g(z)
        bare_d = self.get_bare_model(self.net_d)  # D is not updated here, so no DDP sync for it
        logs: dict[str, torch.Tensor] = OrderedDict()
        reals = (self.real, self.labels) if self.dual_contrast else (None, None)  # contrasted against
        set_requires_grad(bare_d, False)
        try:
            for z_i, y_i, real_i, yr_i, *codes_i in self._micro_batches(self.net_g, z, y_fake, *reals,
                                                                         *(codes or ())):
                with self.autocast():
                    fake_i = self.run_g(self.net_g, z_i, y_i)
                fake_pred, heads_f = self.judge(bare_d, self._augment(fake_i.float()), y_i)
                real_pred = heads_r = None
                if real_i is not None:
                    with torch.no_grad():
                        real_pred, heads_r = self.judge(bare_d, self._augment(real_i), yr_i)
                l_g = self.adversarial_g(fake_pred, real_pred)
                total = l_g
                for key, value in self.head_losses_g(heads_f, heads_r, y_i, tuple(codes_i) or None).items():
                    total = total + value
                    logs[key] = logs.get(key, 0) + value.detach() / self.accumulate
                logs['l_g'] = logs.get('l_g', 0) + l_g.detach() / self.accumulate
                logs['D(G(z))_pre_g'] = logs.get('D(G(z))_pre_g', 0) + self._score(fake_pred) / self.accumulate
                self.scaler_g.scale(total / self.accumulate).backward()
        finally:
            set_requires_grad(bare_d, True)
        return logs

    # ------------------------------------------------------------------ one iteration
    def optimize_parameters(self, current_iter: int) -> None:
        batch = self.real.shape[0]
        self.optimizer_d.zero_grad(set_to_none=True)
        logs = self.backward_d(self.real, self.sample_fakes(batch), current_iter)
        self.scaler_d.step(self.optimizer_d)
        self.scaler_d.update()

        g_step = self.is_g_step(current_iter)
        log_now = current_iter % self._print_freq() == 0
        if g_step:
            self.optimizer_g.zero_grad(set_to_none=True)
            fakes = self.sample_fakes(batch)
            logs.update(self.backward_g(fakes))
            self.scaler_g.step(self.optimizer_g)
            self.scaler_g.update()
            if log_now and self.cri_began is None:  # how D judges the same latents once G has moved
                logs['D(G(z))_post_g'] = self._score_after_g_step(*fakes[:2])
            if hasattr(self, 'net_g_ema'):
                self.model_ema(self.ema_decay if current_iter >= self.ema_start_iter else 0.0)
        if self.cri_began is not None:
            self.began_update(logs)
        if self.diffaug is not None and self.ada is not None:
            logs['aug_prob'] = torch.tensor(self.diffaug.prob)
        self.log_dict = self.reduce_loss_dict(logs)
        if log_now:
            self.history.append({'iter': float(current_iter), **self.log_dict})
        self.observe_plateau(current_iter)
        grids = (self.opt.get('val') or {}).get('grids') or {}
        freq = int(grids.get('freq', 0) or 0)
        if freq and current_iter % freq == 0:
            self.save_sample_grids(current_iter)

    @torch.no_grad()
    def _score_after_g_step(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """D's mean output on (augmented, as in the G step) G(z), leaving no trace: the RNG and BatchNorm
        statistics are restored afterwards, so how often one logs never changes the training."""
        nets = [self.get_bare_model(self.net_g), self.get_bare_model(self.net_d)]
        saved = [[b.clone() for b in net.buffers()] for net in nets]
        try:
            with torch.random.fork_rng(devices=[self.device] if self.device.type == 'cuda' else []), \
                    self.autocast():
                return self._score(self.judge(nets[1], self._augment(self.run_g(nets[0], z, y).float()), y)[0])
        finally:
            for net, bufs in zip(nets, saved):
                for b, old in zip(net.buffers(), bufs):
                    b.copy_(old)

    # ------------------------------------------------------------------ sampling and visuals
    def generate(self, z: torch.Tensor, ema: bool = False, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] (CPU) from latents (and labels), by the raw or the EMA generator, in eval mode."""
        net = self.eval_generator() if ema else self.get_bare_model(self.net_g)
        return generate(net, z, labels=labels)

    def save_sample_grids(self, current_iter: int) -> list[str]:
        """Write `visualization/samples_<iter>.png` (and `samples_ema_<iter>.png`) from the fixed latents;
        a conditional model's grid has a whole number of class cycles per row (each column one class)."""
        if get_dist_info()[0] != 0:
            return []
        nrow = int(((self.opt.get('val') or {}).get('grids') or {}).get('nrow', 0) or 0)
        nrow = grid_nrow(self.fixed_z.shape[0], nrow, self.num_classes)
        folder = self.opt['path']['visualization']
        written = []
        for tag, ema in (('samples', False), ('samples_ema', True)):
            if ema and not hasattr(self, 'net_g_ema'):
                continue
            path = os.path.join(folder, f'{tag}_{current_iter:08d}.png')
            imwrite(make_grid(self.generate(self.fixed_z, ema=ema, labels=self.fixed_labels), nrow=nrow), path)
            written.append(path)
        return written

    @torch.no_grad()
    def test(self) -> None:
        self.output = self.generate(self.fixed_z, ema=True, labels=self.fixed_labels)

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
            if ax.lines:
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
        self.save_generator(current_iter)
        self.save_network(self.net_d, 'net_d', current_iter)
        self.save_loss_curve()

    def save_training_state(self, epoch: int, current_iter: int, extra: dict | None = None) -> str | None:
        state = {'history': self.history}
        if self.ada is not None:
            state['ada'] = self.ada.state_dict()
        if self.cri_began is not None:
            state['began'] = self.cri_began.state_dict()  # k
        return super().save_training_state(epoch, current_iter, {**(extra or {}), 'gan_model': state})

    def resume_training(self, resume_state: dict) -> None:
        super().resume_training(resume_state)
        state = resume_state.get('gan_model') or {}
        self.history = list(state.get('history', []))
        if self.ada is not None and 'ada' in state:
            self.ada.load_state_dict(state['ada'])
            self.diffaug.prob = self.ada.prob
        if self.cri_began is not None and 'began' in state:
            self.cri_began.load_state_dict(state['began'])
