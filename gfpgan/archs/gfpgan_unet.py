"""What the GFPGAN variants share: the U-Net layout (module names = checkpoint keys), the SFT condition
nets, decoder loading and the forward pass, in `GFPGANBase`.

A variant (GFPGANv1, GFPGANBilinear, GFPGANv1Clean) only says which layers to build: it calls
`_build_unet` with its layer builders, sets `stylegan_decoder`, then calls `_build_sft`.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from gfpgan.archs.stylegan2_layers import EqualConv2d, EqualLinear, ScaledLeakyReLU, stylegan2_channels
from gfpgan.utils.checkpoint_io import load_weights


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


def equal_sft_conv(in_channels: int, out_channels: int, bias_init: float) -> nn.Module:
    """The 3x3 conv of the equalized-lr SFT branches (see `sft_branches`)."""
    return EqualConv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=True, bias_init_val=bias_init)


class GFPGANBase(nn.Module):
    """A U-Net encoder whose features drive a StyleGAN2 decoder: the style code from the bottleneck,
    SFT (scale, shift) conditions from every decoder level of the U-Net.

    forward(x) -> (image, [intermediate rgb at 8, 16, ... px]); x and image in [-1, 1].
    """

    stylegan_decoder: nn.Module

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

    def _encoder_conv(self, conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Runs `conv_body_first` and `final_conv`; their equalized-lr layers include the activation."""
        return conv(x)

    def forward(self, x: torch.Tensor, return_latents: bool = False, return_rgb: bool = True,
                randomize_noise: bool = True, **kwargs: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Encode, map the bottleneck to the style code, decode with SFT conditions.

        Upstream's signature and return value: always `(image, [rgb per U-Net scale])` (empty list
        without `return_rgb`); `return_latents` reaches the decoder, whose latent upstream drops too.
        Other keywords (upstream's GFPGANer passes `weight=`) are accepted and unused, as upstream.
        """
        feat = self._encoder_conv(self.conv_body_first, x)
        unet_skips = []
        for down in self.conv_body_down:
            feat = down(feat)
            unet_skips.append(feat)
        feat = self._encoder_conv(self.final_conv, feat)
        style_code = self.final_linear(feat.flatten(1))
        if self.different_w:
            style_code = style_code.view(style_code.size(0), -1, self.num_style_feat)
        conditions, out_rgbs = [], []
        for up, to_rgb, cond_scale, cond_shift, skip in zip(
            self.conv_body_up, self.toRGB, self.condition_scale, self.condition_shift, reversed(unet_skips)
        ):
            feat = up(feat + skip)
            conditions.append(cond_scale(feat))
            conditions.append(cond_shift(feat))
            if return_rgb:
                out_rgbs.append(to_rgb(feat))
        image, _ = self.stylegan_decoder(
            [style_code], conditions, return_latents=return_latents, input_is_latent=self.input_is_latent,
            randomize_noise=randomize_noise,
        )
        return image, out_rgbs
