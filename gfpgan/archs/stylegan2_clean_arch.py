"""StyleGAN2 generator in the "clean" layout: plain nn.Linear/Conv weights, bilinear resampling.

The GFPGANv1.3/v1.4 release decoder. No custom ops and no run-time weight scaling: the
equalized-learning-rate scales of the original are folded into the stored weights (see
`gfpgan.archs.gfpgan_bilinear_arch.convert_bilinear_to_clean`). The modulated conv modulates the
activations and demodulates the output (numerically the same as modulating the weight), so the
batch shares one plain conv instead of a grouped conv with a weight copy per sample; this is as
fast at batch 1, faster for batches, and exports with a dynamic batch size.
"""
from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.archs.stylegan2_layers import SQRT2, ModulatedConvBase, NormStyleCode, StyleGAN2GeneratorBase, demodulation
from gfpgan.utils.registry import ARCH_REGISTRY


def _kaiming_normal_(module: nn.Module, a: float, bias_fill: float, nonlinearity: str) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, a=a, mode='fan_in', nonlinearity=nonlinearity)
            if m.bias is not None:
                m.bias.data.fill_(bias_fill)


def resample(x: torch.Tensor, sample_mode: str | None) -> torch.Tensor:
    """Bilinear 2x up/down sampling (align_corners=False), or identity.

    Halving an even-sized grid this way samples at the centre of every 2x2 block, i.e. it is the 2x2
    mean: `avg_pool2d` computes the same numbers about twice as fast.
    """
    if sample_mode == 'upsample':
        return F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)
    if sample_mode == 'downsample':
        if x.shape[-1] % 2 == 0 and x.shape[-2] % 2 == 0:
            return F.avg_pool2d(x, 2)
        return F.interpolate(x, scale_factor=0.5, mode='bilinear', align_corners=False)
    return x


def conv_leaky_relu(conv: nn.Module, x: torch.Tensor, negative_slope: float = 0.2) -> torch.Tensor:
    """`leaky_relu(conv(x))`, as one fused op when the conv offers `forward_leaky_relu` (the prepacked
    inference convs of `gfpgan.inference_speed`), else conv then an in-place activation."""
    fused = getattr(conv, 'forward_leaky_relu', None)
    if fused is not None:
        return fused(x, negative_slope)
    return F.leaky_relu_(conv(x), negative_slope)  # the conv output is fresh: in place is autograd-safe


def _exporting() -> bool:
    """True while tracing or exporting: graphs must not specialise on batch size 1 (dynamic batch)."""
    return torch.jit.is_tracing() or torch.compiler.is_exporting()


class CleanModulatedConv2d(ModulatedConvBase):
    """Modulated (and optionally demodulated) conv with bilinear up/down sampling of the input; plain
    weights (the equalized-lr scale is folded in), nn.Linear modulation.

    `forward(x, style, gain, bias)` returns `gain * modconv(x) + bias`, the gain and bias folded into
    the conv so that StyleConv needs no extra passes over the activations.
    """

    def _build_modulation(self, num_style_feat: int, in_channels: int) -> nn.Module:
        modulation = nn.Linear(num_style_feat, in_channels, bias=True)
        _kaiming_normal_(modulation, a=0, bias_fill=1, nonlinearity='linear')
        return modulation

    def _weight_init_gain(self) -> float:
        return 1 / math.sqrt(self.in_channels * self.kernel_size**2)

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, gain: float = 1.0, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, c = x.shape[:2]
        style = self.modulation(style)  # (b, in)
        weight = self.weight[0]  # (out, in, k, k), shared by the batch
        if b == 1 and weight.numel() <= x.numel() and not _exporting():
            return self._forward_modulated_weight(x, style, weight, gain, bias)
        # Scale the input channels instead of the weight: conv(x * s, w) == conv(x, w * s), and the
        # whole batch then shares one plain conv. Scaling before the upsampling is cheaper and exact
        # (interpolation acts per channel).
        x = resample(x * style.view(b, c, 1, 1), self.sample_mode)
        out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            scale = demodulation(style, weight, self.eps) * gain
            return out * scale if bias is None else torch.addcmul(bias, out, scale)
        if gain != 1.0:
            out = out * gain
        return out if bias is None else out + bias

    def _forward_modulated_weight(
        self, x: torch.Tensor, style: torch.Tensor, weight: torch.Tensor, gain: float, bias: torch.Tensor | None
    ) -> torch.Tensor:
        """Batch 1 on a large grid: fold style, demodulation, gain and bias into the conv itself.

        The (out, in, k, k) weight is then smaller than the activations, so modulating it costs less
        than the two passes over the activations (input scaling, output scaling + bias) it replaces.
        Keeps the weight's memory format (channels_last weights stay channels_last).
        """
        scale = demodulation(style, weight, self.eps).view(-1, 1, 1, 1) * gain if self.demodulate else gain
        weight = weight * style.view(1, -1, 1, 1) * scale
        return F.conv2d(resample(x, self.sample_mode), weight, None if bias is None else bias.view(-1),
                        padding=self.padding)


class CleanStyleConv(nn.Module):
    """Modulated conv (x sqrt(2)) + noise (`weight`) + bias (`bias`, (1, C, 1, 1)) + leaky ReLU 0.2;
    arguments as `CleanModulatedConv2d`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
        self.modulated_conv = CleanModulatedConv2d(*args, **kwargs)
        self.weight = nn.Parameter(torch.zeros(1))  # noise strength
        self.bias = nn.Parameter(torch.zeros(1, self.modulated_conv.out_channels, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        # the sqrt(2) gain keeps this layer numerically equal to the original one after conversion
        out = self.modulated_conv(x, style, gain=SQRT2, bias=self.bias)
        if noise is None:
            b, _, h, w = out.shape
            noise = torch.randn(b, 1, h, w, dtype=out.dtype, device=out.device)
        # `out` is fresh and add's backward does not need it: adding in place is autograd-safe
        return F.leaky_relu_(out.add_(self.weight * noise), 0.2)


class CleanToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) to RGB + bias, plus the bilinearly upsampled previous RGB."""

    def __init__(self, in_channels: int, num_style_feat: int, upsample: bool = True) -> None:
        super().__init__()
        self.upsample = upsample
        self.modulated_conv = CleanModulatedConv2d(in_channels, 3, 1, num_style_feat, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.modulated_conv(x, style, bias=self.bias)
        if skip is not None:
            out = out.add_(resample(skip, 'upsample') if self.upsample else skip)  # `out` is fresh: autograd-safe
        return out


@ARCH_REGISTRY.register()
class StyleGAN2GeneratorClean(StyleGAN2GeneratorBase):
    """StyleGAN2 generator, clean layout (the GFPGANv1.3/1.4 decoder)."""

    def __init__(
        self, out_size: int, num_style_feat: int = 512, num_mlp: int = 8, channel_multiplier: float = 2,
        narrow: float = 1,
    ) -> None:
        super().__init__()
        self._setup_sizes(out_size, num_style_feat)
        mlp: list[nn.Module] = [NormStyleCode()]
        for _ in range(num_mlp):
            mlp += [nn.Linear(num_style_feat, num_style_feat), nn.LeakyReLU(0.2, inplace=True)]
        self.style_mlp = nn.Sequential(*mlp)
        _kaiming_normal_(self.style_mlp, a=0.2, bias_fill=0, nonlinearity='leaky_relu')
        self._build_synthesis(
            channel_multiplier, narrow,
            partial(CleanStyleConv, kernel_size=3, num_style_feat=num_style_feat),
            partial(CleanToRGB, num_style_feat=num_style_feat),
        )
