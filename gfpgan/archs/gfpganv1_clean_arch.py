"""GFPGANv1Clean: the GFPGANv1.3 / v1.4 release network, plain PyTorch layers only.

Same topology as GFPGANv1 but with nn.Conv2d/nn.Linear, bilinear resampling and a clean StyleGAN2
decoder, so it runs (and exports) anywhere without custom ops. Parameter names match the release
checkpoints (`params_ema`).
"""
from __future__ import annotations

import torch
from torch import nn

from gfpgan.archs.gfpgan_unet import GFPGANBase
from gfpgan.archs.stylegan2_clean_arch import StyleGAN2GeneratorClean, conv_leaky_relu, resample
from gfpgan.archs.stylegan2_layers import SFTGeneratorMixin
from gfpgan.utils.memory_format import to_channels_last  # noqa: F401  (re-exported for callers)
from gfpgan.utils.registry import ARCH_REGISTRY


class StyleGAN2GeneratorCSFT(SFTGeneratorMixin, StyleGAN2GeneratorClean):
    """Clean StyleGAN2 generator with SFT conditions (scale, shift per resolution)."""

    def __init__(self, out_size: int, num_style_feat: int = 512, num_mlp: int = 8, channel_multiplier: float = 2,
                 narrow: float = 1, sft_half: bool = False) -> None:
        super().__init__(out_size, num_style_feat, num_mlp, channel_multiplier, narrow)
        self.sft_half = sft_half


class CleanResBlock(nn.Module):
    """Residual block: conv-lrelu, bilinear resample, conv-lrelu, plus a resampled 1x1 skip (no / sqrt 2)."""

    def __init__(self, in_channels: int, out_channels: int, mode: str = 'down') -> None:
        super().__init__()
        if mode not in ('down', 'up'):
            raise ValueError(f"CleanResBlock mode must be 'down' or 'up'; got {mode!r}.")
        self.mode = mode
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sample_mode = 'downsample' if self.mode == 'down' else 'upsample'
        out = resample(conv_leaky_relu(self.conv1, x), sample_mode)
        out = conv_leaky_relu(self.conv2, out)
        # A 1x1 conv commutes with bilinear resampling: run it on the smaller of the two grids.
        if self.mode == 'up':
            skip = resample(self.skip(x), sample_mode)
        else:
            skip = self.skip(resample(x, sample_mode))
        return skip.add_(out)  # `skip` is fresh and neither conv nor interpolate needs its output: autograd-safe


@ARCH_REGISTRY.register()
class GFPGANv1Clean(GFPGANBase):
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
        channels = self._build_unet(
            out_size, num_style_feat, channel_multiplier, narrow, input_is_latent, different_w,
            first_conv=lambda i, o: nn.Conv2d(i, o, 1),
            down_block=lambda i, o: CleanResBlock(i, o, mode='down'),
            final_conv=lambda i, o: nn.Conv2d(i, o, 3, 1, 1),
            up_block=lambda i, o: CleanResBlock(i, o, mode='up'),
            to_rgb=lambda i, o: nn.Conv2d(i, o, 1),
            linear=nn.Linear,
        )
        self.stylegan_decoder = StyleGAN2GeneratorCSFT(out_size, num_style_feat, num_mlp, channel_multiplier, narrow,
                                                       sft_half)
        self._build_sft(channels, sft_half, decoder_load_path, fix_decoder,
                        conv=lambda i, o, bias_init: nn.Conv2d(i, o, 3, 1, 1), act=lambda: nn.LeakyReLU(0.2, True))

    def _encoder_conv(self, conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The clean `conv_body_first` / `final_conv` are bare convs: leaky ReLU 0.2 after them."""
        return conv_leaky_relu(conv, x)
