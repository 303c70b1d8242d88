"""VGGStyleDiscriminator (ESRGAN's discriminator): strided conv + batch-norm stages down to 4x4, then two
linear layers to one score per image.

Module names follow BasicSR (`conv0_0`, `conv0_1`, `bn0_1`, `conv1_0`, `bn1_0`, ... `conv4_1`, `bn4_1`,
`conv5_*`/`bn5_*` for 256 px, `linear1`, `linear2`), so ESRGAN's `net_d` checkpoints load strictly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.utils.registry import ARCH_REGISTRY

INPUT_SIZES = {128: 5, 256: 6}  # input side -> number of stride-2 stages (each ends at 4 x 4)


@ARCH_REGISTRY.register()
class VGGStyleDiscriminator(nn.Module):
    """`(N, num_in_ch, input_size, input_size)` -> `(N, 1)` scores.

    Stage i has a 3x3 conv and a 4x4 stride-2 conv, widths num_feat * (1, 2, 4, 8, 8, 8); the first conv
    has a bias and no norm, every other conv is bias-free and followed by batch norm.
    """

    def __init__(self, num_in_ch: int, num_feat: int, input_size: int = 128) -> None:
        super().__init__()
        if input_size not in INPUT_SIZES:
            raise ValueError(f'VGGStyleDiscriminator: input_size must be one of {sorted(INPUT_SIZES)}, '
                             f'got {input_size}.')
        self.input_size = input_size
        self.num_stages = INPUT_SIZES[input_size]
        widths = [num_feat * m for m in (1, 2, 4, 8, 8, 8)][: self.num_stages]
        self.conv0_0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=True)
        prev = num_feat
        for i, width in enumerate(widths):
            if i > 0:
                self.add_module(f'conv{i}_0', nn.Conv2d(prev, width, 3, 1, 1, bias=False))
                self.add_module(f'bn{i}_0', nn.BatchNorm2d(width, affine=True))
            self.add_module(f'conv{i}_1', nn.Conv2d(width, width, 4, 2, 1, bias=False))
            self.add_module(f'bn{i}_1', nn.BatchNorm2d(width, affine=True))
            prev = width
        self.linear1 = nn.Linear(prev * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f'VGGStyleDiscriminator(input_size={self.input_size}) got an input of '
                             f'{tuple(x.shape[-2:])}; crop the images (gt_size) to that size.')
        feat = F.leaky_relu(self.conv0_0(x), 0.2)
        for i in range(self.num_stages):
            if i > 0:
                feat = F.leaky_relu(getattr(self, f'bn{i}_0')(getattr(self, f'conv{i}_0')(feat)), 0.2)
            feat = F.leaky_relu(getattr(self, f'bn{i}_1')(getattr(self, f'conv{i}_1')(feat)), 0.2)
        return self.linear2(F.leaky_relu(self.linear1(feat.flatten(1)), 0.2))
