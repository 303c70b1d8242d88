"""Adversarial losses with BasicSR's `GANLoss` semantics.

`forward(input, target_is_real, is_disc=False)`: `input` is the discriminator's raw output (logits
for `vanilla`). `loss_weight` scales only the generator's loss (`is_disc=False`), because the
discriminator's step is weighted by its own optimiser settings upstream. For `hinge`, the generator
loss is `-mean(input)` whatever `target_is_real` says.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.losses.basic_loss import check_reduction, weight_reduce_loss
from gfpgan.utils.registry import LOSS_REGISTRY

GAN_TYPES = ('vanilla', 'lsgan', 'wgan', 'wgan_softplus', 'hinge')


@LOSS_REGISTRY.register()
class GANLoss(nn.Module):
    """Args: gan_type (one of GAN_TYPES), real_label_val / fake_label_val (targets of vanilla/lsgan),
    loss_weight (generator only), reduction ('none', 'mean', 'sum')."""

    def __init__(self, gan_type: str, real_label_val: float = 1.0, fake_label_val: float = 0.0,
                 loss_weight: float = 1.0, reduction: str = 'mean') -> None:
        super().__init__()
        if gan_type not in GAN_TYPES:
            raise ValueError(f"GANLoss: gan_type {gan_type!r} is not implemented; "
                             f"choose one of {', '.join(GAN_TYPES)}.")
        self.gan_type = gan_type
        self.real_label_val = real_label_val
        self.fake_label_val = fake_label_val
        self.loss_weight = loss_weight
        self.reduction = check_reduction(reduction, owner='GANLoss')

    def _elementwise(self, x: torch.Tensor, target_is_real: bool, is_disc: bool) -> torch.Tensor:
        if self.gan_type in ('vanilla', 'lsgan'):
            target = torch.full_like(x, self.real_label_val if target_is_real else self.fake_label_val)
            if self.gan_type == 'vanilla':
                return F.binary_cross_entropy_with_logits(x, target, reduction='none')
            return F.mse_loss(x, target, reduction='none')
        if self.gan_type == 'wgan':
            return -x if target_is_real else x
        if self.gan_type == 'wgan_softplus':
            return F.softplus(-x) if target_is_real else F.softplus(x)
        if is_disc:  # hinge
            return F.relu(1 - x) if target_is_real else F.relu(1 + x)
        return -x

    def forward(self, input: torch.Tensor, target_is_real: bool, is_disc: bool = False) -> torch.Tensor:
        loss = weight_reduce_loss(self._elementwise(input, target_is_real, is_disc), None, self.reduction)
        return loss if is_disc else loss * self.loss_weight
