"""Gradient regularizers for GAN training, as plain functions (wrapped as losses in `regularizer_loss.py`).

Each penalty is computed per sample and then reduced (`reduction` 'mean' by default, 'sum', 'none').
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import autograd

from gfpgan.losses.basic_loss import check_reduction


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    check_reduction(reduction, owner='regularizer')
    if reduction == 'none':
        return per_sample
    return per_sample.sum() if reduction == 'sum' else per_sample.mean()


def _input_grad(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    if not inputs.requires_grad:
        raise ValueError('The penalty needs the gradient w.r.t. the images: call real_img.requires_grad_() '
                         'before the discriminator forward.')
    (grad,) = autograd.grad(outputs=outputs.sum(), inputs=inputs, create_graph=True)
    return grad


def r1_penalty(real_pred: torch.Tensor, real_img: torch.Tensor, reduction: str = 'mean') -> torch.Tensor:
    """R1 (Mescheder et al. 2018): squared norm of dD(x)/dx on real images, without the gamma/2 factor."""
    grad = _input_grad(real_pred, real_img)
    return _reduce(grad.pow(2).flatten(1).sum(1), reduction)


def g_path_regularize(fake_img: torch.Tensor, latents: torch.Tensor, mean_path_length: torch.Tensor | float,
                      decay: float = 0.01) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """StyleGAN2 path-length regularizer.

    `latents` is the (N, n_latent, D) W+ input of the generator that produced `fake_img`. Returns
    `(penalty, mean path length of this batch, updated running mean)`; the caller keeps the running mean.
    """
    noise = torch.randn_like(fake_img) / math.sqrt(fake_img.shape[2] * fake_img.shape[3])
    (grad,) = autograd.grad(outputs=(fake_img * noise).sum(), inputs=latents, create_graph=True)
    path_lengths = torch.sqrt(grad.pow(2).sum(2).mean(1))
    path_mean = mean_path_length + decay * (path_lengths.mean() - mean_path_length)
    penalty = (path_lengths - path_mean).pow(2).mean()
    return penalty, path_lengths.detach().mean(), torch.as_tensor(path_mean).detach()


def _norm_penalty(discriminator: Callable[[torch.Tensor], torch.Tensor], points: torch.Tensor,
                  weight: torch.Tensor | None, reduction: str) -> torch.Tensor:
    """((|dD/dx| - 1)^2) per sample, the gradient norm taken over all of a sample's elements."""
    points = points.detach().requires_grad_(True)
    grad = _input_grad(discriminator(points), points)
    if weight is not None:
        grad = grad * weight
    per_sample = (grad.flatten(1).norm(2, dim=1) - 1) ** 2
    out = _reduce(per_sample, reduction)
    if weight is not None and reduction == 'mean':
        out = out / weight.mean()
    return out


def gradient_penalty_loss(discriminator: Callable[[torch.Tensor], torch.Tensor], real_data: torch.Tensor,
                          fake_data: torch.Tensor, weight: torch.Tensor | None = None,
                          reduction: str = 'mean') -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017) at random interpolates of real and fake.

    Unlike BasicSR (which takes the norm over channels, per pixel) the norm is over each whole sample,
    as in the paper. `weight` (e.g. a mask) scales the gradient; with 'mean' the result is divided by
    its mean.
    """
    alpha = torch.rand(real_data.size(0), *([1] * (real_data.dim() - 1)), device=real_data.device)
    interpolates = alpha * real_data.detach() + (1 - alpha) * fake_data.detach()
    return _norm_penalty(discriminator, interpolates, weight, reduction)


def dragan_penalty(discriminator: Callable[[torch.Tensor], torch.Tensor], real_data: torch.Tensor,
                   perturb_scale: float = 0.5, reduction: str = 'mean') -> torch.Tensor:
    """DRAGAN (Kodali et al. 2017): gradient-norm penalty around noisy copies of the real samples."""
    real = real_data.detach()
    perturbed = real + perturb_scale * real.std() * torch.rand_like(real)
    alpha = torch.rand(real.size(0), *([1] * (real.dim() - 1)), device=real.device)
    return _norm_penalty(discriminator, alpha * real + (1 - alpha) * perturbed, None, reduction)
