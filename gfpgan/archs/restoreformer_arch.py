"""RestoreFormer (Wang et al., CVPR 2022): face restoration by cross-attention to a VQ codebook.

An encoder maps the degraded face to a latent grid, which is snapped to its nearest entries of a
learned codebook of high-quality face parts. The decoder rebuilds the face from the quantized grid,
and its attention blocks take their queries from the *degraded* encoder features (keys and values
from the decoder), which is how identity details leak past the codebook.

Module names and constructor defaults follow the RestoreFormer.pth release that upstream GFPGAN's
inference offers as `-v RestoreFormer`, so those weights load strictly (405 tensors).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.utils.registry import ARCH_REGISTRY


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6)


def conv3x3(cin: int, cout: int, stride: int = 1, padding: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, padding)


class ResnetBlock(nn.Module):
    """GroupNorm-swish-conv twice, with a 1x1 shortcut when the width changes."""

    def __init__(self, cin: int, cout: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1, self.conv1 = group_norm(cin), conv3x3(cin, cout)
        self.norm2, self.conv2 = group_norm(cout), conv3x3(cout, cout)
        self.dropout = nn.Dropout(dropout)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return h + (x if self.nin_shortcut is None else self.nin_shortcut(x))


class MultiHeadAttnBlock(nn.Module):
    """Multi-head attention over spatial positions, residual.

    Without `context` it is self-attention. With `context` (the encoder feature of the degraded face)
    queries come from the context and keys/values from `x`, as RestoreFormer's decoder does.
    """

    def __init__(self, channels: int, heads: int = 1) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f'MultiHeadAttnBlock: {channels} channels do not split into {heads} heads.')
        self.heads = heads
        self.norm1, self.norm2 = group_norm(channels), group_norm(channels)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        hx = self.norm1(x)
        hq = hx if context is None else self.norm2(context)

        def split_heads(t: torch.Tensor) -> torch.Tensor:  # (b, c, h, w) -> (b, heads, h*w, c/heads)
            return t.reshape(b, self.heads, c // self.heads, h * w).transpose(2, 3)

        out = F.scaled_dot_product_attention(split_heads(self.q(hq)), split_heads(self.k(hx)), split_heads(self.v(hx)))
        return x + self.proj_out(out.transpose(2, 3).reshape(b, c, h, w))


class Downsample(nn.Module):
    """Stride-2 3x3 conv with the (right, bottom) padding of the original taming-transformers code."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = conv3x3(channels, channels, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour x2 then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode='nearest'))


class Level(nn.Module):
    """One resolution of the encoder or decoder: res blocks, each followed by attention where enabled."""

    def __init__(self, cin: int, cout: int, num_blocks: int, use_attn: bool, heads: int, dropout: float,
                 resample: nn.Module | None, resample_name: str) -> None:
        super().__init__()
        self.block = nn.ModuleList(ResnetBlock(cin if i == 0 else cout, cout, dropout) for i in range(num_blocks))
        self.attn = nn.ModuleList(MultiHeadAttnBlock(cout, heads) for _ in range(num_blocks if use_attn else 0))
        if resample is not None:
            self.add_module(resample_name, resample)

    def forward(self, h: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        for i, block in enumerate(self.block):
            h = block(h)
            if len(self.attn):
                h = self.attn[i](h, context)
        return h


class MidBlock(nn.Module):
    """Res block, attention, res block at the lowest resolution."""

    def __init__(self, channels: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout)
        self.attn_1 = MultiHeadAttnBlock(channels, heads)
        self.block_2 = ResnetBlock(channels, channels, dropout)


class MultiHeadEncoder(nn.Module):
    """Image -> latent grid, plus the features the decoder's attention takes its queries from:
    `'lowest'` (after the first mid res block) and `'mid'` (after the whole mid block)."""

    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, attn_resolutions: Sequence[int],
                 dropout: float, in_channels: int, resolution: int, z_channels: int, double_z: bool,
                 enable_mid: bool, head_size: int) -> None:
        super().__init__()
        self.conv_in = conv3x3(in_channels, ch)
        self.down = nn.ModuleList()
        widths = [ch] + [ch * m for m in ch_mult]
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            last = i == len(ch_mult) - 1
            self.down.append(Level(cin, cout, num_res_blocks, resolution // 2 ** i in attn_resolutions, head_size,
                                   dropout, None if last else Downsample(cout), 'downsample'))
        self.mid = MidBlock(widths[-1], head_size, dropout) if enable_mid else None
        self.norm_out = group_norm(widths[-1])
        self.conv_out = conv3x3(widths[-1], 2 * z_channels if double_z else z_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h, feats = self.conv_in(x), {}
        for level in self.down:
            h = level(h)
            if hasattr(level, 'downsample'):
                h = level.downsample(h)
        if self.mid is not None:
            h = feats['lowest'] = self.mid.block_1(h)
            h = feats['mid'] = self.mid.block_2(self.mid.attn_1(h))
        return self.conv_out(F.silu(self.norm_out(h))), feats


class MultiHeadDecoderTransformer(nn.Module):
    """Quantized latent grid -> image; attention queries come from the encoder's features."""

    def __init__(self, ch: int, out_ch: int, ch_mult: Sequence[int], num_res_blocks: int,
                 attn_resolutions: Sequence[int], dropout: float, resolution: int, z_channels: int,
                 enable_mid: bool, head_size: int) -> None:
        super().__init__()
        cin = ch * ch_mult[-1]
        self.conv_in = conv3x3(z_channels, cin)
        self.mid = MidBlock(cin, head_size, dropout) if enable_mid else None
        levels = []
        for i in reversed(range(len(ch_mult))):
            cout = ch * ch_mult[i]
            levels.append(Level(cin, cout, num_res_blocks + 1, resolution // 2 ** i in attn_resolutions, head_size,
                                dropout, Upsample(cout) if i else None, 'upsample'))
            cin = cout
        self.up = nn.ModuleList(reversed(levels))  # indexed by level: up[0] is the full resolution
        self.norm_out = group_norm(cin)
        self.conv_out = conv3x3(cin, out_ch)

    def forward(self, z: torch.Tensor, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.conv_in(z)
        if self.mid is not None:
            h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h), feats['mid']))
        for level in reversed(self.up):
            h = level(h, feats.get('lowest'))
            if hasattr(level, 'upsample'):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """Snap each latent vector to its nearest codebook entry (straight-through gradient).

    Returns the quantized grid, the VQ-VAE codebook + `beta` x commitment loss, and the code indices.
    """

    def __init__(self, n_e: int, e_dim: int, beta: float = 0.25) -> None:
        super().__init__()
        self.beta = beta
        self.embedding = nn.Embedding(n_e, e_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / n_e, 1.0 / n_e)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        codes = self.embedding.weight
        dist = flat.pow(2).sum(1, keepdim=True) + codes.pow(2).sum(1) - 2 * flat @ codes.t()
        indices = dist.argmin(1)
        z_q = self.embedding(indices).view(b, h, w, c).permute(0, 3, 1, 2)
        loss = F.mse_loss(z_q.detach(), z) + self.beta * F.mse_loss(z_q, z.detach())
        return z + (z_q - z).detach(), loss, indices.view(b, h, w)


