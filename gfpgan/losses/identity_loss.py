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

from gfpgan.losses.basic_loss import check_reduction
from gfpgan.utils.registry import LOSS_REGISTRY

GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)


def gray_resize_for_identity(img: torch.Tensor, size: int = 128) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, size, size) gray, the input format of ResNetArcFace."""
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f'Identity embedding expects (N, 3, H, W) RGB, got {tuple(img.shape)}.')
    weights = img.new_tensor(GRAY_WEIGHTS).view(1, 3, 1, 1)
    gray = (img * weights).sum(1, keepdim=True)
    return F.interpolate(gray, (size, size), mode='bilinear', align_corners=False)


def build_embedding_network(network: Mapping | nn.Module, weights_path: str | os.PathLike | None = None,
                            param_key: str | None = 'params_ema', strict: bool = True) -> nn.Module:
    """A frozen, eval-mode embedding network from an option dict (+ weights file) or a module."""
    if isinstance(network, nn.Module):
        net = network
    else:
        from gfpgan.archs import build_network  # lazily: archs register on first lookup

        net = build_network(dict(network), what='identity network')
    if weights_path is not None:
        from gfpgan.utils.checkpoint_io import load_weights

        if not os.path.isfile(weights_path):
            raise FileNotFoundError(f'Identity network weights not found: {weights_path} '
                                    '(e.g. arcface_resnet18.pth for ResNetArcFace).')
        load_weights(net, weights_path, param_key=param_key, strict=strict)
    net.requires_grad_(False)
    return net.eval()


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
