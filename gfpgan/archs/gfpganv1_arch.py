"""GFPGANv1 (the paper model): a U-Net encoder whose features drive a StyleGAN2 decoder through SFT.

Built from the original StyleGAN2 layers (upfirdn blur, fused leaky ReLU), so GFPGANv1.pth and
checkpoints of `options/train_gfpgan_v1.yml` load with `strict=True`. Also holds the
`FacialComponentDiscriminator` used on eye and mouth crops.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.archs.stylegan2_arch import (
    SQRT2,
    ConvLayer,
    EqualConv2d,
    EqualLinear,
    ResBlock,
    ScaledLeakyReLU,
    StyleGAN2Generator,
    StyleGAN2SFTGeneratorBase,
    stylegan2_channels,
)
from gfpgan.ops.fused_act import FusedLeakyReLU
from gfpgan.utils.checkpoint_io import load_weights
from gfpgan.utils.registry import ARCH_REGISTRY


class StyleGAN2GeneratorSFT(StyleGAN2SFTGeneratorBase, StyleGAN2Generator):
    """StyleGAN2 generator whose features are modulated by SFT conditions (scale, shift per resolution)."""

    def __init__(
        self,
        out_size: int,
        num_style_feat: int = 512,
        num_mlp: int = 8,
        channel_multiplier: float = 2,
        resample_kernel: Sequence[float] = (1, 3, 3, 1),
        lr_mlp: float = 0.01,
        narrow: float = 1,
        sft_half: bool = False,
    ) -> None:
        super().__init__(out_size, num_style_feat, num_mlp, channel_multiplier, resample_kernel, lr_mlp, narrow)
        self.sft_half = sft_half


class ConvUpLayer(nn.Module):
    """Bilinear 2x upsampling + equalized conv + [fused or scaled leaky ReLU] (decoder of the U-Net)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        bias_init_val: float = 0,
        activate: bool = True,
        interpolation_mode: str = 'bilinear',
    ) -> None:
        super().__init__()
        self.stride, self.padding = stride, padding
        self.interpolation_mode = interpolation_mode
        self.align_corners = None if interpolation_mode == 'nearest' else False
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        has_bias = bias and not activate
        self.bias = nn.Parameter(torch.full((out_channels,), float(bias_init_val))) if has_bias else None
        if activate:
            self.activation = FusedLeakyReLU(out_channels) if bias else ScaledLeakyReLU(0.2)
        else:
            self.activation = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(x, scale_factor=2, mode=self.interpolation_mode, align_corners=self.align_corners)
        out = F.conv2d(out, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)
        return out if self.activation is None else self.activation(out)


