"""Pixel and perceptual losses with BasicSR's options, so upstream `pixel_opt` / `perceptual_opt` blocks work."""
from __future__ import annotations

import os
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.utils.registry import LOSS_REGISTRY

REDUCTIONS = ('none', 'mean', 'sum')


def check_reduction(reduction: str, allowed: tuple[str, ...] = REDUCTIONS, owner: str = 'loss') -> str:
    if reduction not in allowed:
        raise ValueError(f"{owner}: unsupported reduction {reduction!r}; choose one of {', '.join(allowed)}.")
    return reduction


def weight_reduce_loss(loss: torch.Tensor, weight: torch.Tensor | None = None, reduction: str = 'mean') -> torch.Tensor:
    """Apply an element-wise `weight`, then reduce.

    With `mean` the sum is divided by the total weight (a mask of valid pixels gives the mean over
    them); a one-channel weight counts once per loss channel, as in BasicSR.
    """
    if weight is not None:
        if weight.dim() != loss.dim():
            raise ValueError(f'weight has {weight.dim()} dims, loss has {loss.dim()}; they must broadcast.')
        loss = loss * weight
    if reduction == 'none':
        return loss
    if reduction == 'sum' or weight is None:
        return loss.sum() if reduction == 'sum' else loss.mean()
    total = weight.sum() if weight.size(1) > 1 else weight.sum() * loss.size(1)
    return loss.sum() / total


class _PixelLoss(nn.Module):
    """Shared `loss_weight`, `reduction` and weighted reduction of the element-wise losses below."""

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.reduction = check_reduction(reduction, owner=type(self).__name__)

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        return self.loss_weight * weight_reduce_loss(self.elementwise(pred, target), weight, self.reduction)


@LOSS_REGISTRY.register()
class L1Loss(_PixelLoss):
    """Mean absolute error."""

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(pred, target, reduction='none')


@LOSS_REGISTRY.register()
class MSELoss(_PixelLoss):
    """Mean squared error."""

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(pred, target, reduction='none')


@LOSS_REGISTRY.register()
class CharbonnierLoss(_PixelLoss):
    """sqrt((pred - target)^2 + eps): L1 that is smooth at 0."""

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean', eps: float = 1e-12) -> None:
        super().__init__(loss_weight, reduction)
        self.eps = eps

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((pred - target) ** 2 + self.eps)


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C) channel correlations, normalised by C*H*W."""
    n, c, h, w = x.shape
    f = x.reshape(n, c, h * w)
    return f.bmm(f.transpose(1, 2)) / (c * h * w)


@LOSS_REGISTRY.register()
class PerceptualLoss(nn.Module):
    """VGG feature (perceptual) and Gram-matrix (style) distances, summed over weighted layers.

    Args:
        layer_weights: `{vgg layer name: weight}`, e.g. `{'conv1_2': 0.1, 'conv5_4': 1}`.
        vgg_type, use_input_norm, range_norm: passed to `VGGFeatureExtractor` (`range_norm` for [-1, 1] input).
        perceptual_weight, style_weight: scale of each term; 0 disables it (its output is None).
        criterion: 'l1', 'l2' or 'fro' (Frobenius norm of the difference, per layer).
        vgg_weights_path: torchvision-format VGG checkpoint. Without it, torchvision's own file is taken from
            torch's hub cache (`torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth`, where upstream's
            torchvision finds it), downloaded there once when online; offline, the error names file and URL.
        allow_random_vgg: use a randomly initialised VGG when no `vgg_weights_path` is given (tests, smoke
            runs): random features make a meaningless loss that still trains, so it is never a fallback.
        reduction: 'mean' or 'sum' over the elements of each layer's difference (l1/l2).
        feature_extractor: a ready module returning `{layer: feature}`; replaces the VGG (tests, other nets).

    `forward(x, gt)` returns `(percep_loss, style_loss)`; `gt` features are detached.
    """

    def __init__(self, layer_weights: Mapping[str, float], vgg_type: str = 'vgg19', use_input_norm: bool = True,
                 range_norm: bool = False, perceptual_weight: float = 1.0, style_weight: float = 0.0,
                 criterion: str = 'l1', vgg_weights_path: str | os.PathLike | None = None,
                 allow_random_vgg: bool = False, reduction: str = 'mean',
                 feature_extractor: nn.Module | None = None) -> None:
        super().__init__()
        if criterion not in ('l1', 'l2', 'fro'):
            raise ValueError(f"PerceptualLoss: criterion {criterion!r} is not supported; use 'l1', 'l2' or 'fro'.")
        self.reduction = check_reduction(reduction, ('mean', 'sum'), 'PerceptualLoss')
        self.layer_weights = dict(layer_weights)
        self.perceptual_weight = perceptual_weight
        self.style_weight = style_weight
        self.criterion = criterion
        if feature_extractor is None:
            feature_extractor = self._build_vgg(vgg_type, use_input_norm, range_norm, vgg_weights_path,
                                                allow_random_vgg)
        self.vgg = feature_extractor

    def _build_vgg(self, vgg_type: str, use_input_norm: bool, range_norm: bool,
                   weights_path: str | os.PathLike | None, allow_random: bool) -> nn.Module:
        from gfpgan.archs.vgg_arch import VGGFeatureExtractor  # lazily: losses import before archs are needed
        from gfpgan.utils.torchvision_weights import torchvision_weights_path

        if weights_path is not None or not allow_random:
            try:
                weights_path = torchvision_weights_path(vgg_type, weights_path)
            except FileNotFoundError as err:
                raise FileNotFoundError(f'PerceptualLoss (perceptual_opt): {err} Or set allow_random_vgg: true if '
                                        'random VGG features are really meant.') from err

        return VGGFeatureExtractor(list(self.layer_weights), vgg_type=vgg_type, use_input_norm=use_input_norm,
                                   range_norm=range_norm, weights_path=weights_path)

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.criterion == 'fro':
            return torch.linalg.vector_norm(a - b)
        fn = F.l1_loss if self.criterion == 'l1' else F.mse_loss
        return fn(a, b, reduction=self.reduction)

    def forward(self, x: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x_feats = self.vgg(x)
        gt_feats = {k: v.detach() for k, v in self.vgg(gt.detach()).items()}
        percep = style = None
        if self.perceptual_weight > 0:
            percep = sum(self._distance(x_feats[k], gt_feats[k]) * w for k, w in self.layer_weights.items())
            percep = percep * self.perceptual_weight
        if self.style_weight > 0:
            style = sum(self._distance(gram_matrix(x_feats[k]), gram_matrix(gt_feats[k])) * w
                        for k, w in self.layer_weights.items())
            style = style * self.style_weight
        return percep, style
