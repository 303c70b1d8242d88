"""The regularizers of `regularizers.py` as registered loss modules with `loss_weight` (and state where needed)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from gfpgan.losses.basic_loss import check_reduction
from gfpgan.losses.regularizers import dragan_penalty, g_path_regularize, gradient_penalty_loss, r1_penalty
from gfpgan.utils.registry import LOSS_REGISTRY

Discriminator = Callable[[torch.Tensor], torch.Tensor]


@LOSS_REGISTRY.register()
class R1Loss(nn.Module):
    """`loss_weight * r1_penalty(real_pred, real_img)`; for upstream's lazy R1 use loss_weight = gamma/2 * every."""

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.reduction = check_reduction(reduction, owner='R1Loss')

    def forward(self, real_pred: torch.Tensor, real_img: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * r1_penalty(real_pred, real_img, self.reduction)


@LOSS_REGISTRY.register()
class PathLengthLoss(nn.Module):
    """StyleGAN2 path-length regularization; keeps the running mean path length as a buffer (checkpointed)."""

    def __init__(self, loss_weight: float = 2.0, decay: float = 0.01) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.decay = decay
        self.register_buffer('mean_path_length', torch.zeros(()))

    def forward(self, fake_img: torch.Tensor, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns `(weighted penalty, batch mean path length)` and updates the running mean."""
        penalty, lengths, new_mean = g_path_regularize(fake_img, latents, self.mean_path_length, self.decay)
        self.mean_path_length.copy_(new_mean)
        return self.loss_weight * penalty, lengths


@LOSS_REGISTRY.register()
class GradientPenaltyLoss(nn.Module):
    """WGAN-GP: `loss_weight * gradient_penalty_loss(discriminator, real, fake, weight)` (lambda = 10 in the paper)."""

    def __init__(self, loss_weight: float = 10.0, reduction: str = 'mean') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.reduction = check_reduction(reduction, owner='GradientPenaltyLoss')

    def forward(self, discriminator: Discriminator, real_data: torch.Tensor, fake_data: torch.Tensor,
                weight: torch.Tensor | None = None) -> torch.Tensor:
        return self.loss_weight * gradient_penalty_loss(discriminator, real_data, fake_data, weight, self.reduction)


@LOSS_REGISTRY.register()
class DRAGANLoss(nn.Module):
    """DRAGAN: `loss_weight * dragan_penalty(discriminator, real)`."""

    def __init__(self, loss_weight: float = 10.0, perturb_scale: float = 0.5, reduction: str = 'mean') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.perturb_scale = perturb_scale
        self.reduction = check_reduction(reduction, owner='DRAGANLoss')

    def forward(self, discriminator: Discriminator, real_data: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * dragan_penalty(discriminator, real_data, self.perturb_scale, self.reduction)
