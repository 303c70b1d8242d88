"""GFPGANModel: the GFPGAN training recipe (blind face restoration with a StyleGAN2 prior).

One iteration: a generator step (pixel, image-pyramid, perceptual + style, GAN, facial-component GAN +
Gram style and identity losses; each part on only when its option is set, as upstream), an EMA update,
then a discriminator step (main discriminator with lazy R1 every `net_d_reg_every` iterations, and the
left-eye / right-eye / mouth discriminators on roi-aligned crops). The `train:` keys are
`GFPGANTrainOptions` below; loading, EMA, AMP, validation and checkpoints are BaseModel's.

Fixed upstream bugs: the component discriminators' fake loss uses the component criterion (upstream
used the main, e.g. wgan_softplus, one); eye/mouth crop sizes scale by the float ratio out_size / 512
(upstream's integer ratio is 0 below 512 px and multiplied the crop *values* by it); validation is
sharded over ranks and reduced (upstream ran it on rank 0 only).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Union

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from gfpgan.losses import build_loss
from gfpgan.losses.basic_loss import gram_matrix
from gfpgan.losses.identity_loss import IdentityLoss
from gfpgan.models.adversarial import AdversarialMixin, AdversarialTrainOptions
from gfpgan.models.base_model import BaseModel
from gfpgan.models.networks import set_requires_grad
from gfpgan.utils.dist import all_reduce_sum
from gfpgan.utils.option_schema import LossBlock, OptimizerBlock
from gfpgan.utils.registry import MODEL_REGISTRY

COMPONENTS = ('left_eye', 'right_eye', 'mouth')
EYE_SIZE_512, MOUTH_SIZE_512 = 80, 120  # crop sizes of upstream at 512 px
MIN_CROP = 8  # a component discriminator needs a few pixels after its two down-samplings


class NonFiniteLossError(RuntimeError):
    """Training produced non-finite losses for too many consecutive iterations."""


class GFPGANTrainOptions(AdversarialTrainOptions):
    """`train:` keys of GFPGANModel (upstream's names and defaults); the discriminator's are shared."""

    optim_component: OptimizerBlock = Field(None, description='the three facial component discriminators')
    pixel_opt: LossBlock = Field(None, description='pixel loss of the restored face')
    L1_opt: LossBlock = Field(None, description='L1 of the pyramid, component style and identity terms')
    perceptual_opt: LossBlock = Field(None, description='perceptual + style loss')
    gan_component_opt: LossBlock = Field(None, description='GAN loss of the component discriminators')
    pyramid_loss_weight: float = Field(0.0, ge=0, description='L1 on the intermediate RGB outputs')
    remove_pyramid_loss: Union[float, None] = Field(None, description='from this iteration the pyramid weight is 1e-12')
    comp_style_weight: float = Field(0.0, ge=0, description='Gram-matrix style loss of the component features')
    identity_weight: float = Field(0.0, ge=0, description='identity (ArcFace L1) loss; needs network_identity')
    net_d_reg_every: int = Field(16, ge=1, description='lazy R1 every this many iterations (upstream: 16)')
    max_nonfinite_steps: int = Field(10, ge=1, description='stop after this many non-finite iterations in a row')
    ema_decay: float = Field(0.5 ** (32 / 10000), ge=0, lt=1, description="EMA of G (upstream's); 0: no EMA")


def component_crop_sizes(out_size: int) -> tuple[int, int]:
    """Eye and mouth crop sizes for faces of `out_size` px: upstream's 80/120 at 512, scaled by a float ratio."""
    ratio = out_size / 512
    return max(MIN_CROP, round(EYE_SIZE_512 * ratio)), max(MIN_CROP, round(MOUTH_SIZE_512 * ratio))


@MODEL_REGISTRY.register()
class GFPGANModel(AdversarialMixin, BaseModel):
    """GFPGAN: `network_g` restores `lq` faces; see the module docstring for the recipe and options."""

    train_options = GFPGANTrainOptions
    networks = ('g', 'd', *(f'd_{c}' for c in COMPONENTS), 'identity')
    output_range = (-1, 1)

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.out_size = int(opt['network_g'].get('out_size', 512))
        self.net_g = self.build_net('network_g')
        if self.is_train:
            self.init_training_settings()

    # ------------------------------------------------------------------ set-up
    def init_training_settings(self) -> None:
        train = self.train_opt
        if 'network_d' not in self.opt:
            raise KeyError('GFPGANModel: network_d is required (see options/train_gfpgan_v1.yml).')
        self.setup_adversarial()
        self.net_d = self.build_net('network_d')
        self.setup_ema(train.ema_decay)
        self.net_g.train()
        self.net_d.train()

        # facial component discriminators: all three, or none (as upstream)
        given = [c for c in COMPONENTS if f'network_d_{c}' in self.opt]
        if given and len(given) != len(COMPONENTS):
            raise KeyError(f'GFPGANModel: network_d_{{left_eye,right_eye,mouth}} go together; only {given} given.')
        self.use_facial_disc = bool(given)
        if not given and train.optim_component:
            self.logger.info('train.optim_component: no effect without the facial component discriminators '
                             '(network_d_left_eye/right_eye/mouth); upstream\'s simple recipe carries it.')
        self.net_d_comp: dict[str, nn.Module] = {}
        if self.use_facial_disc:
            if not train.gan_component_opt:
                raise KeyError('GFPGANModel: facial component discriminators need train.gan_component_opt.')
            for comp in COMPONENTS:
                net = self.build_net(f'network_d_{comp}')
                net.train()
                self.net_d_comp[comp] = net
                setattr(self, f'net_d_{comp}', net)
            self.cri_component = build_loss(train.gan_component_opt, 'train.gan_component_opt').to(self.device)
            self.eye_size, self.mouth_size = component_crop_sizes(self.out_size)

        def optional_loss(key: str) -> nn.Module | None:
            block = getattr(train, key)
            return build_loss(block, f'train.{key}').to(self.device) if block else None

        self.cri_pix = optional_loss('pixel_opt')
        self.cri_l1 = optional_loss('L1_opt')
        self.cri_perceptual = optional_loss('perceptual_opt')
        self.pyramid_loss_weight = train.pyramid_loss_weight
        self.remove_pyramid_loss = float('inf') if train.remove_pyramid_loss is None else train.remove_pyramid_loss
        self.comp_style_weight = train.comp_style_weight if self.use_facial_disc else 0.0
        self.use_identity = 'network_identity' in self.opt
        self.identity_weight = train.identity_weight
        needs_l1 = {
            'pyramid_loss_weight': self.pyramid_loss_weight > 0,
            'comp_style_weight': self.comp_style_weight > 0,
            'network_identity': self.use_identity,
        }
        if self.cri_l1 is None and any(needs_l1.values()):
            users = ', '.join(k for k, v in needs_l1.items() if v)
            raise KeyError(f'GFPGANModel: train.L1_opt (e.g. {{type: L1Loss, loss_weight: 1}}) is needed by {users}.')
        if self.use_identity:
            self._build_identity_loss()

        self.max_nonfinite_steps = train.max_nonfinite_steps
        self.nonfinite_steps = 0
        self.keep_best_target()  # a wrong val.keep_best fails here, not after the first validation
        self.setup_optimizers()
        self.setup_schedulers()

    def _build_identity_loss(self) -> None:
        """The identity loss on a frozen ArcFace (`network_identity`); without a weight file it is randomly
        initialised (tests only), from a fixed seed so that every rank (and a later evaluation) has the same.

        Upstream weighs it `cri_l1(...) * identity_weight`: the L1_opt block's weight and reduction carry over."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = self.build_net('network_identity', trainable=False, default_param_key=None)
        if not (self.opt.get('path') or {}).get('pretrain_network_identity'):
            self.logger.warning(
                'network_identity has no path.pretrain_network_identity: the identity loss uses a RANDOMLY '
                'initialised ArcFace. Fine for tests; for real training give arcface_resnet18.pth.'
            )
        weight = self.identity_weight * float(getattr(self.cri_l1, 'loss_weight', 1.0))
        self.cri_identity = IdentityLoss(net, loss_weight=weight, reduction=getattr(self.cri_l1, 'reduction', 'mean'))
        self.network_identity = self.cri_identity.net

    def setup_optimizers(self) -> None:
        """Adam as upstream: G betas (0, 0.99); D lr and betas scaled by k/(k+1) for lazy R1 every k steps;
        component discriminators betas (0.9, 0.99). Explicit `betas` in an optim block win."""
        params_g = [p for p in self.net_g.parameters() if p.requires_grad]
        self.optimizer_g = self.make_optimizer('optim_g', params_g, (0.0, 0.99))
        ratio = self.net_d_reg_every / (self.net_d_reg_every + 1)
        self.optimizer_d = self.make_optimizer('optim_d', self.net_d.parameters(), (0.0, 0.99), ratio)
        self.optimizer_d_comp: dict[str, torch.optim.Optimizer] = {}
        for comp, net in self.net_d_comp.items():
            optimizer = self.make_optimizer('optim_component', net.parameters(), (0.9, 0.99))
            self.optimizer_d_comp[comp] = optimizer
            setattr(self, f'optimizer_d_{comp}', optimizer)
        self.scaler_g, self.scaler_d = self.grad_scaler('g'), self.grad_scaler('d')

    # ------------------------------------------------------------------ data
    def feed_data(self, data: dict) -> None:
        data = self.degrade_on_device(data)
        self.lq = self.to_device(data['lq'])
        self.gt = self.to_device(data['gt']) if 'gt' in data else None
        self.has_components = 'loc_left_eye' in data
        if self.has_components:
            self.loc = {c: data[f'loc_{c}'].to(self.device).float().reshape(-1, 4) for c in COMPONENTS}
            # BasicSR-style code reads these names
            self.loc_left_eyes, self.loc_right_eyes, self.loc_mouths = (self.loc[c] for c in COMPONENTS)

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
        g_step = self.is_g_step(current_iter)
        pyramid_weight = self.pyramid_loss_weight
        if pyramid_weight > 0 and current_iter > self.remove_pyramid_loss:
            pyramid_weight = 1e-12  # keep the intermediate RGB outputs in the graph (DDP), without effect

        # ---------------- generator
        set_requires_grad([self.net_d, *self.net_d_comp.values()], False)
        self.optimizer_g.zero_grad(set_to_none=True)
        losses: OrderedDict[str, torch.Tensor] = OrderedDict()
        with torch.set_grad_enabled(g_step), self.autocast():
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
        if not skipped and hasattr(self, 'net_g_ema'):
            self.model_ema(self.ema_decay)

        # ---------------- discriminators (one backward of the summed, disjoint losses)
        if not skipped:
            set_requires_grad([self.net_d, *self.net_d_comp.values()], True)
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
        with self.autocast():
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
                losses['l_identity'] = self.cri_identity(self.output, self.gt)
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
        with self.autocast():
            fake_pred = self.net_d(self.output.detach())
            real_pred = self.net_d(self.gt)
            losses['l_d'] = self.cri_gan(real_pred, True, is_disc=True) + self.cri_gan(
                fake_pred, False, is_disc=True
            )
        # in WGAN the real score should be positive and the fake one negative
        losses['real_score'] = real_pred.detach().float().mean()
        losses['fake_score'] = fake_pred.detach().float().mean()
        if self.is_r1_step(current_iter):
            gt = self.gt.detach().requires_grad_(True)
            real_pred = self.net_d(gt)  # float32: the gradient penalty is sensitive to precision
            # `0 * pred[0]` keeps DDP's graph the same as upstream
            losses['l_d_r1'] = self.cri_r1(real_pred, gt) + 0 * real_pred[0].sum()
        if self.use_facial_disc and self.has_components:
            with self.autocast():
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
    def eval_forward(self, net: nn.Module, lq: torch.Tensor) -> torch.Tensor:
        """Fixed noise, no intermediate RGBs: evaluation is repeatable."""
        return net(lq, return_rgb=False, randomize_noise=False)[0]

    def save(self, epoch: int, current_iter: int) -> None:
        """`net_g` ({params, params_ema}), `net_d` and the three component discriminators."""
        self.save_generator(current_iter)
        if self.is_train:
            self.save_network(self.net_d, 'net_d', current_iter)
            for comp, net in self.net_d_comp.items():
                self.save_network(net, f'net_d_{comp}', current_iter)
