"""What every adversarial recipe shares: the discriminator step's options and their reading.

`AdversarialTrainOptions` declares the `train:` keys of a main discriminator (GAN loss, optimizer, n-critic,
warm-up, lazy R1); `AdversarialMixin.setup_adversarial()` reads them into the loss modules and counters
that GFPGANModel and GANModel use the same way.
"""

from __future__ import annotations

from pydantic import Field

from gfpgan.losses import build_loss
from gfpgan.losses.regularizer_loss import R1Loss
from gfpgan.utils.option_schema import LossBlock, OptimizerBlock, TrainOptionsBase


class AdversarialTrainOptions(TrainOptionsBase):
    """`train:` keys of a generator trained against a main discriminator (`network_d`)."""

    gan_opt: LossBlock = Field(None, description='{type: GANLoss, gan_type: vanilla|lsgan|wgan|wgan_softplus|hinge}')
    optim_d: OptimizerBlock = Field(None, description='main discriminator optimizer')
    net_d_iters: int = Field(1, ge=1, description='n-critic: G is updated when iter % net_d_iters == 0')
    net_d_init_iters: int = Field(0, ge=0, description='D-only iterations before G is updated')
    r1_reg_weight: float = Field(0.0, ge=0, description='R1 gamma on reals; 0: none')
    net_d_reg_every: int = Field(1, ge=1, description='lazy R1 every this many iterations (scaled up to match)')


class AdversarialMixin:
    """Expects BaseModel with `train_opt` an AdversarialTrainOptions."""

    def setup_adversarial(self) -> None:
        train = self.train_opt
        if not train.gan_opt:
            raise KeyError(f'{type(self).__name__}: train.gan_opt is required, e.g. {{type: GANLoss, gan_type: '
                           'vanilla}.')
        self.gan_type = train.gan_opt.get('gan_type')
        self.cri_gan = build_loss(train.gan_opt, 'train.gan_opt').to(self.device)
        self.net_d_iters, self.net_d_init_iters = train.net_d_iters, train.net_d_init_iters
        self.net_d_reg_every = train.net_d_reg_every
        # lazy R1 (StyleGAN2, upstream GFPGAN): gamma / 2, scaled by k because it is applied every k-th iteration
        self.cri_r1 = R1Loss(train.r1_reg_weight / 2 * self.net_d_reg_every) if train.r1_reg_weight > 0 else None

    def is_g_step(self, current_iter: int) -> bool:
        """Whether G is updated this iteration (n-critic and D-only warm-up)."""
        return current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters

    def is_r1_step(self, current_iter: int) -> bool:
        return self.cri_r1 is not None and current_iter % self.net_d_reg_every == 0
