"""SRVGGNetCompact (Real-ESRGAN's `realesr-general-x4v3`, `realesr-animevideov3`): a plain conv stack at
the input resolution, one pixel shuffle at the end, plus a nearest-neighbour upsampling of the input.
`upsample_base='bicubic'` adds a bicubic upsampling instead: the body then only learns a small correction
of a good image, which a tiny network trained for a few hundred CPU iterations needs (the release files
use nearest; the base has no parameters, so both load the same weights).

Parameters live in one `body` list, conv and activation alternating (`body.0` conv, `body.1` PReLU, ...,
`body.{2 * num_conv + 2}` the last conv), as in the release files, so they load strictly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.utils.registry import ARCH_REGISTRY

ACTIVATIONS = ('relu', 'prelu', 'leakyrelu')
UPSAMPLE_BASES = ('nearest', 'bicubic')


def _activation(act_type: str, num_feat: int) -> nn.Module:
    if act_type == 'relu':
        return nn.ReLU(inplace=True)
    if act_type == 'prelu':
        return nn.PReLU(num_parameters=num_feat)
    if act_type == 'leakyrelu':
        return nn.LeakyReLU(0.1, inplace=True)
    raise ValueError(f'SRVGGNetCompact: act_type must be one of {ACTIVATIONS}, got {act_type!r}.')


@ARCH_REGISTRY.register()
class SRVGGNetCompact(nn.Module):
    """Image `(N, num_in_ch, H, W)` -> `(N, num_out_ch, H * upscale, W * upscale)`.

    Args:
        num_feat: width. num_conv: 3x3 convs between the first and the last. act_type: relu, prelu
            (one slope per channel) or leakyrelu (slope 0.1). upsample_base: the interpolation the
            body's output is added to, nearest (release) or bicubic.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_conv: int = 16,
                 upscale: int = 4, act_type: str = 'prelu', upsample_base: str = 'nearest') -> None:
        super().__init__()
        if upsample_base not in UPSAMPLE_BASES:
            raise ValueError(f'SRVGGNetCompact: upsample_base must be one of {UPSAMPLE_BASES}, got {upsample_base!r}.')
        self.upscale, self.upsample_base = upscale, upsample_base
        layers: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), _activation(act_type, num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), _activation(act_type, num_feat)]
        layers.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.upscale, mode=self.upsample_base)
