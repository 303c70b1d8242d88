"""The original StyleGAN2 generator and discriminator (equalized learning rate, upfirdn resampling).

Layer and parameter names follow BasicSR's `stylegan2_arch`, so its checkpoints (and the decoder of
GFPGANv1) load with `strict=True`. Equalized learning rate: weights are stored N(0, 1) and scaled at
run time by 1/sqrt(fan_in) (times `lr_mul` for the mapping MLP).
`StyleGAN2GeneratorBase` holds what every StyleGAN2-style generator here shares (latent handling,
style mixing, truncation, noise, the synthesis loop); subclasses only build their layers.
"""
from __future__ import annotations

import math
import random
from functools import partial
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.ops.fused_act import FusedLeakyReLU
from gfpgan.ops.upfirdn2d import upfirdn2d
from gfpgan.utils.registry import ARCH_REGISTRY

SQRT2 = math.sqrt(2)


def stylegan2_channels(channel_multiplier: float = 2, narrow: float = 1) -> dict[str, int]:
    """Feature channels per resolution ('4' ... '1024') of the StyleGAN2 networks."""
    wide = {'4': 512, '8': 512, '16': 512, '32': 512}
    mult = {'64': 256, '128': 128, '256': 64, '512': 32, '1024': 16}
    channels = {k: int(v * narrow) for k, v in wide.items()}
    channels.update({k: int(v * channel_multiplier * narrow) for k, v in mult.items()})
    return channels


def make_resample_kernel(k: Sequence[float]) -> torch.Tensor:
    """A normalized 2-D FIR kernel from a 1-D (separable, outer product) or 2-D list."""
    k = torch.tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


class NormStyleCode(nn.Module):
    """Pixel norm of the input latent z (unit second moment per sample)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


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


class ModulatedConvBase(nn.Module):
    """Equalized-lr weight, style `modulation` and demodulation shared by the modulated convs here;
    subclasses decide how the input is resampled (upfirdn or interpolation) around the conv.

    Modulates the input channels and demodulates the output ones (see `demodulation`).
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
        if sample_mode not in (None, 'upsample', 'downsample'):
            raise ValueError(f"sample_mode must be None, 'upsample' or 'downsample'; got {sample_mode!r}.")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.sample_mode, self.eps = demodulate, sample_mode, eps
        self.modulation = EqualLinear(num_style_feat, in_channels, bias=True, bias_init_val=1, lr_mul=1)
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.padding = kernel_size // 2

    def _modulate(self, x: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x scaled per input channel, the (b, in) style, the (out, in, k, k) weight shared by the batch)."""
        b, c = x.shape[:2]
        style = self.modulation(style)
        weight = self.weight[0] * self.scale
        return x * style.view(b, c, 1, 1), style, weight

    def _demodulate(self, out: torch.Tensor, style: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return out * demodulation(style, weight, self.eps) if self.demodulate else out

    def extra_repr(self) -> str:
        return (
            f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
            f'demodulate={self.demodulate}, sample_mode={self.sample_mode}'
        )


class ModulatedConv2d(ModulatedConvBase):
    """StyleGAN2 modulated conv; up/down sampling by a stride-2 (transposed) conv + FIR blur."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        num_style_feat: int,
        demodulate: bool = True,
        sample_mode: str | None = None,
        resample_kernel: Sequence[float] = (1, 3, 3, 1),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, num_style_feat, demodulate, sample_mode, eps)
        if sample_mode == 'upsample':
            self.smooth = UpFirDnSmooth(resample_kernel, upsample_factor=2, kernel_size=kernel_size)
        elif sample_mode == 'downsample':
            self.smooth = UpFirDnSmooth(resample_kernel, downsample_factor=2, kernel_size=kernel_size)

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


def inject_noise(out: torch.Tensor, weight: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    """`out + weight * noise`; fresh N(0, 1) noise (one map per sample) when `noise` is None."""
    if noise is None:
        b, _, h, w = out.shape
        noise = torch.randn(b, 1, h, w, dtype=out.dtype, device=out.device)
    return out + weight * noise


class StyleConvBase(nn.Module):
    """A modulated conv + noise injection (`weight`) + fused bias/leaky ReLU (`activate.bias`)."""

    def __init__(self, modulated_conv: nn.Module, out_channels: int) -> None:
        super().__init__()
        self.modulated_conv = modulated_conv
        self.weight = nn.Parameter(torch.zeros(1))  # noise strength
        self.activate = FusedLeakyReLU(out_channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.activate(inject_noise(self.modulated_conv(x, style), self.weight, noise))


class StyleConv(StyleConvBase):
    """StyleConv of the original StyleGAN2 (upfirdn resampling)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        num_style_feat: int,
        demodulate: bool = True,
        sample_mode: str | None = None,
        resample_kernel: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__(
            ModulatedConv2d(
                in_channels, out_channels, kernel_size, num_style_feat, demodulate, sample_mode, resample_kernel
            ),
            out_channels,
        )


class ToRGBBase(nn.Module):
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


class ToRGB(ToRGBBase):
    """ToRGB of the original StyleGAN2 (upfirdn upsampling of the skip)."""

    def __init__(
        self,
        in_channels: int,
        num_style_feat: int,
        upsample: bool = True,
        resample_kernel: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__(
            ModulatedConv2d(in_channels, 3, 1, num_style_feat, demodulate=False),
            UpFirDnUpsample(resample_kernel, factor=2) if upsample else None,
        )


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
    """Shared StyleGAN2 generator logic. Subclasses build `style_mlp`, `constant_input`,
    `style_conv1`, `to_rgb1`, `style_convs`, `to_rgbs` and call `_register_noises()`.

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
        self._register_noises()

    def _register_noises(self) -> None:
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
        if self.sft_half:  # only the second half of the channels is modulated
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
            partial(StyleConv, kernel_size=3, num_style_feat=num_style_feat, resample_kernel=resample_kernel),
            partial(ToRGB, num_style_feat=num_style_feat, resample_kernel=resample_kernel),
        )


class StyleGAN2SFTGeneratorBase(StyleGAN2GeneratorBase):
    """The GFPGAN decoders: `forward(styles, conditions, input_is_latent=False, ...)` takes the SFT
    `conditions` (scale, shift per resolution) from the U-Net second; subclasses set `sft_half`."""

    forward = StyleGAN2GeneratorBase._generate  # exactly that argument order


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
