"""BEGAN (Berthelot et al., 2017): an autoencoder as discriminator, and a generator shaped like its decoder.

The discriminator reconstructs its input; how well it reconstructs (L1 error) is its judgement, and
`BEGANLoss` balances the errors on real and generated images. Both halves follow the paper: 3x3 convs
with ELU, two per resolution; the encoder halves the size with a strided conv and widens linearly
(n, 2n, 3n, ...), down to 8x8 and a fully connected embedding of `hidden_dim`; the decoder maps an
embedding (or, as generator, a latent) to 8x8 x n and doubles the size with nearest upsampling. No
BatchNorm and no output Tanh, as in the paper (images are compared in the [-1, 1] range directly).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from gfpgan.utils.registry import ARCH_REGISTRY


def _stages(image_size: int, who: str) -> int:
    """Number of x2 stages between 8x8 and `image_size` (a power of two >= 16)."""
    log2 = math.log2(image_size) if image_size > 0 else -1
    if image_size < 16 or log2 != int(log2):
        raise ValueError(f'{who}: image_size must be a power of two >= 16, got {image_size}.')
    return int(log2) - 3


def _conv_pair(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.ELU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1),
            nn.ELU(inplace=True)]


class BEGANDecoder(nn.Module):
    """(N, in_dim) -> (N, out_channels, image_size, image_size): fc to 8x8 x n, then conv pairs + upsampling."""

    def __init__(self, in_dim: int, image_size: int, base_channels: int, out_channels: int) -> None:
        super().__init__()
        self.base_channels = base_channels
        self.fc = nn.Linear(in_dim, 8 * 8 * base_channels)
        layers: list[nn.Module] = []
        for _ in range(_stages(image_size, 'BEGANDecoder')):
            layers += _conv_pair(base_channels, base_channels) + [nn.Upsample(scale_factor=2, mode='nearest')]
        layers += _conv_pair(base_channels, base_channels) + [nn.Conv2d(base_channels, out_channels, 3, padding=1)]
        self.body = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.body(self.fc(h).view(h.shape[0], self.base_channels, 8, 8))


@ARCH_REGISTRY.register()
class BEGANGenerator(nn.Module):
    """Latent `(N, latent_dim)` -> image `(N, out_channels, image_size, image_size)` (the decoder's shape).

    Args: latent_dim (the paper's N_z), image_size (power of two >= 16), base_channels (n), out_channels.
    """

    def __init__(self, latent_dim: int = 64, image_size: int = 64, base_channels: int = 64,
                 out_channels: int = 3) -> None:
        super().__init__()
        self.latent_dim, self.image_size = latent_dim, image_size
        self.decoder = BEGANDecoder(latent_dim, image_size, base_channels, out_channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f'BEGANGenerator expects latents of shape (N, {self.latent_dim}), got {tuple(z.shape)}.')
        return self.decoder(z)


@ARCH_REGISTRY.register()
class BEGANDiscriminator(nn.Module):
    """Image `(N, in_channels, S, S)` -> its reconstruction, same shape (an autoencoder).

    Args: image_size, hidden_dim (embedding size h), base_channels (n), in_channels.
    `is_autoencoder` tells a training recipe that the output is an image to compare with the input
    (`BEGANLoss`), not a logit.
    """

    is_autoencoder = True

    def __init__(self, image_size: int = 64, hidden_dim: int = 64, base_channels: int = 64,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.image_size = image_size
        stages = _stages(image_size, 'BEGANDiscriminator')
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 3, padding=1), nn.ELU(inplace=True)]
        width = base_channels
        for i in range(stages):
            layers += _conv_pair(width, width)
            wider = base_channels * (i + 2)
            layers += [nn.Conv2d(width, wider, 3, stride=2, padding=1), nn.ELU(inplace=True)]
            width = wider
        layers += _conv_pair(width, width)
        self.encoder = nn.Sequential(*layers)
        self.to_hidden = nn.Linear(8 * 8 * width, hidden_dim)
        self.decoder = BEGANDecoder(hidden_dim, image_size, base_channels, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f'BEGANDiscriminator was built for {self.image_size}px images, got {tuple(x.shape)}.')
        return self.decoder(self.to_hidden(self.encoder(x).flatten(1)))
