"""GFPGANModel: the GFPGAN training recipe (blind face restoration with a StyleGAN2 prior).

One iteration: a generator step (pixel, image-pyramid, perceptual + style, GAN, facial-component GAN +
Gram style and identity losses; each part on only when its option is set, as upstream), an EMA update,
then a discriminator step (main discriminator with lazy R1 every `net_d_reg_every` iterations, and the
left-eye / right-eye / mouth discriminators on roi-aligned crops). Options under `train`:

    optim_g / optim_d / optim_component: {type: Adam, lr}   # betas as upstream unless given
    pixel_opt, L1_opt, perceptual_opt, gan_opt, gan_component_opt: loss blocks
    pyramid_loss_weight: 1, remove_pyramid_loss: 50000  # then weight 1e-12 (keeps DDP's graph static)
    comp_style_weight: 200, identity_weight: 10, r1_reg_weight: 10 (0 = no R1), net_d_reg_every: 16
    net_d_iters: 1, net_d_init_iters: 0   # G is updated when iter % net_d_iters == 0 and iter > init
    ema_decay: 0.5 ** (32 / 10000)        # upstream's constant
    max_nonfinite_steps: 10               # stop after this many consecutive non-finite iterations

Top level: `amp: bf16 | fp16 | ~` (autocast; fp16 adds gradient scaling), `channels_last: true`.
`val.keep_best: {metric: psnr}` writes `models/net_g_best.pth` whenever that metric improves.

Fixed upstream bugs: the component discriminators' fake loss uses the component criterion (upstream
used the main, e.g. wgan_softplus, one); eye/mouth crop sizes scale by the float ratio out_size / 512
(upstream's integer ratio is 0 below 512 px and multiplied the crop *values* by it); validation is
sharded over ranks and reduced (upstream ran it on rank 0 only).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.archs import build_network
from gfpgan.archs.identity_embedding import gray_resize_for_identity
from gfpgan.losses import build_loss
from gfpgan.losses.basic_loss import gram_matrix
from gfpgan.models.base_model import BaseModel
from gfpgan.utils.dist import all_reduce_sum, get_dist_info
from gfpgan.utils.image_io import imwrite, tensor2img
from gfpgan.utils.memory_format import to_channels_last
from gfpgan.utils.registry import MODEL_REGISTRY

COMPONENTS = ('left_eye', 'right_eye', 'mouth')
IDENTITY_METRIC, FID_METRIC = 'calculate_identity_distance', 'calculate_fid'
SET_METRICS = (IDENTITY_METRIC, FID_METRIC)  # computed on tensors over the whole set, not per saved image
EYE_SIZE_512, MOUTH_SIZE_512 = 80, 120  # crop sizes of upstream at 512 px
MIN_CROP = 8  # a component discriminator needs a few pixels after its two down-samplings


class NonFiniteLossError(RuntimeError):
    """Training produced non-finite losses for too many consecutive iterations."""


def component_crop_sizes(out_size: int) -> tuple[int, int]:
    """Eye and mouth crop sizes for faces of `out_size` px: upstream's 80/120 at 512, scaled by a float ratio."""
    ratio = out_size / 512
    return max(MIN_CROP, round(EYE_SIZE_512 * ratio)), max(MIN_CROP, round(MOUTH_SIZE_512 * ratio))


def _set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


