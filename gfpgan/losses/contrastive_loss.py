"""Dual contrastive loss (Yu et al., 2021), lightweight-gan's `--dual_contrast_loss`.

Instead of judging each logit on its own, every real logit is contrasted against all fake logits of the
batch, and every (negated) fake logit against all (negated) real ones: a softmax cross-entropy whose
positive is the one sample and whose negatives are the other side. With r_i the real and f_j the fake
logits (flattened over the batch and any patch of logits):

    L_D = mean_i -log(e^{r_i} / (e^{r_i} + sum_j e^{f_j})) + mean_j -log(e^{-f_j} / (e^{-f_j} + sum_i e^{-r_i}))

and the generator's loss is the same with the roles of real and fake swapped. G's step therefore needs
D's logits on real images too (no gradient flows into them).
"""
from __future__ import annotations

import torch
from torch import nn

from gfpgan.utils.registry import LOSS_REGISTRY


def _contrast(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """mean_i -log(e^{pos_i} / (e^{pos_i} + sum_j e^{neg_j})), computed in log space."""
    log_neg = torch.logsumexp(neg, 0)
    return (torch.logaddexp(pos, log_neg) - pos).mean()


@LOSS_REGISTRY.register()
class DualContrastiveLoss(nn.Module):
    """Args: loss_weight (scales the generator's loss only, as `GANLoss`)."""

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = float(loss_weight)

    def forward(self, real_pred: torch.Tensor, fake_pred: torch.Tensor, is_disc: bool) -> torch.Tensor:
        r, f = real_pred.float().flatten(), fake_pred.float().flatten()
        if is_disc:
            return _contrast(r, f) + _contrast(-f, -r)
        return self.loss_weight * (_contrast(f, r) + _contrast(-r, -f))
