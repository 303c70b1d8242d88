"""BEGAN's equilibrium objective (Berthelot et al., 2017) for an autoencoder discriminator.

With the reconstruction error L(v) = mean |v - D(v)|^eta:
    L_D = L(x) - k_t L(G(z)),    L_G = L(G(z)),
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1),
and the convergence measure M = L(x) + |gamma L(x) - L(G(z))| (it falls as training improves, unlike the
adversarial losses). gamma = E[L(G(z))] / E[L(x)] is the diversity ratio the control loop holds. k_t is
training state: it is a persistent buffer, so `state_dict()` / `load_state_dict()` save and resume it.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from gfpgan.utils.registry import LOSS_REGISTRY


class BEGANTerms(NamedTuple):
    l_d: torch.Tensor     # L(x) - k L(G(z)), what D minimises
    l_real: torch.Tensor  # L(x)
    l_fake: torch.Tensor  # L(G(z))


@LOSS_REGISTRY.register()
class BEGANLoss(nn.Module):
    """Args: gamma (diversity ratio, 0.5 default; the paper uses 0.3..0.7), lambda_k (k's learning rate,
    0.001 as the paper), k_init (0, as the paper), eta (1: L1 as the paper, 2: squared error)."""

    def __init__(self, gamma: float = 0.5, lambda_k: float = 0.001, k_init: float = 0.0, eta: int = 1) -> None:
        super().__init__()
        if not 0 < gamma <= 1:
            raise ValueError(f'BEGANLoss: gamma must be in (0, 1], got {gamma}.')
        if eta not in (1, 2):
            raise ValueError(f'BEGANLoss: eta must be 1 or 2, got {eta}.')
        self.gamma, self.lambda_k, self.eta = float(gamma), float(lambda_k), int(eta)
        self.register_buffer('k', torch.tensor(float(k_init)))

    def recon_error(self, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        """L(v) = mean |v - D(v)|^eta over all pixels of the batch."""
        diff = (x.float() - recon.float()).abs()
        return diff.mean() if self.eta == 1 else (diff * diff).mean()

    def forward(self, real: torch.Tensor, real_recon: torch.Tensor, fake: torch.Tensor,
                fake_recon: torch.Tensor) -> BEGANTerms:
        """D's loss with the current k (fakes detached from G by the caller)."""
        l_real, l_fake = self.recon_error(real, real_recon), self.recon_error(fake, fake_recon)
        return BEGANTerms(l_real - self.k * l_fake, l_real, l_fake)

    def g_loss(self, fake: torch.Tensor, fake_recon: torch.Tensor) -> torch.Tensor:
        """G's loss L(G(z)) (D's weights frozen by the caller)."""
        return self.recon_error(fake, fake_recon)

    @torch.no_grad()
    def update(self, l_real: torch.Tensor | float, l_fake: torch.Tensor | float) -> float:
        """One step of k's control loop from this iteration's L(x), L(G(z)); returns M.

        Under DDP pass rank-averaged values, so every rank's k stays identical.
        """
        l_real, l_fake = float(l_real), float(l_fake)
        balance = self.gamma * l_real - l_fake
        self.k.copy_(torch.clamp(self.k + self.lambda_k * balance, 0.0, 1.0))
        return l_real + abs(balance)
