"""ACGAN's objective (Odena et al., 2017): the adversarial loss plus cross-entropy of a class head.

The discriminator is trained to tell real from fake *and* to name the class of both real images (their
data labels) and generated ones (the labels G was asked for); the generator is trained to fool it and to
make its images classified as the requested class. Both sides therefore minimise
`adversarial + class_weight * CE(class_logits, labels)`, with the adversarial target flipped for G.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.losses.gan_loss import GANLoss
from gfpgan.utils.registry import LOSS_REGISTRY


@LOSS_REGISTRY.register()
class ACGANLoss(nn.Module):
    """Args: gan_type / real_label_val / fake_label_val / loss_weight as `GANLoss` (loss_weight scales G's
    adversarial term only, as there), class_weight (weight of the cross-entropy, both sides)."""

    def __init__(self, gan_type: str = 'vanilla', class_weight: float = 1.0, real_label_val: float = 1.0,
                 fake_label_val: float = 0.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.adversarial = GANLoss(gan_type, real_label_val, fake_label_val, loss_weight)
        self.gan_type = gan_type
        self.class_weight = float(class_weight)

    def class_loss(self, class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the class head against the labels (data labels or requested ones)."""
        if class_logits.dim() != 2 or labels.shape != class_logits.shape[:1]:
            raise ValueError(f'ACGANLoss: class logits must be (N, num_classes) and labels (N,), got '
                             f'{tuple(class_logits.shape)} and {tuple(labels.shape)}.')
        return F.cross_entropy(class_logits.float(), labels.long())

    def forward(self, pred: torch.Tensor, class_logits: torch.Tensor, labels: torch.Tensor, target_is_real: bool,
                is_disc: bool = False) -> torch.Tensor:
        """One side of one step: D on reals (True, is_disc), D on fakes (False, is_disc), G on fakes (True)."""
        return self.adversarial(pred, target_is_real, is_disc) + self.class_weight * self.class_loss(class_logits,
                                                                                                     labels)
