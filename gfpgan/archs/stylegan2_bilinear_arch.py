"""StyleGAN2 generator with equalized learning rate but bilinear (not upfirdn) resampling.

The decoder of GFPGANBilinear, the intermediate model from which upstream derived the clean
v1.3/v1.4 weights: its layers equal the clean ones up to constant scales, which
`gfpgan.archs.gfpgan_bilinear_arch.convert_bilinear_to_clean` folds into the weights.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.archs.stylegan2_arch import (
    ConstantInput,
    EqualLinear,
    NormStyleCode,
    StyleGAN2GeneratorBase,
    demodulation,
    inject_noise,
    stylegan2_channels,
)
from gfpgan.ops.fused_act import FusedLeakyReLU
from gfpgan.utils.registry import ARCH_REGISTRY


def interpolate_by(x: torch.Tensor, mode: str, factor: float = 2) -> torch.Tensor:
    """Resample by `factor` with `mode` ('bilinear' uses align_corners=False, as upstream)."""
    return F.interpolate(x, scale_factor=factor, mode=mode, align_corners=None if mode == 'nearest' else False)


class ModulatedConv2d(nn.Module):
    """Equalized-lr modulated conv (input modulation + output demodulation); resamples the input first."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        num_style_feat: int,
        demodulate: bool = True,
        sample_mode: str | None = None,
        eps: float = 1e-8,
        interpolation_mode: str = 'bilinear',
    ) -> None:
        super().__init__()
        if sample_mode not in (None, 'upsample', 'downsample'):
            raise ValueError(f"sample_mode must be None, 'upsample' or 'downsample'; got {sample_mode!r}.")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.sample_mode, self.eps = demodulate, sample_mode, eps
        self.interpolation_mode = interpolation_mode
        self.modulation = EqualLinear(num_style_feat, in_channels, bias=True, bias_init_val=1, lr_mul=1)
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        style = self.modulation(style)
        weight = self.weight[0] * self.scale
        x = x * style.view(b, c, 1, 1)  # before the upsampling: cheaper, and equal (it acts per channel)
        if self.sample_mode is not None:
            x = interpolate_by(x, self.interpolation_mode, 2 if self.sample_mode == 'upsample' else 0.5)
        out = F.conv2d(x, weight, padding=self.padding)
        return out * demodulation(style, weight, self.eps) if self.demodulate else out


class StyleConv(nn.Module):
    """Modulated conv + noise (`weight`) + fused bias/leaky ReLU (`activate.bias`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, num_style_feat: int,
                 demodulate: bool = True, sample_mode: str | None = None, interpolation_mode: str = 'bilinear') -> None:
        super().__init__()
        self.modulated_conv = ModulatedConv2d(in_channels, out_channels, kernel_size, num_style_feat, demodulate,
                                              sample_mode, interpolation_mode=interpolation_mode)
        self.weight = nn.Parameter(torch.zeros(1))
        self.activate = FusedLeakyReLU(out_channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.activate(inject_noise(self.modulated_conv(x, style), self.weight, noise))


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB + bias + the interpolated RGB of the previous scale."""

    def __init__(self, in_channels: int, num_style_feat: int, upsample: bool = True,
                 interpolation_mode: str = 'bilinear') -> None:
        super().__init__()
        self.upsample, self.interpolation_mode = upsample, interpolation_mode
        self.modulated_conv = ModulatedConv2d(in_channels, 3, 1, num_style_feat, demodulate=False,
                                              interpolation_mode=interpolation_mode)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.modulated_conv(x, style) + self.bias
        if skip is not None:
            out = out + (interpolate_by(skip, self.interpolation_mode) if self.upsample else skip)
        return out


@ARCH_REGISTRY.register()
class StyleGAN2GeneratorBilinear(StyleGAN2GeneratorBase):
    """StyleGAN2 generator (equalized lr, fused leaky ReLU) with bilinear resampling."""

    def __init__(self, out_size: int, num_style_feat: int = 512, num_mlp: int = 8, channel_multiplier: float = 2,
                 lr_mlp: float = 0.01, narrow: float = 1, interpolation_mode: str = 'bilinear') -> None:
        super().__init__()
        self._setup_sizes(out_size, num_style_feat)
        self.style_mlp = nn.Sequential(
            NormStyleCode(),
            *[EqualLinear(num_style_feat, num_style_feat, lr_mul=lr_mlp, activation='fused_lrelu')
              for _ in range(num_mlp)],
        )
        self.channels = channels = stylegan2_channels(channel_multiplier, narrow)
        mode = interpolation_mode
        self.constant_input = ConstantInput(channels['4'], size=4)
        self.style_conv1 = StyleConv(channels['4'], channels['4'], 3, num_style_feat, interpolation_mode=mode)
        self.to_rgb1 = ToRGB(channels['4'], num_style_feat, upsample=False, interpolation_mode=mode)
        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_channels = channels['4']
        for i in range(3, self.log_size + 1):
            out_channels = channels[f'{2**i}']
            self.style_convs.append(StyleConv(in_channels, out_channels, 3, num_style_feat, sample_mode='upsample',
                                              interpolation_mode=mode))
            self.style_convs.append(StyleConv(out_channels, out_channels, 3, num_style_feat, interpolation_mode=mode))
            self.to_rgbs.append(ToRGB(out_channels, num_style_feat, upsample=True, interpolation_mode=mode))
            in_channels = out_channels
        self._register_noises()
