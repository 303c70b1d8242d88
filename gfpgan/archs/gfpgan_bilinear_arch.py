"""GFPGANBilinear: GFPGAN with equalized-lr layers and bilinear resampling, and its conversion to
the clean layout (the route by which upstream produced the v1.3/v1.4 release weights).
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict
from typing import Mapping

import torch
from torch import nn

from gfpgan.archs.gfpgan_unet import GFPGANBase
from gfpgan.archs.gfpganv1_arch import ResUpBlock
from gfpgan.archs.stylegan2_bilinear_arch import StyleGAN2GeneratorBilinear
from gfpgan.archs.stylegan2_layers import SQRT2, EqualConv2d, ScaledLeakyReLU, SFTGeneratorMixin
from gfpgan.ops.fused_act import FusedLeakyReLU
from gfpgan.utils.registry import ARCH_REGISTRY


class StyleGAN2GeneratorBilinearSFT(SFTGeneratorMixin, StyleGAN2GeneratorBilinear):
    """Bilinear StyleGAN2 generator with SFT conditions (scale, shift per resolution)."""

    def __init__(self, out_size: int, num_style_feat: int = 512, num_mlp: int = 8, channel_multiplier: float = 2,
                 lr_mlp: float = 0.01, narrow: float = 1, sft_half: bool = False) -> None:
        super().__init__(out_size, num_style_feat, num_mlp, channel_multiplier, lr_mlp, narrow)
        self.sft_half = sft_half


class BilinearConvLayer(nn.Sequential):
    """[bilinear 0.5x] + EqualConv2d + [fused or scaled leaky ReLU]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False,
                 bias: bool = True, activate: bool = True, interpolation_mode: str = 'bilinear') -> None:
        layers: list[nn.Module] = []
        if downsample:
            align = None if interpolation_mode == 'nearest' else False
            layers.append(nn.Upsample(scale_factor=0.5, mode=interpolation_mode, align_corners=align))
        padding = kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, 1, padding, bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channels) if bias else ScaledLeakyReLU(0.2))
        super().__init__(*layers)


