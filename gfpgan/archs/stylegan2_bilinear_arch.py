"""StyleGAN2 generator with equalized learning rate but bilinear (not upfirdn) resampling.

The decoder of GFPGANBilinear, the intermediate model from which upstream derived the clean
v1.3/v1.4 weights: its layers equal the clean ones up to constant scales, which
`gfpgan.archs.gfpgan_bilinear_arch.convert_bilinear_to_clean` folds into the weights.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.archs.stylegan2_layers import (
    EqualModulatedConv,
    EqualStyleConv,
    EqualToRGB,
    StyleGAN2GeneratorBase,
    equal_style_mlp,
)
from gfpgan.utils.registry import ARCH_REGISTRY


def interpolate_by(x: torch.Tensor, mode: str, factor: float = 2) -> torch.Tensor:
    """Resample by `factor` with `mode` ('bilinear' uses align_corners=False, as upstream)."""
    return F.interpolate(x, scale_factor=factor, mode=mode, align_corners=None if mode == 'nearest' else False)


class Interpolate(nn.Module):
    """`interpolate_by` as a module (no parameters): the skip upsampling of ToRGB."""

    def __init__(self, mode: str, factor: float = 2) -> None:
        super().__init__()
        self.mode, self.factor = mode, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return interpolate_by(x, self.mode, self.factor)


class BilinearModulatedConv2d(EqualModulatedConv):
    """Equalized-lr modulated conv (input modulation + output demodulation); resamples the input first.

    Arguments as `ModulatedConvBase`, plus `interpolation_mode` ('bilinear' or 'nearest').
    """

    def __init__(self, *args, interpolation_mode: str = 'bilinear', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.interpolation_mode = interpolation_mode

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x, style, weight = self._modulate(x, style)  # before the upsampling: cheaper, and equal (acts per channel)
        if self.sample_mode is not None:
            x = interpolate_by(x, self.interpolation_mode, 2 if self.sample_mode == 'upsample' else 0.5)
        return self._demodulate(F.conv2d(x, weight, padding=self.padding), style, weight)


class BilinearStyleConv(EqualStyleConv):
    """StyleConv with bilinear resampling; arguments as `BilinearModulatedConv2d`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(BilinearModulatedConv2d(*args, **kwargs))


class BilinearToRGB(EqualToRGB):
    """ToRGB whose skip is upsampled by interpolation."""

    def __init__(self, in_channels: int, num_style_feat: int, upsample: bool = True,
                 interpolation_mode: str = 'bilinear') -> None:
        super().__init__(
            BilinearModulatedConv2d(in_channels, 3, 1, num_style_feat, demodulate=False,
                                    interpolation_mode=interpolation_mode),
            Interpolate(interpolation_mode) if upsample else None,
        )
        self.interpolation_mode = interpolation_mode


@ARCH_REGISTRY.register()
class StyleGAN2GeneratorBilinear(StyleGAN2GeneratorBase):
    """StyleGAN2 generator (equalized lr, fused leaky ReLU) with bilinear resampling."""

    def __init__(self, out_size: int, num_style_feat: int = 512, num_mlp: int = 8, channel_multiplier: float = 2,
                 lr_mlp: float = 0.01, narrow: float = 1, interpolation_mode: str = 'bilinear') -> None:
        super().__init__()
        self._setup_sizes(out_size, num_style_feat)
        self.style_mlp = equal_style_mlp(num_style_feat, num_mlp, lr_mlp)
        self._build_synthesis(
            channel_multiplier, narrow,
            partial(BilinearStyleConv, kernel_size=3, num_style_feat=num_style_feat,
                    interpolation_mode=interpolation_mode),
            partial(BilinearToRGB, num_style_feat=num_style_feat, interpolation_mode=interpolation_mode),
        )
