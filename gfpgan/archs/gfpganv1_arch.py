"""GFPGANv1 (the paper model): a U-Net encoder whose features drive a StyleGAN2 decoder through SFT.

Built from the original StyleGAN2 layers (upfirdn blur, fused leaky ReLU), so GFPGANv1.pth and
checkpoints of `options/train_gfpgan_v1.yml` load with `strict=True`. Also holds the
`FacialComponentDiscriminator` used on eye and mouth crops.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.archs.gfpgan_unet import GFPGANBase
from gfpgan.archs.stylegan2_arch import ConvLayer, ResBlock, StyleGAN2Generator
from gfpgan.archs.stylegan2_layers import SQRT2, EqualConv2d, ScaledLeakyReLU, SFTGeneratorMixin
from gfpgan.ops.fused_act import FusedLeakyReLU
from gfpgan.utils.registry import ARCH_REGISTRY


class StyleGAN2GeneratorSFT(SFTGeneratorMixin, StyleGAN2Generator):
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


class ConvUpLayer(EqualConv2d):
    """Bilinear 2x upsampling + equalized conv + [fused or scaled leaky ReLU] (decoder of the U-Net).

    The conv's own `bias` exists only without an activation (the fused activation carries it).
    """

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
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias and not activate, bias_init_val)
        self.interpolation_mode = interpolation_mode
        self.align_corners = None if interpolation_mode == 'nearest' else False
        if activate:
            self.activation = FusedLeakyReLU(out_channels) if bias else ScaledLeakyReLU(0.2)
        else:
            self.activation = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(x, scale_factor=2, mode=self.interpolation_mode, align_corners=self.align_corners)
        out = super().forward(out)
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
