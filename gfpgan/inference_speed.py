"""Prepare a generator for fast inference: channels_last layout, lower precision, torch.compile.

One place for the fast path, shared by `GFPGANer` (and so `inference_gfpgan.py`) and
`scripts/benchmark.py`, so the benchmark times exactly what the CLI runs. Measured numbers and
which mode to pick per device are in BENCHMARKS.md.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gfpgan.utils.memory_format import to_channels_last

DTYPES = {'fp32': torch.float32, 'float32': torch.float32, 'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16,
          'fp16': torch.float16, 'float16': torch.float16}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """torch dtype from 'fp32' / 'bf16' / 'fp16' (or their long names, or a dtype); None is float32."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype or torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}.")
    return DTYPES[dtype]


def channels_last_weights(net: nn.Module) -> nn.Module:
    """Store 4-D weights channels_last, and the (1, out, in, k, k) modulated-conv weights so that their
    4-D slice is channels_last too; in place, returns `net`.

    Convs then run on oneDNN's / cuDNN's NHWC kernels without reordering the weight every call. The
    tensors keep their shapes, so state-dict keys and shapes do not change.
    """
    to_channels_last(net)
    for tensor in [*net.parameters(), *net.buffers()]:
        if tensor.ndim == 5 and tensor.shape[0] == 1:
            tensor.data = tensor.data[0].contiguous(memory_format=torch.channels_last).unsqueeze(0)
    return net


def is_clean_stylegan(net: nn.Module) -> bool:
    """True for the plain-conv generators (GFPGANv1Clean, StyleGAN2GeneratorClean), where channels_last
    is measured to be faster with equal outputs; other archs (custom ops) keep the default layout."""
    from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
    from gfpgan.archs.stylegan2_clean_arch import StyleGAN2GeneratorClean

    return isinstance(net, (GFPGANv1Clean, StyleGAN2GeneratorClean))


def _mkldnn_pointwise_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, '_convolution_pointwise')


class PackedConv2d(nn.Module):
    """Inference-only stand-in for a CPU `nn.Conv2d`: oneDNN runs it with a weight reordered once
    (per input shape) instead of on every call, and can apply a leaky ReLU in the same pass.

    Holds the original `weight` / `bias` Parameters, so the state dict keys and values do not change;
    the packed copy is rebuilt when the weight is modified in place (its version counter moves).
    `negative_slope` set: forward is `leaky_relu(conv(x))` (used where a LeakyReLU followed the conv).
    """

    def __init__(self, conv: nn.Conv2d, negative_slope: float | None = None) -> None:
        super().__init__()
        if conv.padding_mode != 'zeros' or isinstance(conv.padding, str):
            raise ValueError(f'PackedConv2d needs zero padding given as numbers; got padding={conv.padding!r}, '
                             f'padding_mode={conv.padding_mode!r}.')
        self.weight, self.bias = conv.weight, conv.bias
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.negative_slope = negative_slope
        self._packed: tuple[tuple, torch.Tensor] | None = None

    def _packed_weight(self, x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.dtype, self.weight._version, self.weight.data_ptr())
        if self._packed is None or self._packed[0] != key:
            weight = self.weight.detach().contiguous(memory_format=torch.channels_last)
            packed = torch.ops.mkldnn._reorder_convolution_weight(
                weight, self.padding, self.stride, self.dilation, self.groups, list(x.shape))
            self._packed = (key, packed)
        return self._packed[1]

    def _conv(self, x: torch.Tensor, negative_slope: float | None) -> torch.Tensor:
        attr, scalars = ('leaky_relu', [negative_slope]) if negative_slope is not None else ('none', [])
        bias = None if self.bias is None else self.bias.detach()
        return torch.ops.mkldnn._convolution_pointwise(
            x, self._packed_weight(x), bias, self.padding, self.stride, self.dilation, self.groups, attr, scalars, '')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv(x, self.negative_slope)

    def forward_leaky_relu(self, x: torch.Tensor, negative_slope: float) -> torch.Tensor:
        """`leaky_relu(conv(x))` in one pass (see `gfpgan.archs.stylegan2_clean_arch.conv_leaky_relu`)."""
        if self.negative_slope is not None:
            raise RuntimeError('PackedConv2d already applies a leaky ReLU; it cannot apply a second one.')
        return self._conv(x, negative_slope)

    def extra_repr(self) -> str:
        return (f'{self.weight.shape[1]}, {self.weight.shape[0]}, kernel_size={tuple(self.weight.shape[2:])}, '
                f'padding={self.padding}, negative_slope={self.negative_slope}')


