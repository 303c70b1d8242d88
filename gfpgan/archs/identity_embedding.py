"""Face-identity embeddings as GFPGAN uses them: RGB -> gray (0.2989, 0.5870, 0.1140) -> 128 px -> network.

Shared by the identity loss, the identity-distance metric and GFPGANModel, so it lives with the archs.
"""
from __future__ import annotations

import os
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

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
