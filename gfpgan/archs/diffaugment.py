"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for data-efficient GAN training.

The same random, differentiable transforms are applied to real *and* fake images before the
discriminator sees them, so D cannot memorise a small training set while G still receives gradients
through the augmentation. Transforms (all for images in [-1, 1]):

- `color`: brightness (+U(-0.5, 0.5)), saturation (x U(0, 2) around the pixel's channel mean),
  contrast (x U(0.5, 1.5) around the image mean);
- `translation`: integer shift of up to 1/8 of the side, zero fill;
- `offset`: the same shift with wrap-around (a roll), so no content is lost;
- `cutout`: a zeroed square of half the side at a random place.

Each transform is applied to each sample independently with probability `prob`; `prob` may be
changed between steps (`AdaptiveAugmentProbability` does it from D's outputs, as ADA).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from gfpgan.utils.dist import all_reduce_sum
from gfpgan.utils.registry import ARCH_REGISTRY


def _uniform(x: torch.Tensor, low: float, high: float, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.rand(shape, device=x.device, dtype=x.dtype) * (high - low) + low


def rand_brightness(x: torch.Tensor) -> torch.Tensor:
    return x + _uniform(x, -0.5, 0.5, (x.shape[0], 1, 1, 1))


def rand_saturation(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * _uniform(x, 0.0, 2.0, (x.shape[0], 1, 1, 1)) + mean


def rand_contrast(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(x, 0.5, 1.5, (x.shape[0], 1, 1, 1)) + mean


def rand_color(x: torch.Tensor) -> torch.Tensor:
    return rand_contrast(rand_saturation(rand_brightness(x)))


def shift_images(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, wrap: bool) -> torch.Tensor:
    """Shift each image n by (dy[n], dx[n]) pixels; zero fill, or wrap around when `wrap`."""
    n, _, h, w = x.shape
    ys = torch.arange(h, device=x.device)[None] - dy[:, None]  # source row of every output row
    xs = torch.arange(w, device=x.device)[None] - dx[:, None]
    if wrap:
        ys, xs = ys % h, xs % w
    else:
        valid = ((ys >= 0) & (ys < h))[:, :, None] & ((xs >= 0) & (xs < w))[:, None, :]
        ys, xs = ys.clamp(0, h - 1), xs.clamp(0, w - 1)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = x[batch, :, ys[:, :, None], xs[:, None, :]].permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    return out if wrap else out * valid[:, None].to(x.dtype)


def _random_shifts(x: torch.Tensor, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = x.shape[-2:]
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (x.shape[0],), device=x.device)
    dx = torch.randint(-sx, sx + 1, (x.shape[0],), device=x.device)
    return dy, dx


def rand_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    return shift_images(x, *_random_shifts(x, ratio), wrap=False)


def rand_offset(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    return shift_images(x, *_random_shifts(x, ratio), wrap=True)


def rand_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h, (n, 1), device=x.device)
    cx = torch.randint(0, w, (n, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None] - cy + ch // 2  # in [0, ch) inside the square
    cols = torch.arange(w, device=x.device)[None] - cx + cw // 2
    inside = ((rows >= 0) & (rows < ch))[:, :, None] & ((cols >= 0) & (cols < cw))[:, None, :]
    return x * (~inside)[:, None].to(x.dtype)


AUGMENTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    'color': rand_color,
    'brightness': rand_brightness,
    'saturation': rand_saturation,
    'contrast': rand_contrast,
    'translation': rand_translation,
    'offset': rand_offset,
    'cutout': rand_cutout,
}


@ARCH_REGISTRY.register()
class DiffAugment(nn.Module):
    """Apply the comma-separated `policy` transforms, each per sample with probability `prob`."""

    def __init__(self, policy: str = 'color,translation,cutout', prob: float = 1.0) -> None:
        super().__init__()
        self.policy = [p.strip() for p in policy.split(',') if p.strip()]
        unknown = [p for p in self.policy if p not in AUGMENTS]
        if unknown:
            raise ValueError(f'DiffAugment: unknown policy {unknown}; choose from {", ".join(AUGMENTS)}.')
        self.prob = float(prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.prob <= 0 or not self.policy:
            return x
        for name in self.policy:
            augmented = AUGMENTS[name](x)
            if self.prob >= 1:
                x = augmented
            else:
                apply = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self.prob
                x = torch.where(apply, augmented, x)
        return x

    def extra_repr(self) -> str:
        return f"policy='{','.join(self.policy)}', prob={self.prob:.3f}"


def aug_prob_for_dataset_size(num_images: int) -> float:
    """A starting augmentation probability: the fewer images, the stronger the augmentation.

    Heuristic from the DiffAugment / lightweight-gan experience: ~0.5 for a few hundred images, fading
    to 0 at ~100k images (where augmentation starts to hurt more than it helps).
    """
    if num_images <= 0:
        raise ValueError(f'num_images must be positive, got {num_images}.')
    return float(min(0.5, max(0.0, 0.5 * (5.0 - math.log10(num_images)) / 2.5)))


class AdaptiveAugmentProbability:
    """ADA-style controller (Karras et al. 2020): raise `prob` while D overfits, lower it otherwise.

    The overfitting signal is r_t = E[sign(D(real))] over `interval` steps (all ranks together); `prob`
    moves by `batch * interval / speed_imgs` towards more augmentation when r_t > `target`, so it can go
    from 0 to 1 within `speed_imgs` real images.
    """

    def __init__(self, target: float = 0.6, speed_imgs: int = 100_000, interval: int = 4, init_prob: float = 0.0,
                 max_prob: float = 0.8) -> None:
        self.target, self.speed_imgs, self.interval, self.max_prob = target, speed_imgs, interval, max_prob
        self.prob = float(init_prob)
        self._sum = torch.zeros(2, dtype=torch.float64)  # sum of sign(D(real)), count
        self._steps = 0

    def update(self, real_logits: torch.Tensor) -> float:
        """Record one step's D outputs on reals; every `interval` steps adjust and return `prob`."""
        signs = real_logits.detach().float().flatten(1).mean(dim=1).sign()
        self._sum += torch.tensor([signs.sum().item(), signs.numel()], dtype=torch.float64)
        self._steps += 1
        if self._steps % self.interval == 0:
            total = all_reduce_sum(self._sum.clone())
            if total[1] > 0:
                r_t = float(total[0] / total[1])
                step = float(total[1]) / self.speed_imgs
                self.prob = min(self.max_prob, max(0.0, self.prob + math.copysign(step, r_t - self.target)))
            self._sum.zero_()
        return self.prob

    def state_dict(self) -> dict:
        return {'prob': self.prob, 'steps': self._steps}

    def load_state_dict(self, state: dict) -> None:
        self.prob, self._steps = float(state['prob']), int(state['steps'])
