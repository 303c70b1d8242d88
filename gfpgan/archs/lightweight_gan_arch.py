"""Lightweight GAN / FastGAN (Liu et al., ICLR 2021): few-shot image synthesis on a small budget.

Generator: a 4x4 seed from the latent, then nearest-upsample + conv + GLU blocks; skip-layer excitation
(SLE) lets a low-resolution map gate the channels of a map `sle_ratio` times larger, and optional
linear attention runs at chosen resolutions. `freq_chan_attn=True` (lightweight-gan's `--freq_chan_attn`)
squeezes the low-resolution map with fixed 2-D DCT bases instead of pooling (FcaNet, Qin et al. 2021).
Discriminator: residual strided blocks down to 8x8, logits of size 1x1 or 5x5, and two small decoders
that reconstruct the whole real image (from the 8x8 features) and a random quarter of it (from a crop of
the 16x16 features). The reconstruction error is the self-supervised auxiliary loss that keeps D from
memorising a small dataset. `aux_32_head=True` adds lightweight-gan's second, small discriminator on the
image downscaled to 32x32 (it judges global shape; its adversarial loss is added to the main one).
`antialias=True` puts a [1, 2, 1] blur after upsampling / before downsampling. Greyscale and RGBA images
are `out_channels` / `in_channels` 1 or 4 (lightweight-gan's `--greyscale` / `--transparent`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.utils.registry import ARCH_REGISTRY


def _check_size(image_size: int, who: str) -> int:
    log2 = math.log2(image_size) if image_size > 0 else -1
    if image_size < 32 or log2 != int(log2):
        raise ValueError(f'{who}: image_size must be a power of two >= 32, got {image_size}.')
    return int(log2)


def _width(res: int, image_size: int, base_channels: int, max_channels: int) -> int:
    """Feature width at resolution `res`: `base_channels` at full size, doubling per halving, capped."""
    return min(max_channels, base_channels * image_size // res)


class Blur(nn.Module):
    """Depthwise [1, 2, 1] x [1, 2, 1] / 16 low-pass filter (anti-aliasing), size-preserving."""

    def __init__(self) -> None:
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer('kernel', (k[:, None] * k[None, :] / 16.0)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode='reflect'), self.kernel.expand(c, 1, 3, 3), groups=c)


class LinearAttention(nn.Module):
    """Residual efficient attention (softmax over features for q, over positions for k): O(HW) memory."""

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 16) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.norm = nn.GroupNorm(1, dim)
        self.to_qkv = nn.Conv2d(dim, inner * 3, 1, bias=False)
        self.to_out = nn.Conv2d(inner, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = self.to_qkv(self.norm(x)).reshape(b, 3, self.heads, self.dim_head, h * w).unbind(1)
        q = q.softmax(dim=-2) * self.dim_head ** -0.5
        k = k.softmax(dim=-1)
        context = torch.einsum('bhdn,bhen->bhde', k, v)
        out = torch.einsum('bhde,bhdn->bhen', context, q).reshape(b, -1, h, w)
        return x + self.to_out(out)


class SkipLayerExcitation(nn.Module):
    """Channel gate for a high-resolution map computed from a low-resolution one (FastGAN's SLE)."""

    def __init__(self, low_channels: int, high_channels: int) -> None:
        super().__init__()
        mid = max(high_channels, 4)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Conv2d(low_channels, mid, 4), nn.LeakyReLU(0.1),
            nn.Conv2d(mid, high_channels, 1), nn.Sigmoid())

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        return high * self.gate(low)


def dct_basis(size: int, u: int, v: int) -> torch.Tensor:
    """Orthonormal 2-D DCT-II basis image (size x size) of horizontal frequency `u` and vertical `v`."""
    pos = torch.arange(size, dtype=torch.float64) + 0.5

    def one_d(freq: int) -> torch.Tensor:
        scale = math.sqrt((1.0 if freq == 0 else 2.0) / size)
        return torch.cos(math.pi * freq * pos / size) * scale

    return (one_d(v)[:, None] * one_d(u)[None, :]).float()


