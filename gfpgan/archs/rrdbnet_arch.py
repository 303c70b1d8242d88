"""RRDBNet (ESRGAN, Wang et al., 2018): the background upsampler of GFPGAN's inference.

Module names follow Real-ESRGAN's RealESRGAN_x4plus.pth / RealESRGAN_x2plus.pth (`conv_first`,
`body.N.rdb1.conv1`, `conv_body`, `conv_up1`, `conv_up2`, `conv_hr`, `conv_last`), so they load strictly.
The x2 and x1 variants pixel-unshuffle the input first (by 2 and 4), run the same x4 trunk at the
lower resolution, and so end at x2 / x1: cheaper than a trunk at full resolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.utils.registry import ARCH_REGISTRY

UNSHUFFLE = {4: 1, 2: 2, 1: 4}  # output scale -> pixel-unshuffle factor of the input


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def scaled_init_(module: nn.Module, scale: float = 0.1) -> None:
    """Kaiming init scaled down, so a deep stack of residual blocks starts close to the identity."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
            m.weight.data.mul_(scale)
            nn.init.zeros_(m.bias)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs (each sees all previous outputs); residual scaled by 0.2."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        for i in range(4):
            self.add_module(f'conv{i + 1}', nn.Conv2d(num_feat + i * num_grow_ch, num_grow_ch, 3, 1, 1))
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        scaled_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(lrelu(conv(torch.cat(feats, 1))))
        return x + 0.2 * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks, residual scaled by 0.2."""

    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


@ARCH_REGISTRY.register()
class RRDBNet(nn.Module):
    """Image `(N, num_in_ch, H, W)` -> `(N, num_out_ch, H * scale, W * scale)`.

    Args:
        scale: 4, 2 or 1. For 2 and 1, H and W must be divisible by 2 and 4 (pixel-unshuffle).
        num_feat: trunk width. num_block: number of RRDBs. num_grow_ch: dense-block growth width.
    """

    def __init__(self, num_in_ch: int, num_out_ch: int, scale: int = 4, num_feat: int = 64, num_block: int = 23,
                 num_grow_ch: int = 32) -> None:
        super().__init__()
        if scale not in UNSHUFFLE:
            raise ValueError(f'RRDBNet: scale must be 1, 2 or 4, got {scale}.')
        self.scale = scale
        self.unshuffle = UNSHUFFLE[scale]
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle ** 2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            if x.shape[-2] % self.unshuffle or x.shape[-1] % self.unshuffle:
                raise ValueError(f'RRDBNet x{self.scale}: input sides must be divisible by {self.unshuffle}, '
                                 f'got {tuple(x.shape)}; pad the image first (tile_upsample does).')
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode='nearest')))
        feat = lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode='nearest')))
        return self.conv_last(lrelu(self.conv_hr(feat)))
