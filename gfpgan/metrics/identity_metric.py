"""Identity distance "Deg.": the angle in degrees between face embeddings of restored and ground-truth faces.

The GFPGAN paper reports it with ArcFace; any registered embedding network works. Embeddings come from
the same gray/128 preprocessing as the identity loss, so the metric and the loss see the same input.
"""
from __future__ import annotations

import json
import os
from typing import Mapping

import numpy as np
import torch
from torch import nn

from gfpgan.archs.identity_embedding import build_embedding_network, gray_resize_for_identity
from gfpgan.utils.registry import METRIC_REGISTRY

_NETWORKS: dict[str, nn.Module] = {}  # built once per (network options, weights) per process


def embedding_angle(emb: torch.Tensor, emb2: torch.Tensor) -> torch.Tensor:
    """Per-row angle in degrees between two (N, D) embedding batches, float64."""
    emb, emb2 = emb.double().flatten(1), emb2.double().flatten(1)
    cos = torch.nn.functional.cosine_similarity(emb, emb2, dim=1, eps=1e-12).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.arccos(cos))


@torch.no_grad()
def identity_distance_pt(img: torch.Tensor, img2: torch.Tensor, net: nn.Module, size: int = 128) -> torch.Tensor:
    """Per-image angle (degrees) for RGB batches in [-1, 1] of shape (N, 3, H, W)."""
    return embedding_angle(net(gray_resize_for_identity(img, size)), net(gray_resize_for_identity(img2, size)))


def _cached_network(network: Mapping | nn.Module, weights_path: str | os.PathLike | None,
                    param_key: str | None) -> nn.Module:
    if isinstance(network, nn.Module):
        return build_embedding_network(network, weights_path, param_key)
    key = json.dumps([dict(network), str(weights_path), param_key], sort_keys=True, default=str)
    if key not in _NETWORKS:
        _NETWORKS[key] = build_embedding_network(network, weights_path, param_key)
    return _NETWORKS[key]


def _bgr_uint8_to_tensor(img: np.ndarray | torch.Tensor, input_order: str) -> torch.Tensor:
    """BGR [0, 255] image (HWC or CHW) -> (1, 3, H, W) RGB in [-1, 1]."""
    arr = np.asarray(img, dtype=np.float32)
    if input_order == 'CHW':
        arr = arr.transpose(1, 2, 0)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f'calculate_identity_distance expects 3-channel BGR images, got shape {arr.shape}.')
    rgb = torch.from_numpy(np.ascontiguousarray(arr[:, :, ::-1])).permute(2, 0, 1)[None]
    return rgb / 127.5 - 1.0


@METRIC_REGISTRY.register(better='lower')
def calculate_identity_distance(img: np.ndarray, img2: np.ndarray, network: Mapping | nn.Module,
                                weights_path: str | os.PathLike | None = None, param_key: str | None = 'params_ema',
                                input_order: str = 'HWC', size: int = 128, **kwargs) -> float:
    """Angle (degrees) between embeddings of two BGR [0, 255] images, as validation passes them.

    `network` is a registered embedding network's option dict (e.g. `{type: ResNetArcFace, block: IRBlock,
    layers: [2, 2, 2, 2], use_se: false}`) built once per process, or a module.
    """
    net = _cached_network(network, weights_path, param_key)
    device = next(net.parameters()).device
    a = _bgr_uint8_to_tensor(img, input_order).to(device)
    b = _bgr_uint8_to_tensor(img2, input_order).to(device)
    return float(identity_distance_pt(a, b, net, size)[0])
