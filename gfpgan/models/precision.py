"""Mixed precision and memory layout, one meaning for every model.

Top-level `amp: bf16 | fp16 | ~`: the forward passes run under autocast in that dtype; fp16 (which under-
and overflows) also gets gradient scaling, bf16 does not need it. `channels_last: true` puts networks
(see `NetworkMixin.model_to_device`) and 4-d batches in the channels_last layout.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def amp_dtype_of(amp: Any) -> torch.dtype | None:
    """`amp` option -> autocast dtype (None: float32); anything but bf16, fp16, ~ or false is an error."""
    if amp is None or amp is False:
        return None
    if isinstance(amp, str) and amp in AMP_DTYPES:
        return AMP_DTYPES[amp]
    raise ValueError(f'amp: expected bf16, fp16 or ~ (off), got {amp!r}.')


class PrecisionMixin:
    """AMP and layout of BaseModel; expects `opt` and `device`."""

    def setup_precision(self) -> None:
        self.amp_dtype = amp_dtype_of(self.opt.get('amp'))
        self.channels_last = bool(self.opt.get('channels_last'))
        self.grad_scalers: dict[str, torch.amp.GradScaler] = {}

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast in the `amp` dtype on the model's device, or nothing in float32."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self, name: str) -> torch.amp.GradScaler:
        """A gradient scaler (enabled for fp16 only), kept in the training state under `name`."""
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.grad_scalers[name] = scaler
        return scaler

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """A batch tensor on the model's device, channels_last when asked (4-d tensors)."""
        tensor = tensor.to(self.device, non_blocking=True)
        if tensor.dim() == 4:
            fmt = torch.channels_last if self.channels_last else torch.contiguous_format
            tensor = tensor.contiguous(memory_format=fmt)
        return tensor
