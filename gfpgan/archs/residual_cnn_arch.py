"""A small residual CNN restorer: a baseline for pixel-loss restoration and the framework's smoke tests."""

from __future__ import annotations

import torch
from torch import nn

from gfpgan.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class ResidualCNN(nn.Module):
    """Predicts a correction that is added to the input (same size in and out).

    Args:
        num_in_ch / num_out_ch: image channels.
        num_feat: width of the hidden convolutions.
        num_block: number of conv + LeakyReLU blocks between the head and the tail.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 32, num_block: int = 4) -> None:
        super().__init__()
        self.head = nn.Conv2d(num_in_ch, num_feat, 3, padding=1)
        self.body = nn.Sequential(
            *[
                nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, padding=1), nn.LeakyReLU(0.2, True))
                for _ in range(num_block)
            ]
        )
        self.tail = nn.Conv2d(num_feat, num_out_ch, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        self.skip = num_in_ch == num_out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.tail(self.body(torch.relu(self.head(x))))
        return out + x if self.skip else out
