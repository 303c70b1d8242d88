"""Bias add + leaky ReLU(0.2) + gain sqrt(2): the StyleGAN2 'fused' activation, in plain PyTorch.

The gain keeps the activations' second moment at 1 after a leaky ReLU (equalized learning rate);
upstream fuses the three steps into a CUDA kernel, which autograd and export get for free here.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def fused_leaky_relu(
    x: torch.Tensor, bias: torch.Tensor | None = None, negative_slope: float = 0.2, scale: float = math.sqrt(2)
) -> torch.Tensor:
    """`leaky_relu(x + bias, negative_slope) * scale`, with `bias` (C,) broadcast over dim 1 of `x`."""
    if bias is not None:
        tracing = torch.jit.is_tracing()  # shape checks would only be baked into a trace
        if not tracing and (bias.ndim != 1 or (x.ndim > 1 and bias.shape[0] != x.shape[1])):
            raise ValueError(
                f'fused_leaky_relu: bias of shape {tuple(bias.shape)} does not match the {x.shape[1]} '
                f'channels (dim 1) of an input of shape {tuple(x.shape)}.'
            )
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    """A learnable per-channel bias followed by the scaled leaky ReLU (state-dict key `bias`)."""

    def __init__(self, channels: int, negative_slope: float = 0.2, scale: float = math.sqrt(2)) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)

    def extra_repr(self) -> str:
        return f'{self.bias.shape[0]}, negative_slope={self.negative_slope}, scale={self.scale:.4f}'
