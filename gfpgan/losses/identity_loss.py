"""Identity loss: L1 between face embeddings (ArcFace upstream) of the restored and the ground-truth face.

Images are RGB in [-1, 1]; as upstream GFPGAN they are converted to gray with (0.2989, 0.5870, 0.1140)
without changing the range, resized to 128 (bilinear) and embedded. Any registered embedding network
works (`network: {type: ResNetArcFace, ...}` plus `weights_path`) or a ready module.
"""
from __future__ import annotations

import os
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.archs.identity_embedding import build_embedding_network, gray_resize_for_identity
from gfpgan.losses.basic_loss import check_reduction
from gfpgan.utils.registry import LOSS_REGISTRY


@LOSS_REGISTRY.register()
class IdentityLoss(nn.Module):
    """`loss_weight * L1(embed(pred), embed(gt).detach())`.

    Args:
        network: option dict of a registered embedding network (e.g. `{type: ResNetArcFace, block: IRBlock,
            layers: [2, 2, 2, 2], use_se: false}`) or a module.
        weights_path, param_key: its weights; None keeps the network as given (e.g. already loaded).
        size: side of the gray input the network expects (128 for ArcFace).
    """

    def __init__(self, network: Mapping | nn.Module, weights_path: str | os.PathLike | None = None,
                 param_key: str | None = 'params_ema', loss_weight: float = 1.0, reduction: str = 'mean',
                 size: int = 128) -> None:
        super().__init__()
        self.net = build_embedding_network(network, weights_path, param_key)
        self.loss_weight = loss_weight
        self.reduction = check_reduction(reduction, owner='IdentityLoss')
        self.size = size

    def train(self, mode: bool = True) -> IdentityLoss:
        super().train(mode)
        self.net.eval()  # a frozen embedding network never updates BatchNorm statistics
        return self

    def embed(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(gray_resize_for_identity(img, self.size))

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.embed(gt)
        return self.loss_weight * F.l1_loss(self.embed(pred), target, reduction=self.reduction)
