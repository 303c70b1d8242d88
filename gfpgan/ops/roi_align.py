"""RoIAlign (Mask R-CNN) with torchvision's semantics, usable without torchvision.

GFPGAN crops eyes and mouth out of the restored face with RoIAlign for its component
discriminators. torchvision's kernel is used when torchvision imports; otherwise an equivalent
pure-PyTorch version runs. It exploits that bilinear sampling on a regular grid is separable: each
box is `A_y @ image @ A_x^T` with small dense interpolation matrices, which is exact (up to float
rounding), differentiable and fast, instead of a gather per sample point.
"""
from __future__ import annotations

import math
from typing import Sequence, Union

import torch
from torch import Tensor

try:  # torchvision is optional; on some installs importing it raises RuntimeError, not ImportError
    from torchvision.ops import roi_align as _tv_roi_align
except Exception:  # noqa: BLE001
    _tv_roi_align = None

Boxes = Union[Tensor, Sequence[Tensor]]


def _boxes_to_rois(boxes: Boxes, ref: Tensor) -> Tensor:
    """Tensor[K, 5] (batch index, x1, y1, x2, y2) from that or from a list of per-image Tensor[L, 4]."""
    if isinstance(boxes, Tensor):
        if boxes.ndim != 2 or boxes.shape[1] != 5:
            raise ValueError(
                f'roi_align boxes must be Tensor[K, 5] (batch_idx, x1, y1, x2, y2) or a list of Tensor[L, 4]; '
                f'got shape {tuple(boxes.shape)}.'
            )
        return boxes
    rois = []
    for i, b in enumerate(boxes):
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f'roi_align: boxes[{i}] must be Tensor[L, 4] (x1, y1, x2, y2); got {tuple(b.shape)}.')
        rois.append(torch.cat([torch.full_like(b[:, :1], i), b], dim=1))
    if not rois:
        return ref.new_zeros(0, 5)
    return torch.cat(rois, dim=0)


def _output_hw(output_size: int | float | Sequence[int]) -> tuple[int, int]:
    """(height, width) from an int (or an integral float, as `80 * face_ratio` gives) or a pair."""
    sizes = [output_size, output_size] if isinstance(output_size, (int, float)) else list(output_size)
    if len(sizes) != 2 or any(float(v) != int(v) or int(v) < 1 for v in sizes):
        raise ValueError(f'roi_align output_size must be a positive int or an (h, w) pair; got {output_size!r}.')
    return int(sizes[0]), int(sizes[1])


def _interp_matrix(start: Tensor, size: Tensor, bins: int, grid: int, length: int) -> Tensor:
    """(bins, length) matrix averaging the bilinear samples of each bin along one axis (torchvision rules)."""
    dtype, device = start.dtype, start.device
    if grid <= 0:
        return torch.zeros(bins, length, dtype=dtype, device=device)
    bin_size = size / bins
    pos = torch.arange(bins, dtype=dtype, device=device)[:, None] * bin_size
    pos = pos + (torch.arange(grid, dtype=dtype, device=device)[None, :] + 0.5) * bin_size / grid
    pos = (start + pos).reshape(-1)
    valid = (pos >= -1.0) & (pos <= length)  # torchvision drops samples more than 1 px outside
    pos = pos.clamp(min=0)
    low = pos.floor().long()
    at_edge = low >= length - 1
    low = torch.where(at_edge, torch.full_like(low, length - 1), low)
    high = torch.where(at_edge, low, low + 1)
    frac = torch.where(at_edge, torch.zeros_like(pos), pos - low.to(dtype))
    idx = torch.arange(length, device=device)
    matrix = (1 - frac)[:, None] * (idx == low[:, None]) + frac[:, None] * (idx == high[:, None])
    matrix = matrix * valid[:, None]
    return matrix.reshape(bins, grid, length).sum(1) / grid


def roi_align_pure(
    input: Tensor,
    boxes: Boxes,
    output_size: int | Sequence[int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """Pure-PyTorch RoIAlign, same arguments and results as `torchvision.ops.roi_align`."""
    if input.ndim != 4:
        raise ValueError(f'roi_align expects a 4-D (N, C, H, W) input; got shape {tuple(input.shape)}.')
    ph, pw = _output_hw(output_size)
    rois = _boxes_to_rois(boxes, input)
    n, c, h, w = input.shape
    coord_dtype = input.dtype if input.dtype in (torch.float32, torch.float64) else torch.float32
    rois = rois.to(device=input.device, dtype=coord_dtype)
    offset = 0.5 if aligned else 0.0
    outputs = []
    for roi in rois:
        b = int(roi[0].item())
        if not 0 <= b < n:
            raise IndexError(f'roi_align: box batch index {b} is outside the input batch of {n} images.')
        x1, y1, x2, y2 = roi[1:] * spatial_scale - offset
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:  # torchvision's legacy behaviour: force boxes to be at least 1x1
            roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h.item() / ph)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w.item() / pw)
        a_y = _interp_matrix(y1, roi_h, ph, grid_h, h).to(input.dtype)
        a_x = _interp_matrix(x1, roi_w, pw, grid_w, w).to(input.dtype)
        outputs.append(a_y @ input[b] @ a_x.t())
    if not outputs:
        return input.new_zeros(0, c, ph, pw)
    return torch.stack(outputs)


def roi_align(
    input: Tensor,
    boxes: Boxes,
    output_size: int | Sequence[int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign of `boxes` (Tensor[K, 5] of (batch_idx, x1, y1, x2, y2), or a list of Tensor[L, 4]).

    Returns (K, C, *output_size). Uses torchvision's kernel when available, else `roi_align_pure`.
    """
    if _tv_roi_align is not None:
        return _tv_roi_align(input, boxes, _output_hw(output_size), spatial_scale, sampling_ratio, aligned)
    return roi_align_pure(input, boxes, output_size, spatial_scale, sampling_ratio, aligned)