class FrequencyChannelAttention(nn.Module):
    """SLE gate whose squeeze is a multi-spectral DCT pooling (FcaNet) instead of average pooling.

    Global average pooling keeps only the DC coefficient of each channel; FcaNet gives channel groups
    different low frequencies so the gate also sees coarse structure. As lightweight-gan: the
    `num_freqs` lowest horizontal and vertical frequencies of the low-resolution map (DC once, so 15
    groups for 8; capped at the map's side), a 1x1 conv bottleneck (`reduction`) and a sigmoid.
    Channels are spread over the frequencies as evenly as possible, so every channel is pooled even when
    there are fewer channels than frequencies (lightweight-gan leaves the remainder unpooled). The bases
    are a fixed, non-persistent buffer: the state dict holds only the learned convolutions.
    """

    def __init__(self, low_channels: int, high_channels: int, low_resolution: int, reduction: int = 4,
                 num_freqs: int = 8) -> None:
        super().__init__()
        top = min(num_freqs, low_resolution)  # higher ones alias on a small map
        freqs = [(0, f) for f in range(top)] + [(f, 0) for f in range(1, top)]
        group = [i * len(freqs) // low_channels for i in range(low_channels)]
        bases = torch.stack([dct_basis(low_resolution, *freqs[g]) for g in group])
        self.register_buffer('bases', bases[None], persistent=False)  # (1, C, H, W)
        mid = max(3, high_channels // reduction)
        self.gate = nn.Sequential(nn.Conv2d(low_channels, mid, 1), nn.LeakyReLU(0.1),
                                  nn.Conv2d(mid, high_channels, 1), nn.Sigmoid())

    def squeeze(self, low: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, 1, 1): each channel's DCT coefficient at its assigned frequency."""
        if low.shape[-2:] != self.bases.shape[-2:]:
            raise ValueError(f'FrequencyChannelAttention was built for {tuple(self.bases.shape[-2:])} maps, '
                             f'got {tuple(low.shape)}.')
        return (low * self.bases.to(low.dtype)).sum((2, 3), keepdim=True)

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        return high * self.gate(self.squeeze(low))


def _norm(channels: int, norm: str) -> nn.Module:
    if norm == 'batch':
        return nn.BatchNorm2d(channels)
    if norm == 'none':
        return nn.Identity()
    raise ValueError(f"norm must be 'batch' or 'none', got {norm!r}.")


def _up_block(cin: int, cout: int, norm: str, antialias: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode='nearest')]
    if antialias:
        layers.append(Blur())
    layers += [nn.Conv2d(cin, cout * 2, 3, padding=1), _norm(cout * 2, norm), nn.GLU(dim=1)]
    return nn.Sequential(*layers)


@ARCH_REGISTRY.register()
class LightweightGANGenerator(nn.Module):
    """Latent `(N, latent_dim)` -> image `(N, out_channels, image_size, image_size)` in [-1, 1].

    Args:
        latent_dim: size of the input noise vector.
        image_size: output side, a power of two >= 32.
        base_channels: width at full resolution; it doubles per halving of resolution, up to `max_channels`.
        attn_res_layers: resolutions (e.g. [32]) after whose block a linear-attention layer runs.
        sle_ratio: an SLE gate links each resolution r >= 8 to resolution r * sle_ratio (16 in the paper:
            8->128, 16->256 ...; use 4 for small images).
        norm: 'batch' (the paper) or 'none'.
        antialias: blur after each nearest upsampling.
        out_channels: 3 (RGB), 1 (greyscale) or 4 (RGBA).
        freq_chan_attn: SLE gates squeeze with DCT bases (`FrequencyChannelAttention`) instead of pooling.
    """

    def __init__(self, latent_dim: int = 256, image_size: int = 256, base_channels: int = 16,
                 max_channels: int = 512, out_channels: int = 3, attn_res_layers: tuple[int, ...] = (),
                 sle_ratio: int = 16, norm: str = 'batch', antialias: bool = False,
                 freq_chan_attn: bool = False) -> None:
        super().__init__()
        self.latent_dim, self.image_size = latent_dim, image_size
        num_layers = _check_size(image_size, 'LightweightGANGenerator')
        self.resolutions = [2 ** i for i in range(3, num_layers + 1)]

        def width(res: int) -> int:
            return _width(res, image_size, base_channels, max_channels)

        self.initial = nn.Sequential(nn.ConvTranspose2d(latent_dim, width(4) * 2, 4), _norm(width(4) * 2, norm),
                                     nn.GLU(dim=1))
        self.blocks = nn.ModuleDict()
        self.attns = nn.ModuleDict()
        for res in self.resolutions:
            self.blocks[str(res)] = _up_block(width(res // 2), width(res), norm, antialias)
            if res in attn_res_layers:
                self.attns[str(res)] = LinearAttention(width(res))
        bad_attn = sorted(set(attn_res_layers) - set(self.resolutions))
        if bad_attn:
            raise ValueError(f'LightweightGANGenerator: attn_res_layers {bad_attn} are not among the block '
                             f'resolutions {self.resolutions}.')
        self.sle_links = {res * sle_ratio: res for res in self.resolutions if res * sle_ratio in self.resolutions}
        if freq_chan_attn:
            self.sles = nn.ModuleDict({str(hi): FrequencyChannelAttention(width(lo), width(hi), lo)
                                       for hi, lo in self.sle_links.items()})
        else:
            self.sles = nn.ModuleDict({str(hi): SkipLayerExcitation(width(lo), width(hi))
                                       for hi, lo in self.sle_links.items()})
        self.to_rgb = nn.Sequential(nn.Conv2d(width(image_size), out_channels, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f'LightweightGANGenerator expects latents of shape (N, {self.latent_dim}), '
                             f'got {tuple(z.shape)}.')
        x = self.initial(F.normalize(z, dim=1)[:, :, None, None])
        feats: dict[int, torch.Tensor] = {}
        for res in self.resolutions:
            x = self.blocks[str(res)](x)
            if str(res) in self.attns:
                x = self.attns[str(res)](x)
            if res in self.sle_links:
                x = self.sles[str(res)](x, feats[self.sle_links[res]])
            feats[res] = x
        return self.to_rgb(x)


class _DownBlock(nn.Module):
    """Residual downsampling: (strided conv -> conv) + (avg-pool -> 1x1 conv), scaled by 1/sqrt(2)."""

    def __init__(self, cin: int, cout: int, antialias: bool) -> None:
        super().__init__()
        blur = [Blur()] if antialias else []
        self.main = nn.Sequential(*blur, nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.1),
                                  nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.1))
        self.skip = nn.Sequential(*blur, nn.AvgPool2d(2), nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.skip(x)) * (2 ** -0.5)


class SimpleDecoder(nn.Module):
    """8x8 features -> `out_size` image with `log2(out_size / 8)` upsample blocks (D's reconstruction head)."""

    def __init__(self, cin: int, out_size: int, out_channels: int, min_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        for _ in range(int(math.log2(out_size // 8))):
            cout = max(c // 2, min_channels)
            layers.append(_up_block(c, cout, 'batch', antialias=False))
            c = cout
        layers.append(nn.Conv2d(c, out_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Aux32Discriminator(nn.Module):
    """lightweight-gan's second discriminator: the image downscaled to 32x32 -> one logit `(N, 1)`.

    At 32 px only the global layout survives, so this head keeps the generator's shapes right while the
    main head judges texture. Stem conv, one residual downsampling to 16x16, pooling to 4x4, a 4x4 conv.
    """

    def __init__(self, in_channels: int, channels: int = 64, antialias: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.LeakyReLU(0.1),
                                  _DownBlock(channels, channels // 2, antialias), nn.LeakyReLU(0.1),
                                  nn.AdaptiveAvgPool2d(4), nn.Conv2d(channels // 2, 1, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 32 or x.shape[-2] != 32:
            x = F.interpolate(x, size=(32, 32), mode='bilinear', align_corners=False, antialias=True)
        return self.body(x).flatten(1)


@ARCH_REGISTRY.register()
class LightweightGANDiscriminator(nn.Module):
    """Image -> logits `(N, disc_output_size ** 2)`; with `calc_aux_loss=True` also the reconstruction loss.

    Args:
        image_size: input side, a power of two >= 32.
        base_channels / max_channels: widths as in the generator.
        in_channels: image channels.
        disc_output_size: 1 (one logit per image) or 5 (a 5x5 patch of logits, as lightweight-gan).
        attn_res_layers: resolutions after whose block a linear-attention layer runs.
        recon_size: side of the reconstructed images (default min(image_size, 128) as the paper's 128).
        antialias: blur before each strided downsampling.
        in_channels: 3 (RGB), 1 (greyscale) or 4 (RGBA); the decoders reconstruct the same channels.
        aux_32_head: add `Aux32Discriminator` (lightweight-gan always has it; off by default here so
            existing checkpoints keep their layout). Its logits come back as `heads['logits_32']`.
        aux_32_channels: width of that head.

    The model treats it like any other discriminator; its `returns_aux_loss` flag tells `GANModel` to
    call it on real images with `calc_aux_loss=True` and add the returned loss to D's objective.
    `heads` names the extra outputs that `forward(..., return_heads=True)` returns as `(logits, heads)`;
    with it, the reconstruction loss (when `calc_aux_loss`) is `heads['recon_loss']`.
    """

    returns_aux_loss = True

    def __init__(self, image_size: int = 256, base_channels: int = 16, max_channels: int = 512,
                 in_channels: int = 3, disc_output_size: int = 5, attn_res_layers: tuple[int, ...] = (),
                 recon_size: int | None = None, antialias: bool = False, aux_32_head: bool = False,
                 aux_32_channels: int = 64) -> None:
        super().__init__()
        if disc_output_size not in (1, 5):
            raise ValueError(f'LightweightGANDiscriminator: disc_output_size must be 1 or 5, got {disc_output_size}.')
        num_layers = _check_size(image_size, 'LightweightGANDiscriminator')
        self.image_size = image_size
        self.recon_size = recon_size or min(image_size, 128)
        if self.recon_size < 8 or math.log2(self.recon_size) != int(math.log2(self.recon_size)):
            raise ValueError(f'LightweightGANDiscriminator: recon_size must be a power of two >= 8, '
                             f'got {self.recon_size}.')

        def width(res: int) -> int:
            return _width(res, image_size, base_channels, max_channels)

        self.stem = nn.Sequential(nn.Conv2d(in_channels, width(image_size), 3, padding=1), nn.LeakyReLU(0.1))
        self.resolutions = [2 ** i for i in range(num_layers, 3, -1)]  # input side of each block: S ... 16
        self.blocks = nn.ModuleDict({str(r): _DownBlock(width(r), width(r // 2), antialias) for r in self.resolutions})
        self.attns = nn.ModuleDict({str(r // 2): LinearAttention(width(r // 2))
                                    for r in self.resolutions if r // 2 in attn_res_layers})
        bad_attn = sorted(set(attn_res_layers) - {r // 2 for r in self.resolutions})
        if bad_attn:
            raise ValueError(f'LightweightGANDiscriminator: attn_res_layers {bad_attn} are not among the feature '
                             f'resolutions {[r // 2 for r in self.resolutions]}.')
        c8 = width(8)
        if disc_output_size == 5:
            self.to_logits = nn.Sequential(nn.Conv2d(c8, c8, 1), nn.LeakyReLU(0.1), nn.Conv2d(c8, 1, 4))
        else:
            self.to_logits = nn.Sequential(*([Blur()] if antialias else []), nn.Conv2d(c8, c8, 4, 2, 1),
                                           nn.LeakyReLU(0.1), nn.Conv2d(c8, 1, 4))
        self.decoder_whole = SimpleDecoder(c8, self.recon_size, in_channels, base_channels)
        self.decoder_part = SimpleDecoder(width(16), self.recon_size, in_channels, base_channels)
        self.aux_32 = Aux32Discriminator(in_channels, aux_32_channels, antialias) if aux_32_head else None
        self.heads: tuple[str, ...] = ('logits_32',) if aux_32_head else ()

    def forward(self, x: torch.Tensor, calc_aux_loss: bool = False, return_heads: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | dict[str, torch.Tensor]]:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f'LightweightGANDiscriminator was built for {self.image_size}px images, '
                             f'got {tuple(x.shape)}.')
        feat = self.stem(x)
        feats: dict[int, torch.Tensor] = {}
        for r in self.resolutions:
            feat = self.blocks[str(r)](feat)
            if str(r // 2) in self.attns:
                feat = self.attns[str(r // 2)](feat)
            feats[r // 2] = feat
        logits = self.to_logits(feat).flatten(1)
        recon = self.reconstruction_loss(x, feats[8], feats[16]) if calc_aux_loss else None
        if return_heads:
            heads: dict[str, torch.Tensor] = {}
            if self.aux_32 is not None:
                heads['logits_32'] = self.aux_32(x)
            if recon is not None:
                heads['recon_loss'] = recon
            return logits, heads
        return logits if recon is None else (logits, recon)

    def reconstruction_loss(self, img: torch.Tensor, feat8: torch.Tensor, feat16: torch.Tensor) -> torch.Tensor:
        """MSE of the whole-image and random-quarter reconstructions against the (resized) real image."""
        size = self.recon_size
        whole = self.decoder_whole(feat8)
        target_whole = F.interpolate(img, size=(size, size), mode='bilinear', align_corners=False, antialias=True)
        qy, qx = torch.randint(2, (2,)).tolist()
        half_img, half_feat = self.image_size // 2, 8
        part = self.decoder_part(feat16[:, :, qy * half_feat:(qy + 1) * half_feat, qx * half_feat:(qx + 1) * half_feat])
        quarter = img[:, :, qy * half_img:(qy + 1) * half_img, qx * half_img:(qx + 1) * half_img]
        target_part = F.interpolate(quarter, size=(size, size), mode='bilinear', align_corners=False, antialias=True)
        return F.mse_loss(whole, target_whole) + F.mse_loss(part, target_part)