def prepack_convs(net: nn.Module) -> int:
    """Swap every `nn.Conv2d` of `net` for a `PackedConv2d` (a Conv2d + LeakyReLU pair inside an
    nn.Sequential becomes one fused conv and an Identity); in place, returns how many were swapped.

    For CPU fp32 inference only: the packed convs have no autograd. State dict keys stay the same.
    """
    count = 0
    for module in list(net.modules()):
        names = list(module._modules)
        for i, name in enumerate(names):
            child = module._modules[name]
            if not isinstance(child, nn.Conv2d):
                continue
            slope = None
            following = module._modules[names[i + 1]] if i + 1 < len(names) else None
            if isinstance(module, nn.Sequential) and isinstance(following, nn.LeakyReLU):
                slope = following.negative_slope
                module._modules[names[i + 1]] = nn.Identity()
            module._modules[name] = PackedConv2d(child, slope)
            count += 1
    return count


class FastGenerator:
    """A generator prepared for inference; call it like the network with an NCHW float tensor.

    The input is moved to the network's device, dtype and memory format, and the call runs under
    `torch.inference_mode()`. `net` is the prepared (uncompiled) module, `fn` what is called.
    """

    def __init__(self, net: nn.Module, fn: Any, device: torch.device, dtype: torch.dtype, channels_last: bool):
        self.net, self.fn, self.device, self.dtype, self.channels_last = net, fn, device, dtype, channels_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor, **kwargs: Any) -> Any:
        x = x.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            return self.fn(x, **kwargs)

    def __repr__(self) -> str:
        return (f'FastGenerator({type(self.net).__name__}, device={self.device}, dtype={self.dtype}, '
                f'channels_last={self.channels_last}, compiled={self.fn is not self.net})')


def prepare_for_inference(
    net: nn.Module,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    channels_last: bool | None = None,
    compile: bool = False,
    compile_mode: str | None = None,
    prepack: bool | None = None,
) -> FastGenerator:
    """Put `net` in eval mode without gradients, on `device` in `dtype`, optionally channels_last and compiled.

    channels_last: None picks it for the clean StyleGAN2/GFPGAN generators (faster on CPU and GPU,
        same outputs within float rounding) and leaves other archs alone.
    compile: wrap with `torch.compile` (inductor). On CPU the weights are frozen into the graph
        (`freezing`), which lets inductor prepack the oneDNN conv weights; do not train the net afterwards.
        The first call compiles (minutes for the 512 px network on 2 CPU cores), later calls are fast;
        each new batch size or dtype compiles again.
    compile_mode: torch.compile mode; 'reduce-overhead' adds CUDA graphs (helps at small batches on GPU).
    prepack: run the fixed-weight convs with oneDNN weights reordered once and leaky ReLUs fused
        (`prepack_convs`). None picks it for CPU fp32 eager channels_last runs, where it is faster with
        equal outputs; a compiled graph prepacks by itself (freezing).
    Modifies `net` in place (device, dtype, layout) and returns a `FastGenerator`.
    """
    device = torch.device(device) if device is not None else next(net.parameters()).device
    dtype = resolve_dtype(dtype)
    if dtype == torch.float16 and device.type == 'cpu':
        raise ValueError('fp16 inference needs a GPU; on CPU use dtype=bf16 or the default fp32.')
    net = net.eval().requires_grad_(False).to(device, dtype)
    if channels_last is None:
        channels_last = is_clean_stylegan(net)
    if channels_last:
        channels_last_weights(net)
    if prepack is None:
        prepack = (device.type == 'cpu' and dtype == torch.float32 and bool(channels_last) and not compile
                   and _mkldnn_pointwise_available())
    if prepack:
        if device.type != 'cpu' or compile:
            raise ValueError('prepack=True is for CPU eager inference (compile prepacks by itself).')
        prepack_convs(net)
    fn: Any = net
    if compile:
        fn = torch.compile(net, mode=compile_mode)
        if device.type == 'cpu':
            fn = _Frozen(fn)
    return FastGenerator(net, fn, device, dtype, bool(channels_last))


class _Frozen:
    """Call a compiled module with inductor's `freezing` on, so that (re)compilations fold the weights in as
    constants and prepack the oneDNN convs with their element-wise epilogues fused.

    `torch.compile(..., options={'freezing': True})` does not do this (torch 2.13): the option reaches
    inductor after the graph is captured, and the convs stay plain `aten.convolution` calls. The global
    config must be on while the compiled call runs, which is when compilation happens.
    """

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True):
            return self.fn(*args, **kwargs)
