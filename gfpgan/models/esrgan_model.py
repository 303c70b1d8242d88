"""ESRGANModel: SRGANModel with BasicSR's relativistic average GAN (RaGAN) terms.

Each side's score is taken relative to the other side's mean: the generator makes its outputs look more
real than the real images on average, the discriminator the reverse. Everything else (losses, n-critic,
EMA, checkpoints) is SRGANModel's.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from gfpgan.models.srgan_model import SRGANModel
from gfpgan.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class ESRGANModel(SRGANModel):
    """G: `(gan(real - mean(fake), False) + gan(fake - mean(real), True)) / 2`, real scores detached.

    D: `0.5 * gan(real - mean(fake), True)` + `0.5 * gan(fake - mean(real), False)`, each term back-propagating
    through its own side only (the other side's mean is detached), as BasicSR's two backward passes do.
    """

    def generator_gan_loss(self, output: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        real_pred = self.net_d(real).detach()
        fake_pred = self.net_d(output)
        l_real = self.cri_gan(real_pred - fake_pred.mean(), False, is_disc=False)
        l_fake = self.cri_gan(fake_pred - real_pred.mean(), True, is_disc=False)
        return (l_real + l_fake) / 2

    def discriminator_losses(self, output: torch.Tensor, real: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        fake_pred = self.net_d(output.detach())
        real_pred = self.net_d(real)
        return OrderedDict(
            l_d_real=0.5 * self.cri_gan(real_pred - fake_pred.detach().mean(), True, is_disc=True),
            out_d_real=real_pred.detach().float().mean(),
            l_d_fake=0.5 * self.cri_gan(fake_pred - real_pred.detach().mean(), False, is_disc=True),
            out_d_fake=fake_pred.detach().float().mean(),
        )
