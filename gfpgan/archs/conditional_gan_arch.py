"""Class-conditional DCGAN (torchgan's conditional family) and DCGAN discriminators with extra heads.

- `ConditionalDCGANGenerator`: the label's learned embedding is concatenated to the noise, so one
  network draws every class (Mirza & Osindero 2014, as torchgan's conditional generators).
- `ConditionalDCGANDiscriminator`: the DCGAN trunk `phi(x)` (summed over its 4x4 map) with up to three
  optional heads, each a published method:
  * projection (Miyato & Koyama 2018): `D(x, y) = psi(phi(x)) + <embed(y), phi(x)>`, the label enters as
    an inner product with the features instead of as an input channel, which trains more stably;
  * class head (ACGAN, Odena et al. 2017): logits over the classes, scored by `ACGANLoss`;
  * latent-code head (InfoGAN's Q, Chen et al. 2016): logits of categorical codes and the mean and
    log-variance of continuous codes, scored by `MutualInformationLoss`.

Heads share the trunk with the real/fake logit (that is what makes them cheap); `forward(x, labels,
return_heads=True)` returns `(logits, heads)` with the names listed in `heads`. An InfoGAN generator is a
plain `DCGANGenerator` whose `latent_dim` is noise + code size (see `gfpgan.losses.mutual_info_loss`).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from gfpgan.archs.dcgan_arch import DCGANDiscriminator, DCGANGenerator
from gfpgan.utils.registry import ARCH_REGISTRY


def check_labels(labels: torch.Tensor | None, n: int, num_classes: int, who: str) -> torch.Tensor:
    """Labels must be `(N,)` integers in [0, num_classes): an embedding lookup out of range fails obscurely."""
    if labels is None:
        raise ValueError(f'{who} is class-conditional: call it with labels (N,) in [0, {num_classes}).')
    if labels.dim() != 1 or labels.shape[0] != n or labels.dtype.is_floating_point:
        raise ValueError(f'{who}: labels must be an integer tensor of shape ({n},), got {labels.dtype} '
                         f'{tuple(labels.shape)}.')
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f'{who}: labels must lie in [0, {num_classes}), got {int(labels.min())}..'
                         f'{int(labels.max())}; is num_classes the number of class folders?')
    return labels.long()


@ARCH_REGISTRY.register()
class ConditionalDCGANGenerator(DCGANGenerator):
    """(noise `(N, latent_dim)`, labels `(N,)`) -> image `(N, out_channels, image_size, image_size)` in [-1, 1].

    Args (beyond `DCGANGenerator`'s):
        num_classes: number of classes (labels are 0 .. num_classes - 1).
        embed_dim: size of the label embedding concatenated to the noise (default: num_classes).
    """

    takes_labels = True

    def __init__(self, num_classes: int, latent_dim: int = 100, image_size: int = 64, base_channels: int = 64,
                 out_channels: int = 3, max_channels: int = 1024, use_bn: bool = True,
                 embed_dim: int | None = None) -> None:
        if num_classes < 1:
            raise ValueError(f'ConditionalDCGANGenerator: num_classes must be >= 1, got {num_classes}.')
        embed_dim = int(embed_dim or num_classes)
        super().__init__(latent_dim + embed_dim, image_size, base_channels, out_channels, max_channels, use_bn)
        self.latent_dim = latent_dim  # what callers sample; the embedding makes up the rest of the input
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)
        nn.init.normal_(self.embed.weight, 0.0, 1.0)  # on the scale of the N(0, 1) noise it sits next to

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f'ConditionalDCGANGenerator expects latents of shape (N, {self.latent_dim}), '
                             f'got {tuple(z.shape)}.')
        labels = check_labels(labels, z.shape[0], self.num_classes, 'ConditionalDCGANGenerator')
        x = torch.cat([z, self.embed(labels).to(z.dtype)], 1)
        return self.body(x[:, :, None, None])


@ARCH_REGISTRY.register()
class ConditionalDCGANDiscriminator(DCGANDiscriminator):
    """Image `(N, in_channels, S, S)` (+ labels `(N,)` with projection) -> logits `(N, 1)` [, heads].

    Args (beyond `DCGANDiscriminator`'s):
        num_classes: number of classes; 0 for a discriminator without labels (InfoGAN only).
        projection: add the projection term `<embed(y), phi(x)>` (needs labels in `forward`).
        class_head: add ACGAN's classifier, `heads['class_logits']` `(N, num_classes)`.
        info_cat_dims: sizes of InfoGAN's categorical codes, `heads['code_logits']` `(N, sum(dims))`.
        info_cont_dim: number of InfoGAN's continuous codes, `heads['code_mu']`, `heads['code_logvar']`.
    """

    def __init__(self, image_size: int = 64, base_channels: int = 64, in_channels: int = 3,
                 max_channels: int = 1024, use_bn: bool = True, num_classes: int = 0, projection: bool = True,
                 class_head: bool = False, info_cat_dims: Sequence[int] = (), info_cont_dim: int = 0) -> None:
        super().__init__(image_size, base_channels, in_channels, max_channels, use_bn)
        if (projection or class_head) and num_classes < 1:
            raise ValueError('ConditionalDCGANDiscriminator: projection and class_head need num_classes >= 1; '
                             'set num_classes, or projection: false for an InfoGAN-only discriminator.')
        if any(int(d) < 2 for d in info_cat_dims) or info_cont_dim < 0:
            raise ValueError(f'ConditionalDCGANDiscriminator: info_cat_dims must be sizes >= 2 and info_cont_dim '
                             f'>= 0, got {list(info_cat_dims)} and {info_cont_dim}.')
        width = self.body[-1].in_channels
        self.num_classes = num_classes
        self.takes_labels = bool(projection)
        self.info_cat_dims = [int(d) for d in info_cat_dims]
        self.info_cont_dim = int(info_cont_dim)
        self.embed = nn.Embedding(num_classes, width) if projection else None
        self.class_head = nn.Linear(width, num_classes) if class_head else None
        code_out = sum(self.info_cat_dims) + 2 * self.info_cont_dim
        self.code_head = (nn.Sequential(nn.Linear(width, width), nn.LeakyReLU(0.2, inplace=True),
                                        nn.Linear(width, code_out)) if code_out else None)
        for m in (self.embed, self.class_head, self.code_head):
            if m is not None:
                for p in m.parameters():
                    nn.init.normal_(p, 0.0, 0.02) if p.dim() > 1 else nn.init.zeros_(p)
        heads = ['class_logits'] if class_head else []
        heads += ['code_logits'] if self.info_cat_dims else []
        heads += ['code_mu', 'code_logvar'] if self.info_cont_dim else []
        self.heads: tuple[str, ...] = tuple(heads)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, return_heads: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feat = self.features(x)
        logits = self.body[-1](feat).flatten(1)
        phi = feat.sum((2, 3))
        if self.embed is not None:
            labels = check_labels(labels, x.shape[0], self.num_classes, 'ConditionalDCGANDiscriminator')
            logits = logits + (self.embed(labels).to(phi.dtype) * phi).sum(1, keepdim=True)
        if not return_heads:
            return logits
        heads: dict[str, torch.Tensor] = {}
        if self.class_head is not None:
            heads['class_logits'] = self.class_head(phi)
        if self.code_head is not None:
            out = self.code_head(phi)
            n_cat = sum(self.info_cat_dims)
            if n_cat:
                heads['code_logits'] = out[:, :n_cat]
            if self.info_cont_dim:
                heads['code_mu'] = out[:, n_cat:n_cat + self.info_cont_dim]
                heads['code_logvar'] = out[:, n_cat + self.info_cont_dim:]
        return logits, heads
