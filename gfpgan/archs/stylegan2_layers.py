"""The building blocks every StyleGAN2 variant here shares, in plain PyTorch (no resampling op).

Three generator families use them: the original (`stylegan2_arch`, upfirdn resampling), the bilinear
one (`stylegan2_bilinear_arch`, equalized lr + interpolation) and the clean one (`stylegan2_clean_arch`,
plain weights, the GFPGANv1.3/1.4 decoder). What differs between them -- how a modulated conv
resamples, and whether weights carry a run-time equalized-lr scale -- lives in their own files under
distinct names (`UpFirDnModulatedConv2d`, `BilinearModulatedConv2d`, `CleanModulatedConv2d`, ...);
everything here is the same maths for all of them: latent handling, style mixing, truncation, noise,
the synthesis loop, SFT, demodulation, the equalized-lr layers.
"""
from __future__ import annotations

import math
import random
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.ops.fused_act import FusedLeakyReLU

SQRT2 = math.sqrt(2)


def stylegan2_channels(channel_multiplier: float = 2, narrow: float = 1) -> dict[str, int]:
    """Feature channels per resolution ('4' ... '1024') of the StyleGAN2 networks."""
    wide = {'4': 512, '8': 512, '16': 512, '32': 512}
    mult = {'64': 256, '128': 128, '256': 64, '512': 32, '1024': 16}
    channels = {k: int(v * narrow) for k, v in wide.items()}
    channels.update({k: int(v * channel_multiplier * narrow) for k, v in mult.items()})
    return channels


class NormStyleCode(nn.Module):
    """Pixel norm of the input latent z (unit second moment per sample)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate; `activation='fused_lrelu'` adds the scaled leaky ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        bias_init_val: float = 0,
        lr_mul: float = 1,
        activation: str | None = None,
    ) -> None:
        super().__init__()
        if activation not in (None, 'fused_lrelu'):
            raise ValueError(f"EqualLinear activation must be None or 'fused_lrelu'; got {activation!r}.")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.lr_mul = lr_mul
        self.activation = activation
        self.scale = lr_mul / math.sqrt(in_channels)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_channels,), float(bias_init_val))) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activation == 'fused_lrelu':  # bias on the last (feature) dim, so (b, n, C) codes work too
            out = F.linear(x, self.weight * self.scale)
            return F.leaky_relu(out if bias is None else out + bias, 0.2) * SQRT2
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self) -> str:
        return f'{self.in_channels}, {self.out_channels}, lr_mul={self.lr_mul}, activation={self.activation}'


class EqualConv2d(nn.Module):
    """Conv2d with equalized learning rate (weight scaled by 1/sqrt(fan_in) at run time)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        bias_init_val: float = 0,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding = stride, padding
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.full((out_channels,), float(bias_init_val))) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return (
            f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, '
            f'padding={self.padding}, bias={self.bias is not None}'
        )


class ScaledLeakyReLU(nn.Module):
    """Leaky ReLU times sqrt(2) (the fused activation without a bias)."""

    def __init__(self, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope) * SQRT2


