"""GFPGANv1Clean: the GFPGANv1.3 / v1.4 release network, plain PyTorch layers only.

Same topology as GFPGANv1 but with nn.Conv2d/nn.Linear, bilinear resampling and a clean StyleGAN2
decoder, so it runs (and exports) anywhere without custom ops. Parameter names match the release
checkpoints (`params_ema`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.archs.gfpganv1_arch import load_decoder, sft_branches, unet_forward
from gfpgan.archs.stylegan2_arch import stylegan2_channels
from gfpgan.archs.stylegan2_clean_arch import StyleGAN2GeneratorClean
from gfpgan.utils.memory_format import to_channels_last  # noqa: F401  (re-exported for callers)
from gfpgan.utils.registry import ARCH_REGISTRY


class StyleGAN2GeneratorCSFT(StyleGAN2GeneratorClean):
    """Clean StyleGAN2 generator with SFT conditions (scale, shift per resolution)."""

    def __init__(self, out_size: int, num_style_feat: int = 512, num_mlp: int = 8, channel_multiplier: float = 2,
                 narrow: float = 1, sft_half: bool = False) -> None:
        super().__init__(out_size, num_style_feat, num_mlp, channel_multiplier, narrow)
        self.sft_half = sft_half

    def forward(self, styles, conditions, input_is_latent=False, noise=None, randomize_noise=True, truncation=1,
                truncation_latent=None, inject_index=None, return_latents=False):  # type: ignore[override]
        return self._generate(styles, conditions, input_is_latent, noise, randomize_noise, truncation,
                              truncation_latent, inject_index, return_latents)

    def _apply_sft(self, out: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """In place when no gradient is needed (inference): saves the copy `torch.cat` makes."""
        if torch.is_grad_enabled() and (out.requires_grad or scale.requires_grad or shift.requires_grad):
            return super()._apply_sft(out, scale, shift)
        target = out.chunk(2, dim=1)[1] if self.sft_half else out
        target.mul_(scale).add_(shift)
        return out


def _leaky_relu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu_(x, 0.2)


class ResBlock(nn.Module):
    """Residual block: conv-lrelu, bilinear resample, conv-lrelu, plus a resampled 1x1 skip (no / sqrt 2)."""

    def __init__(self, in_channels: int, out_channels: int, mode: str = 'down') -> None:
        super().__init__()
        if mode not in ('down', 'up'):
            raise ValueError(f"ResBlock mode must be 'down' or 'up'; got {mode!r}.")
        self.mode = mode
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = 0.5 if self.mode == 'down' else 2
        out = F.leaky_relu_(self.conv1(x), 0.2)
        out = F.interpolate(out, scale_factor=scale, mode='bilinear', align_corners=False)
        out = F.leaky_relu_(self.conv2(out), 0.2)
        # A 1x1 conv commutes with bilinear resampling: run it on the smaller of the two grids.
        if self.mode == 'up':
            skip = F.interpolate(self.skip(x), scale_factor=2, mode='bilinear', align_corners=False)
        else:
            skip = self.skip(F.interpolate(x, scale_factor=0.5, mode='bilinear', align_corners=False))
        return skip.add_(out)  # `skip` is fresh and neither conv nor interpolate needs its output: autograd-safe


@ARCH_REGISTRY.register()
class GFPGANv1Clean(nn.Module):
    """GFPGANv1Clean (v1.3/v1.4: out_size=512, channel_multiplier=2, different_w, sft_half, input_is_latent).

    forward(x) -> (image, [intermediate rgb at 8, 16, ... px]); x and image in [-1, 1].
    """

    def __init__(
        self,
        out_size: int,
        num_style_feat: int = 512,
        channel_multiplier: float = 1,
        decoder_load_path: str | None = None,
        fix_decoder: bool = True,
        num_mlp: int = 8,
        input_is_latent: bool = False,
        different_w: bool = False,
        narrow: float = 1,
        sft_half: bool = False,
    ) -> None:
        super().__init__()
        self.input_is_latent, self.different_w, self.num_style_feat = input_is_latent, different_w, num_style_feat
        channels = stylegan2_channels(channel_multiplier, narrow * 0.5)  # the U-Net is half as wide
        self.log_size = log_size = int(math.log(out_size, 2))
        self.conv_body_first = nn.Conv2d(3, channels[f'{2**log_size}'], 1)
        in_channels = channels[f'{2**log_size}']
        self.conv_body_down = nn.ModuleList()
        for i in range(log_size, 2, -1):
            out_channels = channels[f'{2 ** (i - 1)}']
            self.conv_body_down.append(ResBlock(in_channels, out_channels, mode='down'))
            in_channels = out_channels
        self.final_conv = nn.Conv2d(in_channels, channels['4'], 3, 1, 1)
        in_channels = channels['4']
        self.conv_body_up = nn.ModuleList()
        for i in range(3, log_size + 1):
            out_channels = channels[f'{2**i}']
            self.conv_body_up.append(ResBlock(in_channels, out_channels, mode='up'))
            in_channels = out_channels
        self.toRGB = nn.ModuleList(nn.Conv2d(channels[f'{2**i}'], 3, 1) for i in range(3, log_size + 1))
        num_w = (log_size * 2 - 2) if different_w else 1
        self.final_linear = nn.Linear(channels['4'] * 4 * 4, num_w * num_style_feat)
        self.stylegan_decoder = StyleGAN2GeneratorCSFT(out_size, num_style_feat, num_mlp, channel_multiplier, narrow,
                                                       sft_half)
        load_decoder(self.stylegan_decoder, decoder_load_path, fix_decoder)
        self.condition_scale, self.condition_shift = sft_branches(
            channels, log_size, sft_half,
            lambda i, o, bias_init: nn.Conv2d(i, o, 3, 1, 1),
            lambda: nn.LeakyReLU(0.2, True),
        )

    def forward(self, x: torch.Tensor, return_latents: bool = False, return_rgb: bool = True,
                randomize_noise: bool = True, **kwargs):
        return unet_forward(self, x, return_latents, return_rgb, randomize_noise, first_act=_leaky_relu)
