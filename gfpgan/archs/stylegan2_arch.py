"""The original StyleGAN2 generator and discriminator (equalized learning rate, upfirdn resampling).

Layer and parameter names follow BasicSR's `stylegan2_arch`, so its checkpoints (and the decoder of
GFPGANv1) load with `strict=True`. Equalized learning rate: weights are stored N(0, 1) and scaled at
run time by 1/sqrt(fan_in) (times `lr_mul` for the mapping MLP). What this variant adds to the shared
blocks of `stylegan2_layers` is the FIR (upfirdn) resampling: `UpFirDnModulatedConv2d` up/down
samples by a stride-2 (transposed) conv + blur, `UpFirDnToRGB` upsamples its skip the same way.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.archs.stylegan2_layers import (  # noqa: F401  (SQRT2, EqualLinear, ...: re-exported for upstream imports)
    SQRT2,
    EqualConv2d,
    EqualLinear,
    EqualModulatedConv,
    EqualStyleConv,
    EqualToRGB,
    ScaledLeakyReLU,
    StyleGAN2GeneratorBase,
    equal_style_mlp,
    stylegan2_channels,
)
from gfpgan.ops.fused_act import FusedLeakyReLU
from gfpgan.ops.upfirdn2d import upfirdn2d
from gfpgan.utils.registry import ARCH_REGISTRY


def make_resample_kernel(k: Sequence[float]) -> torch.Tensor:
    """A normalized 2-D FIR kernel from a 1-D (separable, outer product) or 2-D list."""
    k = torch.tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


class _FIRFilter(nn.Module):
    """Holds a fixed FIR kernel as a non-persistent buffer (moves with .to(), absent from state dicts)."""

    kernel: torch.Tensor

    def __init__(self, resample_kernel: Sequence[float], gain: float) -> None:
        super().__init__()
        self.register_buffer('kernel', make_resample_kernel(resample_kernel) * gain, persistent=False)


class UpFirDnUpsample(_FIRFilter):
    """2x (or `factor`x) upsampling by zero insertion + FIR filter."""

    def __init__(self, resample_kernel: Sequence[float], factor: int = 2) -> None:
        super().__init__(resample_kernel, factor**2)
        self.factor = factor
        pad = self.kernel.shape[0] - factor
        self.pad = ((pad + 1) // 2 + factor - 1, pad // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, down=1, pad=self.pad)


class UpFirDnDownsample(_FIRFilter):
    """FIR filter + keep every `factor`-th sample."""

    def __init__(self, resample_kernel: Sequence[float], factor: int = 2) -> None:
        super().__init__(resample_kernel, 1.0)
        self.factor = factor
        pad = self.kernel.shape[0] - factor
        self.pad = ((pad + 1) // 2, pad // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=1, down=self.factor, pad=self.pad)


class UpFirDnSmooth(_FIRFilter):
    """The blur paired with a strided (transposed) conv; the pad accounts for the conv's kernel size."""

    def __init__(
        self,
        resample_kernel: Sequence[float],
        upsample_factor: int = 1,
        downsample_factor: int = 1,
        kernel_size: int = 1,
    ) -> None:
        super().__init__(resample_kernel, upsample_factor**2 if upsample_factor > 1 else 1.0)
        taps = self.kernel.shape[0]
        if upsample_factor > 1:
            pad = (taps - upsample_factor) - (kernel_size - 1)
            self.pad = ((pad + 1) // 2 + upsample_factor - 1, pad // 2 + 1)
        elif downsample_factor > 1:
            pad = (taps - downsample_factor) + (kernel_size - 1)
            self.pad = ((pad + 1) // 2, pad // 2)
        else:
            raise ValueError('UpFirDnSmooth needs upsample_factor > 1 or downsample_factor > 1.')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class UpFirDnModulatedConv2d(EqualModulatedConv):
    """StyleGAN2 modulated conv; up/down sampling by a stride-2 (transposed) conv + FIR blur.

    Arguments as `ModulatedConvBase`, plus `resample_kernel` (the 1-D FIR taps of the blur).
    """

    def __init__(self, *args, resample_kernel: Sequence[float] = (1, 3, 3, 1), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.sample_mode == 'upsample':
            self.smooth = UpFirDnSmooth(resample_kernel, upsample_factor=2, kernel_size=self.kernel_size)
        elif self.sample_mode == 'downsample':
            self.smooth = UpFirDnSmooth(resample_kernel, downsample_factor=2, kernel_size=self.kernel_size)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x, style, weight = self._modulate(x, style)
        if self.sample_mode == 'upsample':
            out = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        elif self.sample_mode == 'downsample':
            out = F.conv2d(self.smooth(x), weight, stride=2)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        out = self._demodulate(out, style, weight)
        return self.smooth(out) if self.sample_mode == 'upsample' else out


class UpFirDnStyleConv(EqualStyleConv):
    """StyleConv of the original StyleGAN2 (upfirdn resampling); arguments as `UpFirDnModulatedConv2d`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(UpFirDnModulatedConv2d(*args, **kwargs))


class UpFirDnToRGB(EqualToRGB):
    """ToRGB of the original StyleGAN2 (upfirdn upsampling of the skip)."""

    def __init__(
        self,
        in_channels: int,
        num_style_feat: int,
        upsample: bool = True,
        resample_kernel: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__(
            UpFirDnModulatedConv2d(in_channels, 3, 1, num_style_feat, demodulate=False),
            UpFirDnUpsample(resample_kernel, factor=2) if upsample else None,
        )


@ARCH_REGISTRY.register()
class StyleGAN2Generator(StyleGAN2GeneratorBase):
    """The original StyleGAN2 generator (BasicSR layout)."""

    def __init__(
        self,
        out_size: int,
        num_style_feat: int = 512,
        num_mlp: int = 8,
        channel_multiplier: float = 2,
        resample_kernel: Sequence[float] = (1, 3, 3, 1),
        lr_mlp: float = 0.01,
        narrow: float = 1,
    ) -> None:
        super().__init__()
        self._setup_sizes(out_size, num_style_feat)
        self.style_mlp = equal_style_mlp(num_style_feat, num_mlp, lr_mlp)
        self._build_synthesis(
            channel_multiplier,
            narrow,
            partial(UpFirDnStyleConv, kernel_size=3, num_style_feat=num_style_feat, resample_kernel=resample_kernel),
            partial(UpFirDnToRGB, num_style_feat=num_style_feat, resample_kernel=resample_kernel),
        )


class ConvLayer(nn.Sequential):
    """[FIR blur] + EqualConv2d (stride 2 when downsampling) + [fused or scaled leaky ReLU]."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        downsample: bool = False,
        resample_kernel: Sequence[float] = (1, 3, 3, 1),
        bias: bool = True,
        activate: bool = True,
    ) -> None:
        layers: list[nn.Module] = []
        if downsample:
            layers.append(UpFirDnSmooth(resample_kernel, downsample_factor=2, kernel_size=kernel_size))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channels) if bias else ScaledLeakyReLU(0.2))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Discriminator residual block: two 3x3 convs (the second downsamples) + 1x1 skip, / sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int, resample_kernel: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, bias=True, activate=True)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True, resample_kernel=resample_kernel)
        self.skip = ConvLayer(
            in_channels, out_channels, 1, downsample=True, resample_kernel=resample_kernel, bias=False, activate=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


@ARCH_REGISTRY.register()
class StyleGAN2Discriminator(nn.Module):
    """StyleGAN2 residual discriminator with a minibatch-stddev feature before the last conv."""

    def __init__(
        self,
        out_size: int,
        channel_multiplier: float = 2,
        resample_kernel: Sequence[float] = (1, 3, 3, 1),
        stddev_group: int = 4,
        narrow: float = 1,
    ) -> None:
        super().__init__()
        channels = stylegan2_channels(channel_multiplier, narrow)
        log_size = int(math.log(out_size, 2))
        if 2**log_size != out_size or f'{out_size}' not in channels:
            raise ValueError(f'out_size must be a power of two between 8 and 1024; got {out_size}.')
        body: list[nn.Module] = [ConvLayer(3, channels[f'{out_size}'], 1, bias=True, activate=True)]
        in_channels = channels[f'{out_size}']
        for i in range(log_size, 2, -1):
            out_channels = channels[f'{2 ** (i - 1)}']
            body.append(ResBlock(in_channels, out_channels, resample_kernel))
            in_channels = out_channels
        self.conv_body = nn.Sequential(*body)
        self.final_conv = ConvLayer(in_channels + 1, channels['4'], 3, bias=True, activate=True)
        self.final_linear = nn.Sequential(
            EqualLinear(channels['4'] * 4 * 4, channels['4'], activation='fused_lrelu'),
            EqualLinear(channels['4'], 1),
        )
        self.stddev_group = stddev_group
        self.stddev_feat = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_body(x)
        b, c, h, w = out.shape
        group = min(b, self.stddev_group)
        if b % group:
            raise ValueError(
                f'StyleGAN2Discriminator: batch size {b} must be divisible by '
                f'min(batch, stddev_group={self.stddev_group}).'
            )
        stddev = out.reshape(group, -1, self.stddev_feat, c // self.stddev_feat, h, w)
        stddev = torch.sqrt(stddev.var(0, unbiased=False) + 1e-8)
        stddev = stddev.mean([2, 3, 4], keepdim=True).squeeze(2)  # (b / group, stddev_feat, 1, 1)
        stddev = stddev.repeat(group, 1, h, w)
        out = self.final_conv(torch.cat([out, stddev], 1))
        return self.final_linear(out.reshape(b, -1))