def demodulation(style: torch.Tensor, weight: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(b, out, 1, 1) factors that give every per-sample filter `weight * style` unit norm.

    |w[o] * s|^2 summed over (in, k, k) equals (s^2) @ (sum_k w^2)^T, so the per-sample weights
    never need to exist: modulated convs here scale the input channels by the style, run one conv
    with the shared weight, and multiply the output channels by this factor. That is the same
    arithmetic as upstream's grouped conv with one weight copy per sample, but the batch shares a
    plain conv (faster for batches, and exportable: the conv weight is a parameter, not computed).
    Demodulation replaces AdaIN's instance norm.
    """
    b = style.shape[0]
    return torch.rsqrt(style.pow(2) @ weight.pow(2).sum([2, 3]).t() + eps).view(b, -1, 1, 1)


def check_sample_mode(sample_mode: str | None) -> None:
    if sample_mode not in (None, 'upsample', 'downsample'):
        raise ValueError(f"sample_mode must be None, 'upsample' or 'downsample'; got {sample_mode!r}.")


class ModulatedConvBase(nn.Module):
    """What every modulated conv stores: a style `modulation` (num_style_feat -> in_channels) and a
    (1, out, in, k, k) `weight` (the checkpoint layout). Subclasses say how the modulation is built and
    how the weight is scaled, and how the input is resampled around the conv.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        num_style_feat: int,
        demodulate: bool = True,
        sample_mode: str | None = None,
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        check_sample_mode(sample_mode)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.sample_mode, self.eps = demodulate, sample_mode, eps
        self.modulation = self._build_modulation(num_style_feat, in_channels)
        shape = (1, out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.randn(shape) * self._weight_init_gain())
        self.padding = kernel_size // 2

    def _build_modulation(self, num_style_feat: int, in_channels: int) -> nn.Module:
        raise NotImplementedError

    def _weight_init_gain(self) -> float:
        return 1.0

    def extra_repr(self) -> str:
        return (
            f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
            f'demodulate={self.demodulate}, sample_mode={self.sample_mode}'
        )


class EqualModulatedConv(ModulatedConvBase):
    """Equalized-lr modulated conv: N(0, 1) weight scaled by 1/sqrt(fan_in) at run time, EqualLinear
    modulation (bias 1). Modulates the input channels and demodulates the output ones (see `demodulation`).
    """

    def _build_modulation(self, num_style_feat: int, in_channels: int) -> nn.Module:
        self.scale = 1 / math.sqrt(in_channels * self.kernel_size**2)
        return EqualLinear(num_style_feat, in_channels, bias=True, bias_init_val=1, lr_mul=1)

    def _modulate(self, x: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x scaled per input channel, the (b, in) style, the (out, in, k, k) weight shared by the batch)."""
        b, c = x.shape[:2]
        style = self.modulation(style)
        weight = self.weight[0] * self.scale
        return x * style.view(b, c, 1, 1), style, weight

    def _demodulate(self, out: torch.Tensor, style: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return out * demodulation(style, weight, self.eps) if self.demodulate else out


def inject_noise(out: torch.Tensor, weight: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    """`out + weight * noise`; fresh N(0, 1) noise (one map per sample) when `noise` is None."""
    if noise is None:
        b, _, h, w = out.shape
        noise = torch.randn(b, 1, h, w, dtype=out.dtype, device=out.device)
    return out + weight * noise


class EqualStyleConv(nn.Module):
    """An equalized-lr modulated conv + noise injection (`weight`) + fused bias/leaky ReLU (`activate.bias`)."""

    def __init__(self, modulated_conv: ModulatedConvBase) -> None:
        super().__init__()
        self.modulated_conv = modulated_conv
        self.weight = nn.Parameter(torch.zeros(1))  # noise strength
        self.activate = FusedLeakyReLU(modulated_conv.out_channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.activate(inject_noise(self.modulated_conv(x, style), self.weight, noise))


class EqualToRGB(nn.Module):
    """A 1x1 modulated conv (no demodulation) to RGB + `bias`, plus the `upsample`d RGB of the previous scale."""

    def __init__(self, modulated_conv: nn.Module, upsample: nn.Module | None) -> None:
        super().__init__()
        self.upsample = upsample
        self.modulated_conv = modulated_conv
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.modulated_conv(x, style) + self.bias
        if skip is not None:
            out = out + (self.upsample(skip) if self.upsample is not None else skip)
        return out


class ConstantInput(nn.Module):
    """The learned 4x4 input of the synthesis network."""

    def __init__(self, num_channel: int, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, num_channel, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.weight.expand(batch, -1, -1, -1)


def equal_style_mlp(num_style_feat: int, num_mlp: int, lr_mlp: float) -> nn.Sequential:
    """The mapping network z -> w of the equalized-lr generators: pixel norm + `num_mlp` EqualLinear-lrelu."""
    return nn.Sequential(
        NormStyleCode(),
        *[EqualLinear(num_style_feat, num_style_feat, lr_mul=lr_mlp, activation='fused_lrelu') for _ in range(num_mlp)],
    )


class StyleGAN2GeneratorBase(nn.Module):
    """Shared StyleGAN2 generator logic. Subclasses call `_setup_sizes`, build `style_mlp`, then
    `_build_synthesis` with their StyleConv / ToRGB builders.

    `sft_half` is used by the GFPGAN decoders, whose forward also receives SFT `conditions`
    (scale, shift per resolution) applied after the first conv of each resolution.
    """

    num_style_feat: int
    log_size: int
    sft_half: bool = False

    def _setup_sizes(self, out_size: int, num_style_feat: int) -> None:
        log_size = int(math.log(out_size, 2))
        if 2**log_size != out_size or out_size < 8:
            raise ValueError(f'out_size must be a power of two >= 8; got {out_size}.')
        self.num_style_feat = num_style_feat
        self.log_size = log_size
        self.num_layers = (log_size - 2) * 2 + 1
        self.num_latent = log_size * 2 - 2

    def _build_synthesis(
        self,
        channel_multiplier: float,
        narrow: float,
        style_conv: Callable[..., nn.Module],
        to_rgb: Callable[..., nn.Module],
    ) -> None:
        """The synthesis layers (module names = checkpoint keys) and noise buffers.

        `style_conv(in_ch, out_ch, sample_mode=None)` and `to_rgb(in_ch, upsample=...)` build the variant's layers.
        """
        self.channels = channels = stylegan2_channels(channel_multiplier, narrow)
        self.constant_input = ConstantInput(channels['4'], size=4)
        self.style_conv1 = style_conv(channels['4'], channels['4'])
        self.to_rgb1 = to_rgb(channels['4'], upsample=False)
        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_channels = channels['4']
        for i in range(3, self.log_size + 1):
            out_channels = channels[f'{2**i}']
            self.style_convs.append(style_conv(in_channels, out_channels, sample_mode='upsample'))
            self.style_convs.append(style_conv(out_channels, out_channels))
            self.to_rgbs.append(to_rgb(out_channels, upsample=True))
            in_channels = out_channels
        self.noises = nn.Module()
        for layer_idx in range(self.num_layers):
            resolution = 2 ** ((layer_idx + 5) // 2)
            self.noises.register_buffer(f'noise{layer_idx}', torch.randn(1, 1, resolution, resolution))

    def make_noise(self) -> list[torch.Tensor]:
        """A fresh list of noise maps, one per StyleConv (4x4, then two per resolution)."""
        device = self.constant_input.weight.device
        sizes = [4] + [2**i for i in range(3, self.log_size + 1) for _ in range(2)]
        return [torch.randn(1, 1, s, s, device=device) for s in sizes]

    def get_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Map z to w through the style MLP."""
        return self.style_mlp(x)

    @torch.no_grad()
    def mean_latent(self, num_latent: int) -> torch.Tensor:
        """Average w over `num_latent` random z (the truncation centre), shape (1, num_style_feat)."""
        z = torch.randn(num_latent, self.num_style_feat, device=self.constant_input.weight.device)
        return self.style_mlp(z).mean(0, keepdim=True)

    def _latent(
        self,
        styles: Sequence[torch.Tensor],
        input_is_latent: bool,
        truncation: float,
        truncation_latent: torch.Tensor | None,
        inject_index: int | None,
    ) -> torch.Tensor:
        """(b, num_latent, num_style_feat) per-layer w from one code, or two mixed at `inject_index`."""
        if isinstance(styles, torch.Tensor):
            styles = [styles]
        if not input_is_latent:
            styles = [self.style_mlp(s) for s in styles]
        if truncation < 1:
            if truncation_latent is None:
                raise ValueError('truncation < 1 needs truncation_latent (e.g. generator.mean_latent(4096)).')
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        if len(styles) == 1:
            style = styles[0]
            return style if style.ndim == 3 else style.unsqueeze(1).expand(-1, self.num_latent, -1)
        if len(styles) == 2:
            if inject_index is None:
                inject_index = random.randint(1, self.num_latent - 1)
            first = styles[0].unsqueeze(1).expand(-1, inject_index, -1)
            second = styles[1].unsqueeze(1).expand(-1, self.num_latent - inject_index, -1)
            return torch.cat([first, second], 1)
        raise ValueError(f'StyleGAN2 generators take one or two style codes (style mixing); got {len(styles)}.')

    def _noise_list(self, noise: Sequence[torch.Tensor] | None, randomize_noise: bool) -> list:
        if noise is not None:
            if len(noise) != self.num_layers:
                raise ValueError(f'noise must list {self.num_layers} maps (see make_noise()); got {len(noise)}.')
            return list(noise)
        if randomize_noise:
            return [None] * self.num_layers
        return [getattr(self.noises, f'noise{i}') for i in range(self.num_layers)]

    def _apply_sft(self, out: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """`out * scale + shift` on all channels, or on the second half only (`sft_half`).

        In place when no gradient is needed (inference): that saves the copy `torch.cat` makes.
        """
        if not torch.is_grad_enabled() or not (out.requires_grad or scale.requires_grad or shift.requires_grad):
            target = out.chunk(2, dim=1)[1] if self.sft_half else out
            target.mul_(scale).add_(shift)
            return out
        if self.sft_half:
            same, sft = out.chunk(2, dim=1)
            return torch.cat([same, torch.addcmul(shift, sft, scale)], dim=1)
        return torch.addcmul(shift, out, scale)

    def _synthesize(
        self, latent: torch.Tensor, noise: list, conditions: Sequence[torch.Tensor] | None = None
    ) -> torch.Tensor:
        out = self.constant_input(latent.shape[0])
        out = self.style_conv1(out, latent[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for conv1, conv2, noise1, noise2, to_rgb in zip(
            self.style_convs[::2], self.style_convs[1::2], noise[1::2], noise[2::2], self.to_rgbs
        ):
            out = conv1(out, latent[:, i], noise=noise1)
            if conditions is not None and i < len(conditions):
                out = self._apply_sft(out, conditions[i - 1], conditions[i])
            out = conv2(out, latent[:, i + 1], noise=noise2)
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip

    def _generate(
        self,
        styles: Sequence[torch.Tensor],
        conditions: Sequence[torch.Tensor] | None = None,
        input_is_latent: bool = False,
        noise: Sequence[torch.Tensor] | None = None,
        randomize_noise: bool = True,
        truncation: float = 1,
        truncation_latent: torch.Tensor | None = None,
        inject_index: int | None = None,
        return_latents: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(image, latent if `return_latents` else None), upstream's return value for every generator."""
        latent = self._latent(styles, input_is_latent, truncation, truncation_latent, inject_index)
        image = self._synthesize(latent, self._noise_list(noise, randomize_noise), conditions)
        return image, (latent if return_latents else None)

    def forward(
        self,
        styles: Sequence[torch.Tensor],
        input_is_latent: bool = False,
        noise: Sequence[torch.Tensor] | None = None,
        randomize_noise: bool = True,
        truncation: float = 1,
        truncation_latent: torch.Tensor | None = None,
        inject_index: int | None = None,
        return_latents: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Image from a list of one (or two, for style mixing) codes; returns (image, latent or None)."""
        return self._generate(
            styles, None, input_is_latent, noise, randomize_noise, truncation, truncation_latent, inject_index,
            return_latents,
        )


class SFTGeneratorMixin:
    """For the GFPGAN decoders: `forward(styles, conditions, input_is_latent=False, ...)` takes the SFT
    `conditions` (scale, shift per resolution) from the U-Net second (upstream's argument order).
    Mix in before the generator class; the subclass sets `sft_half`."""

    _generate: Callable[..., tuple[torch.Tensor, torch.Tensor | None]]

    def forward(
        self,
        styles: Sequence[torch.Tensor],
        conditions: Sequence[torch.Tensor],
        input_is_latent: bool = False,
        noise: Sequence[torch.Tensor] | None = None,
        randomize_noise: bool = True,
        truncation: float = 1,
        truncation_latent: torch.Tensor | None = None,
        inject_index: int | None = None,
        return_latents: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Image from the style code(s) and the U-Net's SFT conditions; returns (image, latent or None)."""
        return self._generate(styles, conditions, input_is_latent, noise, randomize_noise, truncation,
                              truncation_latent, inject_index, return_latents)
