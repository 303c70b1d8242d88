"""upfirdn2d: upsample (zero insertion), FIR filter, downsample, in plain PyTorch.

This is the resampling primitive of the original StyleGAN2 (blur before a stride-2 conv, after a
transposed conv, and for upsampling the RGB skip). Upstream needs a compiled CUDA extension for
speed; here it is one zero-insertion, one pad/crop and one strided depthwise conv, which gives the
same numbers on any device, exports to ONNX and needs nothing compiled.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F

Pad = Union[int, Sequence[int]]


def _expand_pad(pad: Pad) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) from an int, a pair (used for both axes, as upstream) or a 4-tuple."""
    if isinstance(pad, int):
        return pad, pad, pad, pad
    pad = tuple(int(p) for p in pad)
    if len(pad) == 2:
        return pad[0], pad[1], pad[0], pad[1]
    if len(pad) == 4:
        return pad  # type: ignore[return-value]
    raise ValueError(f'upfirdn2d pad must be an int, (p0, p1) or (x0, x1, y0, y1); got {pad}.')


def _pair(v: int | Sequence[int], name: str) -> tuple[int, int]:
    """(x, y) factors from an int or a pair."""
    if isinstance(v, int):
        vx = vy = v
    else:
        vx, vy = (int(i) for i in v)
    if vx < 1 or vy < 1:
        raise ValueError(f'upfirdn2d {name} factors must be >= 1; got {v}.')
    return vx, vy


def upfirdn2d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: int | Sequence[int] = 1,
    down: int | Sequence[int] = 1,
    pad: Pad = (0, 0),
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative = crop), filter with `kernel`, keep every `down`-th pixel.

    Same semantics as the StyleGAN2 op: the filter is a true convolution (the kernel is flipped),
    each zero-inserted sample sits at index `i * up`, and `pad = (x0, x1, y0, y1)` (or one pair for
    both axes). x: (N, C, H, W); kernel: (kh, kw). Output height
    `(H * up + y0 + y1 - kh) // down + 1`, likewise for the width.
    """
    if x.ndim != 4:
        raise ValueError(f'upfirdn2d expects a 4-D (N, C, H, W) input; got shape {tuple(x.shape)}.')
    if kernel.ndim != 2:
        raise ValueError(f'upfirdn2d expects a 2-D FIR kernel; got shape {tuple(kernel.shape)}.')
    up_x, up_y = _pair(up, 'up')
    down_x, down_y = _pair(down, 'down')
    pad_x0, pad_x1, pad_y0, pad_y1 = _expand_pad(pad)
    n, c, h, w = x.shape
    kh, kw = kernel.shape

    if up_x > 1 or up_y > 1:  # zero insertion: sample i lands at i * up, followed by up - 1 zeros
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up_x - 1, 0, 0, 0, up_y - 1])
        x = x.reshape(n, c, h * up_y, w * up_x)

    # F.pad accepts negative amounts and crops, which is exactly the upfirdn meaning of a negative pad.
    x = F.pad(x, [pad_x0, pad_x1, pad_y0, pad_y1])
    if not torch.jit.is_tracing() and (x.shape[-2] < kh or x.shape[-1] < kw):
        raise ValueError(
            f'upfirdn2d: padded input {tuple(x.shape[-2:])} is smaller than the kernel {(kh, kw)}; '
            'increase pad or use a larger input.'
        )
    weight = torch.flip(kernel, [0, 1]).to(dtype=x.dtype, device=x.device)
    stride = (down_y, down_x)
    if torch.jit.is_tracing():  # ONNX needs a weight of static shape: the single-channel form
        return filter_folded(x, weight, stride)
    return filter_depthwise(x, weight, stride)


def filter_depthwise(x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int]) -> torch.Tensor:
    """Filter every channel alike with one depthwise conv; the stride computes only the kept samples."""
    c = x.shape[1]
    return F.conv2d(x, weight.expand(c, 1, *weight.shape), stride=stride, groups=c)


def filter_folded(x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int]) -> torch.Tensor:
    """The same filter as upstream's native path runs it: channels folded into the batch, one single-channel
    conv. Equal numbers, but 20-100x slower than `filter_depthwise` on CPU (forward + backward)."""
    n, c, h, w = x.shape
    out = F.conv2d(x.reshape(n * c, 1, h, w), weight.view(1, 1, *weight.shape), stride=stride)
    return out.view(n, c, *out.shape[-2:])
