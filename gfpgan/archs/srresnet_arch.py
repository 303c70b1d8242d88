"""MSRResNet (BasicSR's modified SRResNet): residual blocks without batch norm, pixel-shuffle upsampling.

Module names follow BasicSR's release files (`MSRResNet_x4`: `conv_first`, `body.N.conv1/conv2`,
`upconv1`, `upconv2` (x4 only), `conv_hr`, `conv_last`), so they load strictly. The network learns the
residual over a bilinear upsampling of the input.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.archs.rrdbnet_arch import scaled_init_
from gfpgan.utils.registry import ARCH_REGISTRY


class ResidualBlockNoBN(nn.Module):
    """conv-ReLU-conv with an identity shortcut; `res_scale` damps the residual of deep stacks."""

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        scaled_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x)))


@ARCH_REGISTRY.register()
class MSRResNet(nn.Module):
    """Image `(N, num_in_ch, H, W)` -> `(N, num_out_ch, H * upscale, W * upscale)`.

    Args:
        num_feat: trunk width. num_block: residual blocks. upscale: 2, 3 (one pixel shuffle) or 4 (two x2).
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16,
                 upscale: int = 4) -> None:
        super().__init__()
        if upscale not in (2, 3, 4):
            raise ValueError(f'MSRResNet: upscale must be 2, 3 or 4, got {upscale}.')
        self.upscale = upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(ResidualBlockNoBN(num_feat) for _ in range(num_block)))
        shuffle = 2 if upscale == 4 else upscale
        self.upconv1 = nn.Conv2d(num_feat, num_feat * shuffle * shuffle, 3, 1, 1)
        if upscale == 4:
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(shuffle)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        for m in (self.conv_first, self.upconv1, self.conv_hr, self.conv_last, getattr(self, 'upconv2', None)):
            if m is not None:
                scaled_init_(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.body(F.leaky_relu(self.conv_first(x), 0.1))
        feat = F.leaky_relu(self.pixel_shuffle(self.upconv1(feat)), 0.1)
        if self.upscale == 4:
            feat = F.leaky_relu(self.pixel_shuffle(self.upconv2(feat)), 0.1)
        out = self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.1))
        return out + F.interpolate(x, scale_factor=self.upscale, mode='bilinear', align_corners=False)
