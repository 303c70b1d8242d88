"""UNetDiscriminatorSN (Real-ESRGAN): a U-Net with spectral normalisation that scores every pixel.

Spectrally normalised convs use torch's `nn.utils.spectral_norm`, whose state-dict entries
(`convN.weight_orig`, `convN.weight_u`, `convN.weight_v`) are those of Real-ESRGAN's `net_d` files;
the parametrization API would name them differently and break strict loading.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from gfpgan.utils.registry import ARCH_REGISTRY


def _sn_conv(cin: int, cout: int, kernel: int, stride: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, kernel, stride, 1, bias=False))


@ARCH_REGISTRY.register()
class UNetDiscriminatorSN(nn.Module):
    """`(N, num_in_ch, H, W)` -> `(N, 1, H, W)` per-pixel realness; H and W must be divisible by 8.

    Three stride-2 downsampling convs (widths x2, x4, x8), three bilinear x2 upsamplings each followed
    by a conv (with `skip_connection`, added to the encoder feature of the same size), two extra convs
    and a plain 3x3 conv to one channel.
    """

    def __init__(self, num_in_ch: int, num_feat: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        self.skip_connection = skip_connection
        nf = num_feat
        self.conv0 = nn.Conv2d(num_in_ch, nf, 3, 1, 1)
        self.conv1 = _sn_conv(nf, nf * 2, 4, 2)
        self.conv2 = _sn_conv(nf * 2, nf * 4, 4, 2)
        self.conv3 = _sn_conv(nf * 4, nf * 8, 4, 2)
        self.conv4 = _sn_conv(nf * 8, nf * 4, 3, 1)
        self.conv5 = _sn_conv(nf * 4, nf * 2, 3, 1)
        self.conv6 = _sn_conv(nf * 2, nf, 3, 1)
        self.conv7 = _sn_conv(nf, nf, 3, 1)
        self.conv8 = _sn_conv(nf, nf, 3, 1)
        self.conv9 = nn.Conv2d(nf, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f'UNetDiscriminatorSN: input sides must be divisible by 8, got {tuple(x.shape)}.')
        x0 = F.leaky_relu(self.conv0(x), 0.2)
        x1 = F.leaky_relu(self.conv1(x0), 0.2)
        x2 = F.leaky_relu(self.conv2(x1), 0.2)
        feat = F.leaky_relu(self.conv3(x2), 0.2)
        for conv, skip in ((self.conv4, x2), (self.conv5, x1), (self.conv6, x0)):
            feat = F.interpolate(feat, scale_factor=2, mode='bilinear', align_corners=False)
            feat = F.leaky_relu(conv(feat), 0.2)
            if self.skip_connection:
                feat = feat + skip
        feat = F.leaky_relu(self.conv7(feat), 0.2)
        feat = F.leaky_relu(self.conv8(feat), 0.2)
        return self.conv9(feat)
