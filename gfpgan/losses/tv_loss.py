"""Total-variation loss with BasicSR's `WeightedTVLoss` options: a smoothness prior on the output."""
from __future__ import annotations

import torch

from gfpgan.losses.basic_loss import L1Loss, check_reduction
from gfpgan.utils.registry import LOSS_REGISTRY


@LOSS_REGISTRY.register()
class WeightedTVLoss(L1Loss):
    """loss_weight * (mean |vertical neighbour difference| + mean |horizontal neighbour difference|).

    `weight` (N, C|1, H, W), optional, weighs each difference by the weight of its first pixel (a mask
    restricts the penalty to a region). Only `mean` and `sum` reductions: the two difference maps
    have different shapes, so there is no element-wise result to return.
    """

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean') -> None:
        check_reduction(reduction, ('mean', 'sum'), 'WeightedTVLoss')
        super().__init__(loss_weight=loss_weight, reduction=reduction)

    def forward(self, pred: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        y_weight = None if weight is None else weight[:, :, :-1, :]
        x_weight = None if weight is None else weight[:, :, :, :-1]
        y_diff = super().forward(pred[:, :, :-1, :], pred[:, :, 1:, :], weight=y_weight)
        x_diff = super().forward(pred[:, :, :, :-1], pred[:, :, :, 1:], weight=x_weight)
        return x_diff + y_diff