class BilinearResBlock(nn.Module):
    """Encoder residual block with bilinear downsampling, / sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int, interpolation_mode: str = 'bilinear') -> None:
        super().__init__()
        self.conv1 = BilinearConvLayer(in_channels, in_channels, 3)
        self.conv2 = BilinearConvLayer(in_channels, out_channels, 3, downsample=True,
                                       interpolation_mode=interpolation_mode)
        self.skip = BilinearConvLayer(in_channels, out_channels, 1, downsample=True, bias=False, activate=False,
                                      interpolation_mode=interpolation_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


@ARCH_REGISTRY.register()
class GFPGANBilinear(GFPGANBase):
    """GFPGAN with bilinear resampling (no upfirdn); convert its weights with `convert_bilinear_to_clean`."""

    def __init__(
        self,
        out_size: int,
        num_style_feat: int = 512,
        channel_multiplier: float = 1,
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
            first_conv=lambda i, o: BilinearConvLayer(i, o, 1),
            down_block=BilinearResBlock,
            final_conv=lambda i, o: BilinearConvLayer(i, o, 3),
            up_block=ResUpBlock,
        )
        self.stylegan_decoder = StyleGAN2GeneratorBilinearSFT(out_size, num_style_feat, num_mlp, channel_multiplier,
                                                              lr_mlp, narrow, sft_half)
        self._build_sft(channels, sft_half, decoder_load_path, fix_decoder)


# (pattern, clean key, fold the 1/sqrt(fan_in) equalized-lr scale, extra gain).
# The gains follow from leaky_relu(a * x) == a * leaky_relu(x) for a > 0: the sqrt(2) of a fused or
# scaled leaky ReLU moves into the conv before it, and the / sqrt(2) of the residual sum into the
# convs of both branches (conv2's activation gain cancels it; the skip takes 1 / sqrt(2)).
_UNET_RULES = [
    (r'(conv_body_first|final_conv)\.0\.weight', r'\1.weight', True, SQRT2),
    (r'(conv_body_first|final_conv)\.1\.bias', r'\1.bias', False, SQRT2),
    (r'(conv_body_(?:down|up)\.\d+)\.conv1\.0\.weight', r'\1.conv1.weight', True, SQRT2),
    (r'(conv_body_(?:down|up)\.\d+)\.conv1\.1\.bias', r'\1.conv1.bias', False, SQRT2),
    (r'(conv_body_down\.\d+)\.conv2\.1\.weight', r'\1.conv2.weight', True, 1.0),
    (r'(conv_body_down\.\d+)\.conv2\.2\.bias', r'\1.conv2.bias', False, 1.0),
    (r'(conv_body_down\.\d+)\.skip\.1\.weight', r'\1.skip.weight', True, 1 / SQRT2),
    (r'(conv_body_up\.\d+)\.conv2\.weight', r'\1.conv2.weight', True, 1.0),
    (r'(conv_body_up\.\d+)\.conv2\.activation\.bias', r'\1.conv2.bias', False, 1.0),
    (r'(conv_body_up\.\d+)\.skip\.weight', r'\1.skip.weight', True, 1 / SQRT2),
    (r'(toRGB\.\d+\.weight|final_linear\.weight)', r'\1', True, 1.0),
    (r'(toRGB\.\d+\.bias|final_linear\.bias)', r'\1', False, 1.0),
    (r'(condition_(?:scale|shift)\.\d+\.0\.weight)', r'\1', True, SQRT2),
    (r'(condition_(?:scale|shift)\.\d+\.0\.bias)', r'\1', False, SQRT2),
    (r'(condition_(?:scale|shift)\.\d+\.2\.weight)', r'\1', True, 1.0),
    (r'(condition_(?:scale|shift)\.\d+\.2\.bias)', r'\1', False, 1.0),
    # decoder: modulation linears and modulated conv weights only lose their equalized-lr scale;
    # the StyleConv's fused activation gain goes into its noise strength and bias (its conv output
    # is multiplied by sqrt(2) in the clean StyleConv).
    (r'(stylegan_decoder\..*modulated_conv\.modulation\.weight)', r'\1', True, 1.0),
    (r'(stylegan_decoder\..*modulated_conv\.weight)', r'\1', True, 1.0),
    (r'(stylegan_decoder\.(?:style_conv1|style_convs\.\d+)\.weight)', r'\1', False, SQRT2),
    (r'(stylegan_decoder\.(?:style_conv1|style_convs\.\d+))\.activate\.bias', r'\1.bias', False, SQRT2),
    (r'(stylegan_decoder\.(?:.*modulation\.bias|to_rgb.*\.bias|constant_input\.weight|noises\..*))', r'\1', False, 1.0),
]


def _fan_in(weight: torch.Tensor) -> int:
    dims = weight.shape[2:] if weight.ndim == 5 else weight.shape[1:]  # 5-D: (1, out, in, k, k)
    return math.prod(dims)


def convert_bilinear_to_clean(state_dict: Mapping[str, torch.Tensor], lr_mlp: float = 0.01) -> OrderedDict:
    """Map a GFPGANBilinear state dict onto GFPGANv1Clean keys, folding all run-time scales into weights.

    `lr_mlp` must be the GFPGANBilinear's `lr_mlp` (0.01 for the released models): the mapping
    MLP's equalized-lr multiplier. The result loads into GFPGANv1Clean (same out_size, channel
    multiplier, narrow, ...) and gives the same outputs.
    """
    rules = [(re.compile(p), r, eq, g) for p, r, eq, g in _UNET_RULES]
    mlp_rule = re.compile(r'stylegan_decoder\.style_mlp\.(\d+)\.(weight|bias)')
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state_dict.items():
        match = mlp_rule.fullmatch(key)
        if match:  # EqualLinear(fused_lrelu) at index i -> Linear at 2i-1 (a LeakyReLU follows each)
            idx, var = int(match.group(1)), match.group(2)
            scale = lr_mlp * SQRT2 * (1 / math.sqrt(value.shape[1]) if var == 'weight' else 1.0)
            out[f'stylegan_decoder.style_mlp.{2 * idx - 1}.{var}'] = value * scale
            continue
        for pattern, repl, equalize, gain in rules:
            match = pattern.fullmatch(key)
            if match:
                scale = gain / math.sqrt(_fan_in(value)) if equalize else gain
                new_key = match.expand(repl)
                new_value = value * scale if scale != 1.0 else value.clone()
                if new_key.endswith('.bias') and key.endswith('.activate.bias'):
                    new_value = new_value.view(1, -1, 1, 1)
                out[new_key] = new_value
                break
        else:
            raise KeyError(
                f"convert_bilinear_to_clean: unexpected key '{key}'. The input must be a GFPGANBilinear "
                "state dict (e.g. the 'params_ema' of a GFPGANBilinear checkpoint)."
            )
    return out
