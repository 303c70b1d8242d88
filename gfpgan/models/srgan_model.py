"""SRGANModel: an SR generator trained with pixel/perceptual losses against a discriminator (BasicSR's).

It is SRModel plus `network_d`, `train.gan_opt`, `train.optim_d`, n-critic (`net_d_iters`), D-only warm-up
(`net_d_init_iters`) and optional lazy R1 (AdversarialMixin). Its subclasses change only what is their
own: the GAN terms (ESRGANModel: relativistic average) or the loss targets and the batch
(RealESRGANModel: USM-sharpened gt, on-device degradation).
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from gfpgan.models.adversarial import AdversarialMixin, AdversarialTrainOptions
from gfpgan.models.networks import set_requires_grad
from gfpgan.models.restoration_model import RestorationTrainOptions
from gfpgan.models.sr_model import SRModel
from gfpgan.utils.registry import MODEL_REGISTRY


class SRGANTrainOptions(RestorationTrainOptions, AdversarialTrainOptions):
    """`train:` keys of SRGANModel and its subclasses."""


@MODEL_REGISTRY.register()
class SRGANModel(AdversarialMixin, SRModel):
    """G: `pixel_opt`/`perceptual_opt` against `gt` + `gan_opt` (D sees the output as real); D: real vs fake.

    Logs `l_g_pix`, `l_g_percep`, `l_g_style`, `l_g_gan`, `l_d_real`, `out_d_real`, `l_d_fake`, `out_d_fake`
    (and `l_d_r1`). `net_g_<iter>.pth` holds {params, params_ema}, `net_d_<iter>.pth` {params}.
    """

    train_options = SRGANTrainOptions
    networks = ('g', 'd')

    def init_training_settings(self) -> None:
        self.net_d = self.build_net('network_d')
        self.net_d.train()
        super().init_training_settings()

    def setup_losses(self) -> None:
        super().setup_losses()
        self.setup_adversarial()

    def setup_optimizers(self) -> None:
        super().setup_optimizers()
        self.optimizer_d = self.make_optimizer('optim_d', self.net_d.parameters())
        self.scaler_d = self.grad_scaler('d')

    # ------------------------------------------------------------------ what a subclass changes
    def loss_targets(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The targets of the pixel loss, the perceptual loss and the discriminator's real images."""
        return self.gt, self.gt, self.gt

    def generator_gan_loss(self, output: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial term: D should call `output` real."""
        return self.cri_gan(self.net_d(output), True, is_disc=False)

    def discriminator_losses(self, output: torch.Tensor, real: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """`l_d_real`, `l_d_fake` (summed for the D step) and the mean scores `out_d_real`, `out_d_fake`."""
        real_pred = self.net_d(real)
        fake_pred = self.net_d(output.detach())
        return OrderedDict(l_d_real=self.cri_gan(real_pred, True, is_disc=True),
                           out_d_real=real_pred.detach().float().mean(),
                           l_d_fake=self.cri_gan(fake_pred, False, is_disc=True),
                           out_d_fake=fake_pred.detach().float().mean())

    # ------------------------------------------------------------------ one iteration
    def optimize_parameters(self, current_iter: int) -> None:
        pix_gt, percep_gt, real = self.loss_targets()
        losses: OrderedDict[str, torch.Tensor] = OrderedDict()
        set_requires_grad(self.net_d, False)
        self.optimizer_g.zero_grad(set_to_none=True)
        with self.autocast():
            self.output = self.net_g(self.lq)
        if self.is_g_step(current_iter):
            with self.autocast():
                if self.cri_pix is not None:
                    losses['l_g_pix'] = self.cri_pix(self.output, pix_gt)
                if self.cri_perceptual is not None:
                    percep, style = self.cri_perceptual(self.output, percep_gt)
                    for key, value in (('l_g_percep', percep), ('l_g_style', style)):
                        if value is not None:
                            losses[key] = value
                losses['l_g_gan'] = self.generator_gan_loss(self.output, real)
            self.scaler_g.scale(sum(v.float() for v in losses.values())).backward()
            self.scaler_g.step(self.optimizer_g)
            self.scaler_g.update()

        set_requires_grad(self.net_d, True)
        self.optimizer_d.zero_grad(set_to_none=True)
        with self.autocast():
            d_losses = self.discriminator_losses(self.output, real)
        total = d_losses['l_d_real'].float() + d_losses['l_d_fake'].float()
        if self.is_r1_step(current_iter):
            real_r1 = real.detach().requires_grad_(True)
            d_losses['l_d_r1'] = self.cri_r1(self.net_d(real_r1), real_r1)  # float32: a gradient penalty
            total = total + d_losses['l_d_r1']
        self.scaler_d.scale(total).backward()
        self.scaler_d.step(self.optimizer_d)
        self.scaler_d.update()
        self.output = self.output.detach().float()

        losses.update(d_losses)
        self.log_dict = self.reduce_loss_dict(losses)
        if hasattr(self, 'net_g_ema'):
            self.model_ema(self.ema_decay)

    def save(self, epoch: int, current_iter: int) -> None:
        self.save_generator(current_iter)
        self.save_network(self.net_d, 'net_d', current_iter)
