"""channels_last conversion that works on networks with 5-D weights."""
from __future__ import annotations

import torch
from torch import nn


def to_channels_last(net: nn.Module) -> nn.Module:
    """Store every 4-D parameter and buffer channels_last, in place; returns `net`.

    `Module.to(memory_format=torch.channels_last)` fails on StyleGAN2's 5-D modulated-conv weights;
    converting tensor by tensor skips them (their convs still run channels_last when the input is).
    Feed inputs as `x.contiguous(memory_format=torch.channels_last)`.
    """
    for tensor in [*net.parameters(), *net.buffers()]:
        if tensor.ndim == 4:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return net
