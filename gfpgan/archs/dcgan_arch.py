"""DCGAN (Radford et al., 2016): the classic all-convolutional generator and discriminator.

The generator maps a latent vector to a 4x4 map with a transposed conv, doubles the resolution with
transposed conv + BatchNorm + ReLU blocks while halving the width, and ends in Tanh ([-1, 1] images).
The discriminator mirrors it with strided conv + BatchNorm + LeakyReLU and ends in one logit per image.
Weights start from N(0, 0.02) (BatchNorm gamma from N(1, 0.02)), as the paper prescribes.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from gfpgan.utils.registry import ARCH_REGISTRY


def _num_stages(image_size: int, who: str) -> int:
    """Number of x2 stages between 4x4 and `image_size`; the size must be a power of two >= 16."""
    log2 = math.log2(image_size) if image_size > 0 else -1
    if image_size < 16 or log2 != int(log2):
        raise ValueError(f'{who}: image_size must be a power of two >= 16, got {image_size}.')
    return int(log2) - 2


def _widths(base_channels: int, stages: int, max_channels: int) -> list[int]:
    """Channel widths from the 4x4 end outward: base * 2^(stages-1), ..., base * 2, base (capped)."""
    return [min(base_channels * 2 ** i, max_channels) for i in reversed(range(stages))]


def dcgan_init_(module: nn.Module) -> None:
    """DCGAN paper init: conv weights ~ N(0, 0.02), BatchNorm gamma ~ N(1, 0.02), beta 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@ARCH_REGISTRY.register()
class DCGANGenerator(nn.Module):
    """Latent `(N, latent_dim)` -> image `(N, out_channels, image_size, image_size)` in [-1, 1].

    Args:
        latent_dim: size of the input noise vector.
        image_size: output side, a power of two >= 16.
        base_channels: width of the last hidden block; earlier blocks double it.
        out_channels: image channels.
        max_channels: cap on any block's width (keeps large sizes affordable).
        use_bn: BatchNorm after each hidden transposed conv (the paper's choice; off gives a BN-free net).
    """

    def __init__(self, latent_dim: int = 100, image_size: int = 64, base_channels: int = 64, out_channels: int = 3,
                 max_channels: int = 1024, use_bn: bool = True) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.image_size = image_size
        widths = _widths(base_channels, _num_stages(image_size, 'DCGANGenerator'), max_channels)
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0, bias=not use_bn)]
        layers += [nn.BatchNorm2d(widths[0]) if use_bn else nn.Identity(), nn.ReLU(inplace=True)]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=not use_bn),
                       nn.BatchNorm2d(cout) if use_bn else nn.Identity(), nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(widths[-1], out_channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        dcgan_init_(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        if z.shape[1] != self.latent_dim:
            raise ValueError(f'{type(self).__name__} expects latents with {self.latent_dim} channels, '
                             f'got {tuple(z.shape)}.')
        return self.body(z)


@ARCH_REGISTRY.register()
class DCGANDiscriminator(nn.Module):
    """Image `(N, in_channels, image_size, image_size)` -> one real/fake logit per image, shape `(N, 1)`.

    Args:
        image_size: input side, a power of two >= 16.
        base_channels: width of the first conv; each later block doubles it.
        in_channels: image channels.
        max_channels: cap on any block's width.
        use_bn: BatchNorm after each strided conv but the first (the paper's choice). Turn it off for
            WGAN-GP, whose per-sample gradient penalty is wrong with batch statistics.
    """

    def __init__(self, image_size: int = 64, base_channels: int = 64, in_channels: int = 3,
                 max_channels: int = 1024, use_bn: bool = True) -> None:
        super().__init__()
        self.image_size = image_size
        widths = list(reversed(_widths(base_channels, _num_stages(image_size, 'DCGANDiscriminator'),
                                       max_channels)))
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=not use_bn),
                       nn.BatchNorm2d(cout) if use_bn else nn.Identity(), nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0)]
        self.body = nn.Sequential(*layers)
        dcgan_init_(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden map `(N, C, 4, 4)`, before the final 4x4 conv: what heads of subclasses read."""
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f'{type(self).__name__} was built for {self.image_size}px images, got {tuple(x.shape)}.')
        return self.body[:-1](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body[-1](self.features(x)).flatten(1)
