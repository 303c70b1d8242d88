"""InfoGAN's mutual-information term (Chen et al., 2016) and the latent codes it is about.

The generator gets structured codes c next to the noise z; a head Q on the discriminator's trunk
predicts c from G(z, c). Minimising Q's negative log-likelihood of the codes maximises a lower bound on
I(c; G(z, c)), so G must keep each code visible in its image. Both G and Q (with D's trunk) minimise it.
Categorical codes are scored by cross-entropy, continuous ones (uniform in [-1, 1], as the paper) by a
Gaussian negative log-likelihood with a predicted variance, or by MSE (a unit-variance Gaussian, up to
constants). Per sample, the terms of all codes are summed; the batch is averaged.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.utils.registry import LOSS_REGISTRY


def sample_latent_codes(n: int, cat_dims: Sequence[int], cont_dim: int, device: torch.device | str = 'cpu',
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw InfoGAN codes: `(G input (n, sum(cat_dims) + cont_dim), categories (n, len(cat_dims)), continuous)`.

    The G input is the one-hot categories followed by the continuous values; concatenate it to the noise
    (a `DCGANGenerator` with `latent_dim = noise + sum(cat_dims) + cont_dim` takes the result).
    """
    cats = [torch.randint(int(k), (n,), generator=generator) for k in cat_dims]
    cat = torch.stack(cats, 1) if cats else torch.zeros(n, 0, dtype=torch.long)
    cont = torch.rand(n, cont_dim, generator=generator) * 2 - 1
    one_hot = [F.one_hot(c, int(k)).float() for c, k in zip(cats, cat_dims)]
    g_input = torch.cat([*one_hot, cont], 1)
    return g_input.to(device), cat.to(device), cont.to(device)


@LOSS_REGISTRY.register()
class MutualInformationLoss(nn.Module):
    """Args: cat_dims (sizes of the categorical codes), cont_dim, cont_loss ('gaussian' | 'mse'),
    cat_weight and cont_weight (the paper's lambda; 1 for both by default)."""

    def __init__(self, cat_dims: Sequence[int] = (), cont_dim: int = 0, cont_loss: str = 'gaussian',
                 cat_weight: float = 1.0, cont_weight: float = 1.0) -> None:
        super().__init__()
        if cont_loss not in ('gaussian', 'mse'):
            raise ValueError(f"MutualInformationLoss: cont_loss must be 'gaussian' or 'mse', got {cont_loss!r}.")
        if not cat_dims and not cont_dim:
            raise ValueError('MutualInformationLoss: no codes; set cat_dims and/or cont_dim.')
        self.cat_dims = [int(k) for k in cat_dims]
        self.cont_dim = int(cont_dim)
        self.cont_loss = cont_loss
        self.cat_weight, self.cont_weight = float(cat_weight), float(cont_weight)

    def forward(self, cat_codes: torch.Tensor | None = None, code_logits: torch.Tensor | None = None,
                cont_codes: torch.Tensor | None = None, code_mu: torch.Tensor | None = None,
                code_logvar: torch.Tensor | None = None) -> torch.Tensor:
        """Codes as drawn by `sample_latent_codes`; predictions as the discriminator's `heads`."""
        if self.cat_dims and (code_logits is None or cat_codes is None or code_logits.shape[1] != sum(self.cat_dims)):
            raise ValueError(f'MutualInformationLoss: needs cat_codes and code_logits with '
                             f'{sum(self.cat_dims)} columns (cat_dims {self.cat_dims}).')
        if self.cont_dim:
            if code_mu is None or cont_codes is None or code_mu.shape[1] != self.cont_dim:
                raise ValueError(f'MutualInformationLoss: needs cont_codes and code_mu with {self.cont_dim} columns.')
            if self.cont_loss == 'gaussian' and code_logvar is None:
                raise ValueError("MutualInformationLoss: cont_loss 'gaussian' needs code_logvar.")
        total = torch.zeros((), device=(code_logits if self.cat_dims else code_mu).device)
        if self.cat_dims:
            parts = code_logits.float().split(self.cat_dims, 1)
            ce = sum(F.cross_entropy(p, cat_codes[:, i].long()) for i, p in enumerate(parts))
            total = total + self.cat_weight * ce
        if self.cont_dim:
            err = (cont_codes.float() - code_mu.float()) ** 2
            if self.cont_loss == 'gaussian':
                logvar = code_logvar.float()
                nll = 0.5 * (math.log(2 * math.pi) + logvar + err * torch.exp(-logvar))
            else:
                nll = err
            total = total + self.cont_weight * nll.sum(1).mean()
        return total
