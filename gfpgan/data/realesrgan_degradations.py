"""Real-ESRGAN's per-sample degradation kernels (numpy) and unsharp masking of the ground truth.

The kernel shapes themselves (Gaussian, generalized Gaussian, plateau, the sinc / circular low-pass
kernel and their random mixture) live in `gfpgan.data.degradations`; this module draws them the way
Real-ESRGAN's recipe does: a random odd size per kernel, a sinc kernel instead of a blur with some
probability, zero-padded to one fixed size so a batch stacks, and a final sinc filter or an identity
("pulse") kernel.
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from gfpgan.data import degradations as deg


def kernel_sizes(max_size: int = 21) -> list[int]:
    """The odd sizes Real-ESRGAN draws from: 7, 9, ..., `max_size` (21 in its recipes)."""
    if max_size < 7 or max_size % 2 != 1:
        raise ValueError(f'blur_kernel_size must be an odd number >= 7, got {max_size}.')
    return list(range(7, max_size + 1, 2))


def pad_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad a centred odd kernel to `size` x `size` (the same filter, a common shape)."""
    pad = (size - kernel.shape[0]) // 2
    return np.pad(kernel, ((pad, pad), (pad, pad))) if pad > 0 else kernel


def pulse_kernel(size: int = 21) -> np.ndarray:
    """The identity filter: 1 in the centre."""
    kernel = np.zeros((size, size), dtype=np.float64)
    kernel[size // 2, size // 2] = 1.0
    return kernel


def random_blur_kernel(
    kernel_list: Sequence[str], kernel_prob: Sequence[float], blur_sigma: Sequence[float],
    betag_range: Sequence[float], betap_range: Sequence[float], sinc_prob: float, max_size: int = 21,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """One blur kernel of the recipe, `max_size` x `max_size`.

    The size is uniform over `kernel_sizes(max_size)`. With probability `sinc_prob` it is a sinc kernel
    with cutoff uniform in [pi/3, pi] (sizes below 13) or [pi/5, pi] (larger: the low cutoffs would
    not fit a small window); otherwise a random mixed kernel (`degradations.random_mixed_kernels`)
    with sigma_x and sigma_y uniform in `blur_sigma` and rotation uniform in [-pi, pi].
    """
    rng = deg.as_rng(rng)
    size = int(rng.choice(kernel_sizes(max_size)))
    if rng.uniform() < sinc_prob:
        low = math.pi / 3 if size < 13 else math.pi / 5
        kernel = deg.circular_lowpass_kernel(rng.uniform(low, math.pi), size)
    else:
        kernel = deg.random_mixed_kernels(kernel_list, kernel_prob, size, blur_sigma, blur_sigma,
                                          (-math.pi, math.pi), betag_range, betap_range, noise_range=None, rng=rng)
    return pad_kernel(kernel, max_size)


def random_final_sinc_kernel(final_sinc_prob: float, max_size: int = 21,
                             rng: np.random.Generator | None = None) -> np.ndarray:
    """The last filter of the recipe: with probability `final_sinc_prob` a sinc kernel of random size and
    cutoff uniform in [pi/3, pi], else the identity; `max_size` x `max_size`."""
    rng = deg.as_rng(rng)
    if rng.uniform() < final_sinc_prob:
        size = int(rng.choice(kernel_sizes(max_size)))
        return deg.circular_lowpass_kernel(rng.uniform(math.pi / 3, math.pi), size, pad_to=max_size)
    return pulse_kernel(max_size)


def usm_radius(radius: int) -> int:
    """Gaussian window of the unsharp mask: an even radius is rounded up to odd, as Real-ESRGAN does."""
    return radius + 1 if radius % 2 == 0 else radius


def usm_sharp(img: np.ndarray, weight: float = 0.5, radius: int = 50, threshold: float = 10) -> np.ndarray:
    """Unsharp masking (HWC float in [0, 1]): img + weight * (img - blur), applied only where the detail
    exceeds `threshold` (0..255 scale), with a blurred mask so the sharpened region fades in softly.

    The blur is a Gaussian of `usm_radius(radius)` taps with OpenCV's default sigma for that size.
    """
    k = usm_radius(radius)
    blur = cv2.GaussianBlur(img, (k, k), 0)
    residual = img - blur
    mask = (np.abs(residual) * 255 > threshold).astype(np.float32)
    soft_mask = cv2.GaussianBlur(mask, (k, k), 0)
    sharp = np.clip(img + weight * residual, 0, 1)
    return soft_mask * sharp + (1 - soft_mask) * img