@ARCH_REGISTRY.register()
class RestoreFormer(nn.Module):
    """Degraded face `(N, 3, 512, 512)` in [-1, 1] -> `(restored face, None)`.

    The defaults are those of the released RestoreFormer.pth. The input side must be divisible by
    2 ** (len(ch_mult) - 1). Attention may only sit at the lowest resolution (the released layout):
    the decoder's attention there takes its queries from the encoder's mid block.
    """

    def __init__(self, n_embed: int = 1024, embed_dim: int = 256, ch: int = 64, out_ch: int = 3,
                 ch_mult: Sequence[int] = (1, 2, 2, 4, 4, 8), num_res_blocks: int = 2,
                 attn_resolutions: Sequence[int] = (16,), dropout: float = 0.0, in_channels: int = 3,
                 resolution: int = 512, z_channels: int = 256, double_z: bool = False, enable_mid: bool = True,
                 fix_decoder: bool = False, fix_codebook: bool = True, fix_encoder: bool = False,
                 head_size: int = 8) -> None:
        super().__init__()
        lowest = resolution // 2 ** (len(ch_mult) - 1)
        bad = [r for r in attn_resolutions if r != lowest and r in [resolution // 2 ** i for i in range(len(ch_mult))]]
        if bad or (lowest in attn_resolutions and not enable_mid):
            raise ValueError(f'RestoreFormer: attention only works at the lowest resolution ({lowest}) with '
                             f'enable_mid=True; got attn_resolutions={list(attn_resolutions)}, '
                             f'enable_mid={enable_mid}.')
        if double_z:
            raise ValueError('RestoreFormer: double_z=True would feed the quantizer 2 x z_channels; set it False.')
        self.encoder = MultiHeadEncoder(ch, ch_mult, num_res_blocks, attn_resolutions, dropout, in_channels,
                                        resolution, z_channels, double_z, enable_mid, head_size)
        self.decoder = MultiHeadDecoderTransformer(ch, out_ch, ch_mult, num_res_blocks, attn_resolutions, dropout,
                                                   resolution, z_channels, enable_mid, head_size)
        self.quantize = VectorQuantizer(n_embed, embed_dim, beta=0.25)
        self.quant_conv = nn.Conv2d(z_channels, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)
        frozen = []
        if fix_decoder:
            frozen += [self.decoder, self.post_quant_conv, self.quantize]
        if fix_codebook:
            frozen.append(self.quantize)
        if fix_encoder:
            frozen.append(self.encoder)
        for module in frozen:
            module.requires_grad_(False)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """-> (quantized grid, VQ loss, code indices, encoder features for the decoder)."""
        z, feats = self.encoder(x)
        quant, vq_loss, indices = self.quantize(self.quant_conv(z))
        return quant, vq_loss, indices, feats

    def decode(self, quant: torch.Tensor, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quant), feats)

    def forward(self, x: torch.Tensor, **unused: Any) -> tuple[torch.Tensor, None]:
        """`unused` swallows GFPGAN's `return_rgb=`/`weight=` so a restorer can call every arch alike."""
        quant, _, _, feats = self.encode(x)
        return self.decode(quant, feats), None