class ResUpBlock(nn.Module):
    """U-Net decoder residual block: 3x3 conv, upsampling 3x3 conv, upsampling 1x1 skip, / sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int, interpolation_mode: str = 'bilinear') -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, bias=True, activate=True)
        self.conv2 = ConvUpLayer(
            in_channels, out_channels, 3, stride=1, padding=1, bias=True, activate=True,
            interpolation_mode=interpolation_mode,
        )
        self.skip = ConvUpLayer(in_channels, out_channels, 1, bias=False, activate=False,
                                interpolation_mode=interpolation_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


def sft_branches(
    channels: dict[str, int],
    log_size: int,
    sft_half: bool,
    conv: Callable[..., nn.Module],
    act: Callable[[], nn.Module],
) -> tuple[nn.ModuleList, nn.ModuleList]:
    """The SFT condition nets: per resolution conv-act-conv for scale (bias init 1) and shift (bias init 0).

    `conv(in_ch, out_ch, bias_init=...)` builds a 3x3 conv of the variant (equalized-lr or plain).
    """
    scales, shifts = nn.ModuleList(), nn.ModuleList()
    for i in range(3, log_size + 1):
        ch = channels[f'{2**i}']
        sft_ch = ch if sft_half else ch * 2
        scales.append(nn.Sequential(conv(ch, ch, bias_init=0), act(), conv(ch, sft_ch, bias_init=1)))
        shifts.append(nn.Sequential(conv(ch, ch, bias_init=0), act(), conv(ch, sft_ch, bias_init=0)))
    return scales, shifts


def load_decoder(decoder: nn.Module, path: str | None, fix: bool) -> None:
    """Load a pretrained StyleGAN2 (`params_ema`, strict) into `decoder`, and freeze it when `fix`."""
    if path:
        load_weights(decoder, path, param_key='params_ema')
    if fix:
        for param in decoder.parameters():
            param.requires_grad_(False)


def unet_forward(
    net: nn.Module,
    x: torch.Tensor,
    return_latents: bool,
    return_rgb: bool,
    randomize_noise: bool,
    first_act: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple:
    """The GFPGAN forward shared by all variants: encode, style code, decode with SFT conditions.

    Returns (image, [rgb per U-Net scale]) and, with `return_latents`, also the decoder's latent.
    `first_act` is applied after `conv_body_first` and `final_conv` (the clean variant's bare convs).
    """
    act = first_act or (lambda t: t)
    feat = act(net.conv_body_first(x))
    unet_skips = []
    for down in net.conv_body_down:
        feat = down(feat)
        unet_skips.append(feat)
    feat = act(net.final_conv(feat))
    style_code = net.final_linear(feat.flatten(1))
    if net.different_w:
        style_code = style_code.view(style_code.size(0), -1, net.num_style_feat)
    conditions, out_rgbs = [], []
    for up, to_rgb, cond_scale, cond_shift, skip in zip(
        net.conv_body_up, net.toRGB, net.condition_scale, net.condition_shift, reversed(unet_skips)
    ):
        feat = up(feat + skip)
        conditions.append(cond_scale(feat))
        conditions.append(cond_shift(feat))
        if return_rgb:
            out_rgbs.append(to_rgb(feat))
    image, latent = net.stylegan_decoder(
        [style_code], conditions, return_latents=return_latents, input_is_latent=net.input_is_latent,
        randomize_noise=randomize_noise,
    )
    return (image, out_rgbs, latent) if return_latents else (image, out_rgbs)


def equal_sft_conv(in_channels: int, out_channels: int, bias_init: float) -> nn.Module:
    """The 3x3 conv of the equalized-lr SFT branches (see `sft_branches`)."""
    return EqualConv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=True, bias_init_val=bias_init)


class GFPGANBase(nn.Module):
    """What the GFPGAN variants share: the U-Net layout (module names = checkpoint keys) and the forward.

    A subclass calls `_build_unet` with its layer builders, sets `stylegan_decoder`, then `_build_sft`.
    forward(x) -> (image, [intermediate rgb at 8, 16, ... px]); x and image in [-1, 1].
    """

    def _build_unet(
        self,
        out_size: int,
        num_style_feat: int,
        channel_multiplier: float,
        narrow: float,
        input_is_latent: bool,
        different_w: bool,
        first_conv: Callable[[int, int], nn.Module],
        down_block: Callable[[int, int], nn.Module],
        final_conv: Callable[[int, int], nn.Module],
        up_block: Callable[[int, int], nn.Module],
        to_rgb: Callable[[int, int], nn.Module] = lambda i, o: EqualConv2d(i, o, 1),
        linear: Callable[[int, int], nn.Module] = EqualLinear,
    ) -> dict[str, int]:
        """Encoder, style-code linear and decoder of the U-Net; returns its channels per resolution.

        The defaults of `to_rgb`, `linear` (and `_build_sft`'s) are the equalized-lr layers.
        """
        self.input_is_latent, self.different_w, self.num_style_feat = input_is_latent, different_w, num_style_feat
        channels = stylegan2_channels(channel_multiplier, narrow * 0.5)  # the U-Net is half as wide
        self.log_size = log_size = int(math.log(out_size, 2))
        self.conv_body_first = first_conv(3, channels[f'{2**log_size}'])
        in_channels = channels[f'{2**log_size}']
        self.conv_body_down = nn.ModuleList()
        for i in range(log_size, 2, -1):
            out_channels = channels[f'{2 ** (i - 1)}']
            self.conv_body_down.append(down_block(in_channels, out_channels))
            in_channels = out_channels
        self.final_conv = final_conv(in_channels, channels['4'])
        in_channels = channels['4']
        self.conv_body_up = nn.ModuleList()
        for i in range(3, log_size + 1):
            out_channels = channels[f'{2**i}']
            self.conv_body_up.append(up_block(in_channels, out_channels))
            in_channels = out_channels
        self.toRGB = nn.ModuleList(to_rgb(channels[f'{2**i}'], 3) for i in range(3, log_size + 1))
        num_w = (log_size * 2 - 2) if different_w else 1
        self.final_linear = linear(channels['4'] * 4 * 4, num_w * num_style_feat)
        return channels

    def _build_sft(
        self,
        channels: dict[str, int],
        sft_half: bool,
        decoder_load_path: str | None,
        fix_decoder: bool,
        conv: Callable[..., nn.Module] = equal_sft_conv,
        act: Callable[[], nn.Module] = lambda: ScaledLeakyReLU(0.2),
    ) -> None:
        """Load (and maybe freeze) `stylegan_decoder`, then build the SFT condition nets."""
        load_decoder(self.stylegan_decoder, decoder_load_path, fix_decoder)
        self.condition_scale, self.condition_shift = sft_branches(channels, self.log_size, sft_half, conv, act)

    def forward(self, x: torch.Tensor, return_latents: bool = False, return_rgb: bool = True,
                randomize_noise: bool = True, **kwargs):
        return unet_forward(self, x, return_latents, return_rgb, randomize_noise)


@ARCH_REGISTRY.register()
class GFPGANv1(GFPGANBase):
    """GFPGANv1: U-Net (ResBlocks down, ResUpBlocks up) + StyleGAN2GeneratorSFT decoder.

    forward(x) -> (image, [intermediate rgb at 8, 16, ... px]); x and image in [-1, 1].
    """

    def __init__(
        self,
        out_size: int,
        num_style_feat: int = 512,
        channel_multiplier: float = 1,
        resample_kernel: Sequence[float] = (1, 3, 3, 1),
        decoder_load_path: str | None = None,
        fix_decoder: bool = True,
        num_mlp: int = 8,
        lr_mlp: float = 0.01,
        input_is_latent: bool = False,
        different_w: bool = False,
        narrow: float = 1,
        sft_half: bool = False,
    ) -> None:
        super().__init__()
        channels = self._build_unet(
            out_size, num_style_feat, channel_multiplier, narrow, input_is_latent, different_w,
            first_conv=lambda i, o: ConvLayer(i, o, 1, bias=True, activate=True),
            down_block=lambda i, o: ResBlock(i, o, resample_kernel),
            final_conv=lambda i, o: ConvLayer(i, o, 3, bias=True, activate=True),
            up_block=ResUpBlock,
        )
        self.stylegan_decoder = StyleGAN2GeneratorSFT(
            out_size, num_style_feat, num_mlp, channel_multiplier, resample_kernel, lr_mlp, narrow, sft_half
        )
        self._build_sft(channels, sft_half, decoder_load_path, fix_decoder)


@ARCH_REGISTRY.register()
class FacialComponentDiscriminator(nn.Module):
    """VGG-style discriminator for eye/mouth crops; `return_feats` also gives two feature maps
    (for the component style loss). forward -> (score map, [feats] or None)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvLayer(3, 64, 3)
        self.conv2 = ConvLayer(64, 128, 3, downsample=True)
        self.conv3 = ConvLayer(128, 128, 3)
        self.conv4 = ConvLayer(128, 256, 3, downsample=True)
        self.conv5 = ConvLayer(256, 256, 3)
        self.final_conv = ConvLayer(256, 1, 3, bias=True, activate=False)

    def forward(self, x: torch.Tensor, return_feats: bool = False, **kwargs):
        feat = self.conv3(self.conv2(self.conv1(x)))
        feats = [feat] if return_feats else None
        feat = self.conv5(self.conv4(feat))
        if feats is not None:
            feats.append(feat)
        return self.final_conv(feat), feats