@MODEL_REGISTRY.register()
class GFPGANModel(BaseModel):
    """GFPGAN: `network_g` restores `lq` faces; see the module docstring for the recipe and options."""

    output_range = (-1, 1)

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.out_size = int(opt['network_g'].get('out_size', 512))
        self._setup_precision(opt.get('amp'))
        self.net_g = self.model_to_device(build_network(opt['network_g'], 'network_g'))
        self.print_network(self.net_g)
        self._load_pretrained(self.net_g, 'g')
        self.net_g_ema = None
        if self.is_train:
            self.init_training_settings()

    # ------------------------------------------------------------------ set-up
    def _setup_precision(self, amp: Any) -> None:
        """`amp`: ~ (float32), 'bf16' or 'fp16' (with gradient scaling, the one that under/overflows)."""
        dtypes = {None: None, False: None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
        if amp not in dtypes:
            raise ValueError(f"amp: expected bf16, fp16 or ~ (off), got {amp!r}.")
        self.amp_dtype = dtypes[amp]
        self.channels_last = bool(self.opt.get('channels_last'))
        use_scaler = self.amp_dtype == torch.float16
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=use_scaler)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _load_pretrained(self, net: nn.Module, name: str, default_key: str | None = 'params') -> bool:
        """Load `path.pretrain_network_<name>`; False if none. Strict unless `strict_load_<name>: false`
        (upstream files write `strict_load_g: ~`; a silent non-strict load would leave random weights)."""
        path = self.opt.get('path') or {}
        file = path.get(f'pretrain_network_{name}')
        if not file:
            return False
        strict = path.get(f'strict_load_{name}') is not False
        key = path.get(f'param_key_{name}', default_key)
        if self.is_train and path.get('resume_state') and name == 'g':
            key = 'params'  # resuming: the trained weights, not param_key_g (often params_ema, as upstream)
        self.load_network(net, file, strict, key)
        return True

    def init_training_settings(self) -> None:
        train_opt = self.opt['train']
        if self.device.type == 'cpu':
            # Adam's second moments under betas (0, 0.99) and small loss weights underflow to denormal
            # floats, which x86 CPUs process ~100x slower: the optimizer steps dominated the iteration.
            torch.set_flush_denormal(True)
        path = self.opt.get('path') or {}
        if 'network_d' not in self.opt or not train_opt.get('gan_opt'):
            raise KeyError(
                'GFPGANModel: network_d and train.gan_opt are required (see options/train_gfpgan_v1.yml).'
            )

        self.net_d = self.model_to_device(build_network(self.opt['network_d'], 'network_d'))
        self.print_network(self.net_d)
        self._load_pretrained(self.net_d, 'd')

        self.ema_decay = float(train_opt.get('ema_decay', 0.5 ** (32 / (10 * 1000))))
        self.net_g_ema = build_network(self.opt['network_g'], 'network_g').to(self.device)
        if self.channels_last:
            to_channels_last(self.net_g_ema)
        if path.get('pretrain_network_g'):
            self.load_network(self.net_g_ema, path['pretrain_network_g'], path.get('strict_load_g') is not False,
                              'params_ema')
        else:
            self.model_ema(0)
        self.net_g_ema.eval()
        _set_requires_grad([self.net_g_ema], False)
        self.net_g.train()
        self.net_d.train()

        # facial component discriminators: all three, or none (as upstream)
        given = [c for c in COMPONENTS if f'network_d_{c}' in self.opt]
        if given and len(given) != len(COMPONENTS):
            raise KeyError(f'GFPGANModel: network_d_{{left_eye,right_eye,mouth}} go together; only {given} given.')
        self.use_facial_disc = bool(given)
        self.net_d_comp: dict[str, nn.Module] = {}
        if self.use_facial_disc:
            if not train_opt.get('gan_component_opt'):
                raise KeyError('GFPGANModel: facial component discriminators need train.gan_component_opt.')
            for comp in COMPONENTS:
                net = self.model_to_device(build_network(self.opt[f'network_d_{comp}'], f'network_d_{comp}'))
                self._load_pretrained(net, f'd_{comp}')
                net.train()
                self.net_d_comp[comp] = net
                setattr(self, f'net_d_{comp}', net)
            self.cri_component = build_loss(train_opt['gan_component_opt'], 'train.gan_component_opt').to(self.device)
            self.eye_size, self.mouth_size = component_crop_sizes(self.out_size)

        # losses
        def optional_loss(key: str) -> nn.Module | None:
            return build_loss(train_opt[key], f'train.{key}').to(self.device) if train_opt.get(key) else None

        self.cri_pix = optional_loss('pixel_opt')
        self.cri_l1 = optional_loss('L1_opt')
        self.cri_perceptual = optional_loss('perceptual_opt')
        self.cri_gan = optional_loss('gan_opt')
        self.pyramid_loss_weight = float(train_opt.get('pyramid_loss_weight', 0) or 0)
        remove = train_opt.get('remove_pyramid_loss')
        self.remove_pyramid_loss = float('inf') if remove is None else float(remove)
        self.comp_style_weight = float(train_opt.get('comp_style_weight', 0) or 0) if self.use_facial_disc else 0.0
        self.use_identity = 'network_identity' in self.opt
        self.identity_weight = float(train_opt.get('identity_weight', 0) or 0)
        needs_l1 = {
            'pyramid_loss_weight': self.pyramid_loss_weight > 0,
            'comp_style_weight': self.comp_style_weight > 0,
            'network_identity': self.use_identity,
        }
        if self.cri_l1 is None and any(needs_l1.values()):
            users = ', '.join(k for k, v in needs_l1.items() if v)
            raise KeyError(f'GFPGANModel: train.L1_opt (e.g. {{type: L1Loss, loss_weight: 1}}) is needed by {users}.')
        if self.use_identity:
            self._build_identity_network()

        self.r1_reg_weight = float(train_opt.get('r1_reg_weight', 0) or 0)
        self.net_d_iters = int(train_opt.get('net_d_iters', 1))
        self.net_d_init_iters = int(train_opt.get('net_d_init_iters', 0))
        self.net_d_reg_every = int(train_opt.get('net_d_reg_every', 16))
        if self.net_d_iters < 1 or self.net_d_reg_every < 1:
            raise ValueError('GFPGANModel: train.net_d_iters and train.net_d_reg_every must be >= 1.')
        keep = (self.opt.get('val') or {}).get('keep_best')
        metric = keep.get('metric') if isinstance(keep, dict) else keep
        if keep and metric not in ((self.opt.get('val') or {}).get('metrics') or {}):
            raise KeyError(f'val.keep_best: metric {metric!r} is not one of val.metrics; name one of them.')
        self.max_nonfinite_steps = int(train_opt.get('max_nonfinite_steps', 10))
        self.nonfinite_steps = 0
        self.setup_optimizers()
        self.setup_schedulers()

    def _build_identity_network(self) -> None:
        """Frozen ArcFace for the identity loss; without a weight file it is randomly initialised (tests only).

        The random initialisation uses a fixed seed, so every rank (and a later evaluation) builds the
        same network.
        """
        path = self.opt.get('path') or {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = build_network(self.opt['network_identity'], 'network_identity')
        if path.get('pretrain_network_identity'):
            self._load_pretrained(net, 'identity', default_key=None)
        else:
            self.logger.warning(
                'network_identity has no path.pretrain_network_identity: the identity loss uses a RANDOMLY '
                'initialised ArcFace. Fine for tests; for real training give arcface_resnet18.pth.'
            )
        net.eval()
        _set_requires_grad([net], False)
        self.network_identity = net.to(self.device)

    def setup_optimizers(self) -> None:
        """Adam as upstream: G betas (0, 0.99); D lr and betas scaled by k/(k+1) for lazy R1 every k steps;
        component discriminators betas (0.9, 0.99). Explicit `betas` in an optim block win."""
        train_opt = self.opt['train']

        def make(key: str, params: list, betas: tuple[float, float], ratio: float = 1.0) -> torch.optim.Optimizer:
            if key not in train_opt:
                raise KeyError(f'GFPGANModel: train.{key} is required, e.g. {{type: Adam, lr: !!float 2e-3}}.')
            cfg = dict(train_opt[key])
            optim_type, lr = cfg.pop('type'), float(cfg.pop('lr'))
            b1, b2 = cfg.pop('betas', betas)
            return self.get_optimizer(optim_type, params, lr * ratio, betas=(b1**ratio, b2**ratio), **cfg)

        params_g = [p for p in self.net_g.parameters() if p.requires_grad]
        self.optimizer_g = make('optim_g', params_g, (0.0, 0.99))
        ratio = self.net_d_reg_every / (self.net_d_reg_every + 1)
        self.optimizer_d = make('optim_d', list(self.net_d.parameters()), (0.0, 0.99), ratio)
        self.optimizers += [self.optimizer_g, self.optimizer_d]
        self.optimizer_d_comp: dict[str, torch.optim.Optimizer] = {}
        for comp, net in self.net_d_comp.items():
            optimizer = make('optim_component', list(net.parameters()), (0.9, 0.99))
            self.optimizer_d_comp[comp] = optimizer
            setattr(self, f'optimizer_d_{comp}', optimizer)
            self.optimizers.append(optimizer)

    # ------------------------------------------------------------------ data
    def feed_data(self, data: dict) -> None:
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.lq = data['lq'].to(self.device, non_blocking=True).contiguous(memory_format=fmt)
        self.gt = data['gt'].to(self.device, non_blocking=True).contiguous(memory_format=fmt) if 'gt' in data else None
        self.has_components = 'loc_left_eye' in data
        if self.has_components:
            self.loc = {c: data[f'loc_{c}'].to(self.device).float().reshape(-1, 4) for c in COMPONENTS}

    def construct_img_pyramid(self, num_levels: int) -> list[torch.Tensor]:
        """gt halved bilinearly `num_levels - 1` times, smallest first (matches the generator's RGB outputs)."""
        pyramid = [self.gt]
        for _ in range(num_levels - 1):
            pyramid.insert(0, F.interpolate(pyramid[0], scale_factor=0.5, mode='bilinear', align_corners=False))
        return pyramid

    def get_roi_regions(self) -> None:
        """Crop eyes and mouth of gt and output with roi_align (boxes in image pixels)."""
        from gfpgan.ops.roi_align import roi_align

        n = self.loc['left_eye'].shape[0]
        idx = torch.arange(n, device=self.device, dtype=torch.float32).unsqueeze(1)
        eye_boxes = torch.cat(
            [torch.cat([idx, self.loc['left_eye']], 1), torch.cat([idx, self.loc['right_eye']], 1)], 0
        )
        mouth_boxes = torch.cat([idx, self.loc['mouth']], 1)

        def crop(img: torch.Tensor) -> dict[str, torch.Tensor]:
            eyes = roi_align(img.float(), eye_boxes, self.eye_size, 1.0, -1, False)
            return {
                'left_eye': eyes[:n],
                'right_eye': eyes[n:],
                'mouth': roi_align(img.float(), mouth_boxes, self.mouth_size, 1.0, -1, False),
            }

        self.crops_gt = crop(self.gt)
        self.crops = crop(self.output)

    # ------------------------------------------------------------------ training step
    def _all_finite(self, loss: torch.Tensor) -> bool:
        """Whether `loss` is finite on every rank (all ranks must skip together, or DDP would hang)."""
        bad = torch.tensor([0.0 if bool(torch.isfinite(loss.detach()).all()) else 1.0], dtype=torch.float64)
        return all_reduce_sum(bad).item() == 0

    def _note_nonfinite(self, current_iter: int, what: str, losses: dict[str, torch.Tensor]) -> None:
        self.nonfinite_steps += 1
        bad = [k for k, v in losses.items() if not bool(torch.isfinite(v.detach()).all())]
        self.logger.warning(
            f'Iter {current_iter}: non-finite {what} loss ({", ".join(bad) or "total"}); step skipped '
            f'({self.nonfinite_steps} in a row, limit train.max_nonfinite_steps={self.max_nonfinite_steps}).'
        )
        if self.nonfinite_steps >= self.max_nonfinite_steps:
            raise NonFiniteLossError(
                f'Stopped at iter {current_iter}: {self.nonfinite_steps} consecutive iterations with non-finite '
                f'losses ({", ".join(bad) or what}). Lower the learning rates (train.optim_*), check the data for '
                'NaN/Inf, try amp: ~ (float32), or resume from an earlier checkpoint.'
            )

    def optimize_parameters(self, current_iter: int) -> None:
        if self.use_facial_disc and not self.has_components:
            raise KeyError(
                'GFPGANModel: the facial component discriminators need eye/mouth boxes in the batch '
                '(loc_left_eye, ...): set datasets.train.crop_components: true and component_path.'
            )
        g_step = current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters
        pyramid_weight = self.pyramid_loss_weight
        if pyramid_weight > 0 and current_iter > self.remove_pyramid_loss:
            pyramid_weight = 1e-12  # keep the intermediate RGB outputs in the graph (DDP), without effect

        # ---------------- generator
        _set_requires_grad([self.net_d, *self.net_d_comp.values()], False)
        self.optimizer_g.zero_grad(set_to_none=True)
        losses: OrderedDict[str, torch.Tensor] = OrderedDict()
        with torch.set_grad_enabled(g_step), self._autocast():
            self.output, out_rgbs = self.net_g(self.lq, return_rgb=pyramid_weight > 0)
        self.output = self.output.float()
        if self.use_facial_disc and self.has_components:
            self.get_roi_regions()
        skipped = False
        if g_step:
            l_g_total = self._generator_losses(losses, out_rgbs, pyramid_weight)
            if self._all_finite(l_g_total):
                self.scaler_g.scale(l_g_total).backward()
                self.scaler_g.step(self.optimizer_g)
                self.scaler_g.update()
            else:
                skipped = True
                self.optimizer_g.zero_grad(set_to_none=True)
                self._note_nonfinite(current_iter, 'generator', losses)
        if not skipped:
            self.model_ema(self.ema_decay)

        # ---------------- discriminators (one backward of the summed, disjoint losses)
        if not skipped:
            _set_requires_grad([self.net_d, *self.net_d_comp.values()], True)
            d_losses = self._discriminator_losses(current_iter)
            optimizers = [self.optimizer_d] + (list(self.optimizer_d_comp.values()) if self.has_components else [])
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            l_d_total = sum(v.float().sum() for k, v in d_losses.items() if not k.endswith('_score'))
            if self._all_finite(l_d_total):
                self.scaler_d.scale(l_d_total).backward()
                for opt in optimizers:
                    self.scaler_d.step(opt)
                self.scaler_d.update()
                self.nonfinite_steps = 0
            else:
                for opt in optimizers:
                    opt.zero_grad(set_to_none=True)
                self._note_nonfinite(current_iter, 'discriminator', d_losses)
            losses.update(d_losses)
        self.log_dict = self.reduce_loss_dict(losses)

    def _generator_losses(
        self, losses: OrderedDict, out_rgbs: list[torch.Tensor], pyramid_weight: float
    ) -> torch.Tensor:
        """Fill `losses` with the generator's terms (upstream names) and return their sum."""
        bare_d = self.get_bare_model(self.net_d)  # frozen this step: no DDP gradient sync needed
        total = self.output.new_zeros(())
        with self._autocast():
            if self.cri_pix is not None:
                losses['l_g_pix'] = self.cri_pix(self.output, self.gt)
            if pyramid_weight > 0:
                pyramid = self.construct_img_pyramid(len(out_rgbs))
                for rgb, gt in zip(out_rgbs, pyramid):
                    losses[f'l_p_{gt.shape[-1]}'] = self.cri_l1(rgb.float(), gt) * pyramid_weight
            if self.cri_perceptual is not None:
                percep, style = self.cri_perceptual(self.output, self.gt)
                if percep is not None:
                    losses['l_g_percep'] = percep
                if style is not None:
                    losses['l_g_style'] = style
            losses['l_g_gan'] = self.cri_gan(bare_d(self.output), True, is_disc=False)
            if self.use_facial_disc and self.has_components:
                fake_feats, real_feats = {}, {}
                for comp in COMPONENTS:
                    net = self.get_bare_model(self.net_d_comp[comp])
                    pred, fake_feats[comp] = net(self.crops[comp], return_feats=True)
                    losses[f'l_g_gan_{comp}'] = self.cri_component(pred, True, is_disc=False)
                    if self.comp_style_weight > 0:
                        _, real_feats[comp] = net(self.crops_gt[comp], return_feats=True)
                if self.comp_style_weight > 0:
                    style = sum(self._component_style(fake_feats[c], real_feats[c]) for c in COMPONENTS)
                    losses['l_g_comp_style_loss'] = style * self.comp_style_weight
            if self.use_identity and self.identity_weight > 0:
                with torch.no_grad():
                    id_gt = self.network_identity(gray_resize_for_identity(self.gt))
                id_out = self.network_identity(gray_resize_for_identity(self.output))
                losses['l_identity'] = self.cri_l1(id_out.float(), id_gt.float()) * self.identity_weight
        for value in losses.values():
            total = total + value.float()
        return total

    def _component_style(self, fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
        """L1 between Gram matrices of the first two feature maps, weighted 0.5 and 1 (upstream)."""
        weights = (0.5, 1.0)
        return sum(
            self.cri_l1(gram_matrix(f.float()), gram_matrix(r.detach().float())) * w
            for f, r, w in zip(fake, real, weights)
        )

    def _discriminator_losses(self, current_iter: int) -> OrderedDict[str, torch.Tensor]:
        losses: OrderedDict[str, torch.Tensor] = OrderedDict()
        with self._autocast():
            fake_pred = self.net_d(self.output.detach())
            real_pred = self.net_d(self.gt)
            losses['l_d'] = self.cri_gan(real_pred, True, is_disc=True) + self.cri_gan(
                fake_pred, False, is_disc=True
            )
        # in WGAN the real score should be positive and the fake one negative
        losses['real_score'] = real_pred.detach().float().mean()
        losses['fake_score'] = fake_pred.detach().float().mean()
        if self.r1_reg_weight > 0 and current_iter % self.net_d_reg_every == 0:
            from gfpgan.losses.regularizers import r1_penalty

            gt = self.gt.detach().requires_grad_(True)
            real_pred = self.net_d(gt)  # float32: the gradient penalty is sensitive to precision
            penalty = r1_penalty(real_pred, gt)
            # lazy regularisation: scaled by k; `0 * pred[0]` keeps DDP's graph the same as upstream
            losses['l_d_r1'] = self.r1_reg_weight / 2 * penalty * self.net_d_reg_every + 0 * real_pred[0].sum()
        if self.use_facial_disc and self.has_components:
            with self._autocast():
                for comp in COMPONENTS:
                    net = self.net_d_comp[comp]
                    fake_pred, _ = net(self.crops[comp].detach())
                    real_pred, _ = net(self.crops_gt[comp])
                    # upstream bug fixed: the fake term uses the component criterion too
                    losses[f'l_d_{comp}'] = self.cri_component(real_pred, True, is_disc=True) + self.cri_component(
                        fake_pred, False, is_disc=True
                    )
        return losses

    # ------------------------------------------------------------------ inference and checkpoints
    @torch.no_grad()
    def test(self) -> None:
        """Restore `lq` with the EMA generator (the trained one at evaluation), fixed noise for repeatability."""
        net = self.net_g_ema if self.net_g_ema is not None else self.get_bare_model(self.net_g)
        was_training = net.training
        net.eval()
        with self._autocast():
            output, _ = net(self.lq, return_rgb=False, randomize_noise=False)
        self.output = output.float()
        net.train(was_training)

    def get_current_visuals(self) -> dict[str, torch.Tensor]:
        visuals = OrderedDict(lq=self.lq.detach().float().cpu(), result=self.output.detach().float().cpu())
        if self.gt is not None:
            visuals['gt'] = self.gt.detach().float().cpu()
        return visuals

    # ------------------------------------------------------------------ validation
    def dist_validation(self, dataloader: Any, current_iter: int, tb_logger: Any, save_img: bool) -> dict:
        """Every rank restores its shard (ShardSampler); metric sums are all-reduced, so the result equals
        a one-process validation. Rank 0 logs; each rank saves the images it restored."""
        return self._validate(dataloader, current_iter, tb_logger, save_img)

    def nondist_validation(self, dataloader: Any, current_iter: int, tb_logger: Any, save_img: bool) -> dict:
        return self._validate(dataloader, current_iter, tb_logger, save_img)

    def _validate(self, dataloader: Any, current_iter: int, tb_logger: Any, save_img: bool) -> dict:
        """Restore this rank's shard; accumulate per-sample metrics (on the uint8 images that are saved) and
        identity distances (on tensors, batched); reduce (sum, count) over ranks; log; keep the best."""
        from gfpgan.metrics import calculate_metric
        from gfpgan.metrics.metric_accumulator import MetricAccumulator

        val_opt = self.opt.get('val') or {}
        metrics_opt = dict(val_opt.get('metrics') or {})
        dataset_name = getattr(dataloader.dataset, 'opt', {}).get('name', 'val')
        kinds = {n: m['type'] for n, m in metrics_opt.items()}
        per_image = {n: m for n, m in metrics_opt.items() if kinds[n] not in SET_METRICS}
        identity = {
            n: self._identity_metric_network(n, m) for n, m in metrics_opt.items() if kinds[n] == IDENTITY_METRIC
        }
        fid = {n: self._fid_extractor(n, m) for n, m in metrics_opt.items() if kinds[n] == FID_METRIC}
        fid_stats: dict[str, tuple[Any, Any]] = {}
        acc = MetricAccumulator(per_image.keys() | identity.keys())
        count = torch.zeros(1, dtype=torch.float64)
        start = time.time()
        for data in self.validation_progress(dataloader, dataset_name):
            self.feed_data(data)
            self.test()
            visuals = self.get_current_visuals()
            result, gt = visuals['result'], visuals.get('gt')
            if metrics_opt and gt is None:
                raise KeyError(f"Validation set '{dataset_name}' gives no 'gt': val.metrics need paired data.")
            if identity:
                from gfpgan.metrics.identity_metric import identity_distance_pt

                for name, net in identity.items():
                    acc.update(name, identity_distance_pt(_as_saved(result), _as_saved(gt), net).cpu())
            for name, extractor in fid.items():  # restored vs ground-truth sets; sums of features reduce exactly
                from gfpgan.metrics.fid_metric import FeatureStats

                feats = [extractor((_as_saved(x) + 1) / 2) for x in (result, gt)]
                if name not in fid_stats:
                    fid_stats[name] = (FeatureStats(feats[0].shape[1]), FeatureStats(feats[0].shape[1]))
                for stats, f in zip(fid_stats[name], feats):
                    stats.update(f)
            for i in range(result.shape[0]):
                sr_img = tensor2img(result[i : i + 1], min_max=self.output_range)
                if per_image:
                    pair = {'img': sr_img, 'img2': tensor2img(gt[i : i + 1], min_max=self.output_range)}
                    for name, opt in per_image.items():
                        acc.update(name, float(calculate_metric(pair, opt)))
                if save_img:
                    self._save_val_image(sr_img, data, i, dataset_name, current_iter)
            count += result.shape[0]
        results = acc.reduce()
        for name in fid:
            results[name] = self._reduce_fid(name, fid_stats.get(name), metrics_opt[name])
        results['_count'] = int(all_reduce_sum(count).item())
        self._log_validation_metric_values(current_iter, dataset_name, results, tb_logger, time.time() - start)
        self._keep_best(dataset_name, current_iter)
        return results

    def _identity_metric_network(self, name: str, metric_opt: dict) -> nn.Module:
        """ArcFace for an identity-distance metric: its own `network` (+ `weights_path`), else the model's
        identity network. Random weights are drawn from a fixed seed so that every rank has the same."""
        if not metric_opt.get('network'):
            if getattr(self, 'network_identity', None) is None:
                raise KeyError(f'val.metrics.{name}: give network (and weights_path) of the embedding network.')
            return self.network_identity
        cache = self.__dict__.setdefault('_identity_metric_nets', {})
        if name not in cache:
            from gfpgan.archs.identity_embedding import build_embedding_network

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                cache[name] = build_embedding_network(
                    metric_opt['network'], metric_opt.get('weights_path'), metric_opt.get('param_key', 'params_ema')
                ).to(self.device)
        return cache[name]

    def _fid_extractor(self, name: str, metric_opt: dict) -> nn.Module:
        """The Inception network of an FID metric (`source`, `weights_path` as `build_fid_extractor`), built once."""
        cache = self.__dict__.setdefault('_fid_extractors', {})
        if name not in cache:
            from gfpgan.metrics.fid_metric import build_fid_extractor

            cache[name] = build_fid_extractor(
                metric_opt.get('source', 'auto'), metric_opt.get('weights_path'), device=self.device
            )
        return cache[name]

    @staticmethod
    def _reduce_fid(name: str, stats: tuple[Any, Any] | None, metric_opt: dict) -> float:
        """All-reduce both sets' feature sums (every rank, even one with an empty shard) and compute FID."""
        from gfpgan.metrics.fid_metric import FeatureStats, calculate_fid

        # a rank without samples has no dimension yet: agree on it first (one tiny all-reduce)
        dim_has = torch.tensor([0.0, 0.0] if stats is None else [stats[0].sum.numel(), 1.0], dtype=torch.float64)
        total_dim, ranks_with_data = all_reduce_sum(dim_has).tolist()
        if ranks_with_data == 0:
            return float('nan')
        dim = int(total_dim / ranks_with_data)
        if stats is None:
            stats = (FeatureStats(dim), FeatureStats(dim))
        restored, reference = (s.all_reduce() for s in stats)
        if float(restored.count) < 2:
            return float('nan')
        mu1, sigma1 = restored.mean_cov()
        mu2, sigma2 = reference.mean_cov()
        return calculate_fid(mu1, sigma1, mu2, sigma2, eps=float(metric_opt.get('eps', 0.0)))

    def _save_val_image(self, img: Any, data: dict, i: int, dataset_name: str, current_iter: int) -> None:
        path = (data.get('lq_path') or data.get('gt_path') or [f'{get_dist_info()[0]}_{i}'] * (i + 1))[i]
        stem = os.path.splitext(os.path.basename(str(path)))[0]
        folder = self.opt['path']['visualization']
        if self.is_train:
            imwrite(img, os.path.join(folder, stem, f'{stem}_{current_iter}.png'))
        else:
            suffix = (self.opt.get('val') or {}).get('suffix') or self.opt['name']
            imwrite(img, os.path.join(folder, dataset_name, f'{stem}_{suffix}.png'))

    def _keep_best(self, dataset_name: str, current_iter: int) -> None:
        """`val.keep_best: {metric: psnr, dataset: <name>}`: write models/net_g_best.pth when it improved.

        `dataset` defaults to the first validation set; the file is replaced atomically."""
        keep = (self.opt.get('val') or {}).get('keep_best')
        if not keep or not self.is_train:
            return
        keep = keep if isinstance(keep, dict) else {'metric': keep}
        metric = keep.get('metric')
        val_sets = [d.get('name', k) for k, d in (self.opt.get('datasets') or {}).items() if k.startswith('val')]
        if dataset_name != keep.get('dataset', val_sets[0] if val_sets else dataset_name):
            return
        if metric in getattr(self, 'improved_metrics', ()):
            self.save_network([self.net_g, self.net_g_ema], 'net_g', 'best', ['params', 'params_ema'])
            value = self.best_metric_results[dataset_name][metric]['val']
            self.logger.info(f'New best {metric} on {dataset_name}: {value:.4f} @ iter {current_iter}: net_g_best.pth')

    def save(self, epoch: int, current_iter: int) -> None:
        """`net_g` ({params, params_ema}), `net_d` and the three component discriminators."""
        if self.net_g_ema is not None:
            self.save_network([self.net_g, self.net_g_ema], 'net_g', current_iter, ['params', 'params_ema'])
        else:
            self.save_network(self.net_g, 'net_g', current_iter)
        if self.is_train:
            self.save_network(self.net_d, 'net_d', current_iter)
            for comp, net in self.net_d_comp.items():
                self.save_network(net, f'net_d_{comp}', current_iter)

    def save_training_state(self, epoch: int, current_iter: int, extra: dict | None = None) -> str | None:
        state = {'scaler_g': self.scaler_g.state_dict(), 'scaler_d': self.scaler_d.state_dict()}
        return super().save_training_state(epoch, current_iter, {**(extra or {}), 'gfpgan_model': state})

    def resume_training(self, resume_state: dict) -> None:
        super().resume_training(resume_state)
        state = resume_state.get('gfpgan_model') or {}
        if state.get('scaler_g'):
            self.scaler_g.load_state_dict(state['scaler_g'])
            self.scaler_d.load_state_dict(state['scaler_d'])


def _as_saved(img: torch.Tensor) -> torch.Tensor:
    """[-1, 1] image rounded to 8 bit, as it is saved: metrics measure the image a user gets."""
    return ((img.float().clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1

