"""Degradations on numpy images (HWC float32 in [0, 1]): blur kernels, noise, JPEG, color changes.

The kernel definitions follow BasicSR's (the compatibility fixtures check them): a kernel is a
density evaluated on a grid centred on the middle pixel, then normalised to sum 1. Every random
function takes an `rng` (`numpy.random.Generator`); without one it derives a generator from numpy's
global RNG, so a globally seeded worker (see `gfpgan.data.sampler.SeededDataset`) stays reproducible.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

RangeLike = Sequence[float]


def as_rng(rng: np.random.Generator | None) -> np.random.Generator:
    """`rng`, or a generator drawn from numpy's global state (reproducible under `np.random.seed`)."""
    return rng if rng is not None else np.random.default_rng(np.random.randint(0, 2**31))


# ----------------------------------------------------------------------------------------------- kernels
def mesh_grid(kernel_size: int) -> np.ndarray:
    """(k, k, 2) grid of (x, y) offsets from the central pixel."""
    ax = np.arange(-kernel_size // 2 + 1.0, kernel_size // 2 + 1.0)
    xx, yy = np.meshgrid(ax, ax)
    return np.stack((xx, yy), axis=-1)


def sigma_matrix2(sig_x: float, sig_y: float, theta: float) -> np.ndarray:
    """Covariance diag(sig_x^2, sig_y^2) rotated by `theta` (radians, counter-clockwise)."""
    d = np.diag([sig_x**2, sig_y**2])
    u = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return u @ d @ u.T


def _mahalanobis(sigma_matrix: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """x^T S^-1 x at every grid point."""
    inv = np.linalg.inv(sigma_matrix)
    return np.sum((grid @ inv) * grid, axis=2)


def _covariance(sig_x: float, sig_y: float, theta: float, isotropic: bool) -> np.ndarray:
    return np.diag([sig_x**2, sig_x**2]) if isotropic else sigma_matrix2(sig_x, sig_y, theta)


def bivariate_gaussian(
    kernel_size: int, sig_x: float, sig_y: float, theta: float, grid: np.ndarray | None = None, isotropic: bool = True
) -> np.ndarray:
    """Gaussian kernel exp(-x^T S^-1 x / 2), normalised; isotropic uses `sig_x` only."""
    grid = mesh_grid(kernel_size) if grid is None else grid
    kernel = np.exp(-0.5 * _mahalanobis(_covariance(sig_x, sig_y, theta, isotropic), grid))
    return kernel / np.sum(kernel)


def bivariate_generalized_gaussian(
    kernel_size: int, sig_x: float, sig_y: float, theta: float, beta: float, grid: np.ndarray | None = None,
    isotropic: bool = True,
) -> np.ndarray:
    """exp(-(x^T S^-1 x)^beta / 2): beta < 1 gives heavier tails, beta > 1 a flatter top."""
    grid = mesh_grid(kernel_size) if grid is None else grid
    kernel = np.exp(-0.5 * np.power(_mahalanobis(_covariance(sig_x, sig_y, theta, isotropic), grid), beta))
    return kernel / np.sum(kernel)


def bivariate_plateau(
    kernel_size: int, sig_x: float, sig_y: float, theta: float, beta: float, grid: np.ndarray | None = None,
    isotropic: bool = True,
) -> np.ndarray:
    """1 / ((x^T S^-1 x)^beta + 1): a plateau-shaped kernel."""
    grid = mesh_grid(kernel_size) if grid is None else grid
    kernel = np.reciprocal(np.power(_mahalanobis(_covariance(sig_x, sig_y, theta, isotropic), grid), beta) + 1)
    return kernel / np.sum(kernel)


def _random_shape(
    rng: np.random.Generator, sigma_x_range: RangeLike, sigma_y_range: RangeLike, rotation_range: RangeLike,
    isotropic: bool,
) -> tuple[float, float, float]:
    sig_x = rng.uniform(sigma_x_range[0], sigma_x_range[1])
    if isotropic:
        return sig_x, sig_x, 0.0
    return sig_x, rng.uniform(sigma_y_range[0], sigma_y_range[1]), rng.uniform(rotation_range[0], rotation_range[1])


def _random_beta(rng: np.random.Generator, beta_range: RangeLike) -> float:
    """Half the time below 1, half the time above (BasicSR's choice for generalized/plateau kernels)."""
    if rng.uniform() < 0.5:
        return rng.uniform(beta_range[0], 1)
    return rng.uniform(1, beta_range[1])


def _multiplicative_noise(
    kernel: np.ndarray, noise_range: RangeLike | None, rng: np.random.Generator
) -> np.ndarray:
    if noise_range is not None:
        kernel = kernel * rng.uniform(noise_range[0], noise_range[1], size=kernel.shape)
    return kernel / np.sum(kernel)


KERNEL_TYPES = ('iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso')


def random_mixed_kernels(
    kernel_list: Sequence[str],
    kernel_prob: Sequence[float],
    kernel_size: int = 21,
    sigma_x_range: RangeLike = (0.6, 5),
    sigma_y_range: RangeLike = (0.6, 5),
    rotation_range: RangeLike = (-math.pi, math.pi),
    betag_range: RangeLike = (0.5, 8),
    betap_range: RangeLike = (0.5, 8),
    noise_range: RangeLike | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """A random kernel of a type drawn from `kernel_list` with probabilities `kernel_prob`."""
    if kernel_size % 2 != 1:
        raise ValueError(f'blur kernel_size must be odd, got {kernel_size}.')
    unknown = [k for k in kernel_list if k not in KERNEL_TYPES]
    if unknown or len(kernel_list) != len(kernel_prob):
        raise ValueError(f'kernel_list {list(kernel_list)} must name types from {KERNEL_TYPES}, one kernel_prob each '
                         f'(got {list(kernel_prob)}).')
    rng = as_rng(rng)
    prob = np.asarray(kernel_prob, dtype=np.float64)
    kind = kernel_list[int(rng.choice(len(kernel_list), p=prob / prob.sum()))]
    isotropic = kind.endswith('iso') and not kind.endswith('aniso')
    sig_x, sig_y, theta = _random_shape(rng, sigma_x_range, sigma_y_range, rotation_range, isotropic)
    if kind in ('iso', 'aniso'):
        kernel = bivariate_gaussian(kernel_size, sig_x, sig_y, theta, isotropic=isotropic)
    elif kind.startswith('generalized'):
        beta = _random_beta(rng, betag_range)
        kernel = bivariate_generalized_gaussian(kernel_size, sig_x, sig_y, theta, beta, isotropic=isotropic)
    else:
        beta = _random_beta(rng, betap_range)
        kernel = bivariate_plateau(kernel_size, sig_x, sig_y, theta, beta, isotropic=isotropic)
    return _multiplicative_noise(kernel, noise_range, rng)


def circular_lowpass_kernel(cutoff: float, kernel_size: int, pad_to: int = 0) -> np.ndarray:
    """2D sinc (Airy) kernel: an ideal circular low-pass filter with `cutoff` in radians per pixel.

    Ringing and overshoot artifacts come from it. `pad_to` zero-pads to a larger odd size.
    """
    if kernel_size % 2 != 1:
        raise ValueError(f'sinc kernel_size must be odd, got {kernel_size}.')
    from scipy import special

    c = (kernel_size - 1) / 2
    yy, xx = np.mgrid[0:kernel_size, 0:kernel_size]
    r = np.hypot(xx - c, yy - c)
    r[int(c), int(c)] = 1.0  # value replaced below; avoids 0/0
    kernel = cutoff * special.j1(cutoff * r) / (2 * np.pi * r)
    kernel[int(c), int(c)] = cutoff**2 / (4 * np.pi)
    kernel = kernel / np.sum(kernel)
    if pad_to > kernel_size:
        pad = (pad_to - kernel_size) // 2
        kernel = np.pad(kernel, ((pad, pad), (pad, pad)))
    return kernel


def filter2d(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate every channel with `kernel` (reflect-101 borders, as cv2.filter2D)."""
    return cv2.filter2D(img, -1, kernel.astype(np.float32) if img.dtype == np.float32 else kernel)


# ------------------------------------------------------------------------------------------------- noise
def gaussian_noise(shape: tuple[int, ...], sigma: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    """float32 N(0, sigma/255) noise of `shape` (HxWxC); `gray` shares one noise map over channels."""
    h, w, c = shape
    noise = rng.standard_normal((h, w, 1 if gray else c), dtype=np.float32)
    noise *= np.float32(sigma / 255.0)
    return np.broadcast_to(noise, shape) if gray else noise


def add_gaussian_noise(
    img: np.ndarray, sigma: float = 10, gray_noise: bool = False, clip: bool = True, rounds: bool = False,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """img + N(0, sigma/255); sigma is on the 0..255 scale."""
    out = img + gaussian_noise(img.shape, sigma, gray_noise, as_rng(rng))
    return _finish(out, clip, rounds)


def random_add_gaussian_noise(
    img: np.ndarray, sigma_range: RangeLike = (0, 1.0), gray_prob: float = 0, clip: bool = True,
    rounds: bool = False, rng: np.random.Generator | None = None,
) -> np.ndarray:
    rng = as_rng(rng)
    sigma = rng.uniform(sigma_range[0], sigma_range[1])
    gray = rng.uniform() < gray_prob
    return add_gaussian_noise(img, sigma, gray, clip, rounds, rng)


def poisson_noise(img: np.ndarray, scale: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    """Shot noise: Poisson counts at a photon level set by the number of distinct 8-bit values."""
    src = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[:, :, None] if gray else img
    q8 = np.clip((src * 255.0).round(), 0, 255).astype(np.uint8)
    q = q8 * (1.0 / 255.0)
    levels = max(int(np.count_nonzero(np.bincount(q8.ravel(), minlength=256))), 2)
    levels = 2 ** math.ceil(math.log2(levels))
    noise = (rng.poisson(q * levels) / float(levels) - q).astype(np.float32)
    noise *= np.float32(scale)
    return np.broadcast_to(noise, img.shape) if gray else noise


def add_poisson_noise(
    img: np.ndarray, scale: float = 1.0, gray_noise: bool = False, clip: bool = True, rounds: bool = False,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    return _finish(img + poisson_noise(img, scale, gray_noise, as_rng(rng)), clip, rounds)


def random_add_poisson_noise(
    img: np.ndarray, scale_range: RangeLike = (0, 1.0), gray_prob: float = 0, clip: bool = True,
    rounds: bool = False, rng: np.random.Generator | None = None,
) -> np.ndarray:
    rng = as_rng(rng)
    scale = rng.uniform(scale_range[0], scale_range[1])
    gray = rng.uniform() < gray_prob
    return add_poisson_noise(img, scale, gray, clip, rounds, rng)


def _finish(img: np.ndarray, clip: bool, rounds: bool) -> np.ndarray:
    if clip and rounds:
        return np.clip((img * 255.0).round(), 0, 255) / 255.0
    if clip:
        return np.clip(img, 0, 1, out=img)
    if rounds:
        return (img * 255.0).round() / 255.0
    return img


# -------------------------------------------------------------------------------------------------- JPEG
def add_jpg_compression(img: np.ndarray, quality: int = 90) -> np.ndarray:
    """JPEG round trip through OpenCV at integer `quality` (0..100); float32 [0, 1] in and out."""
    quality = int(round(float(quality)))
    if not 0 <= quality <= 100:
        raise ValueError(f'JPEG quality must be in [0, 100], got {quality}.')
    img8 = np.clip(img * 255.0, 0, 255).round().astype(np.uint8)
    ok, encoded = cv2.imencode('.jpg', img8, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f'OpenCV could not JPEG-encode an image of shape {img.shape}.')
    out = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    if out.ndim == 2:
        out = out[:, :, None]
    result = out.astype(np.float32)
    result /= np.float32(255.0)
    return result


def random_jpeg_quality(quality_range: RangeLike, rng: np.random.Generator | None = None) -> int:
    """An integer quality uniform in [low, high] (both inclusive); upstream passed a float to OpenCV."""
    low, high = int(round(quality_range[0])), int(round(quality_range[1]))
    return int(as_rng(rng).integers(low, high, endpoint=True))


def random_add_jpg_compression(
    img: np.ndarray, quality: RangeLike = (90, 100), rng: np.random.Generator | None = None
) -> np.ndarray:
    return add_jpg_compression(img, random_jpeg_quality(quality, rng))


# ------------------------------------------------------------------------------------------------- color
def color_jitter(img: np.ndarray, shift: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Add one random offset in [-shift, shift] (0..1 scale) per channel, then clip."""
    offset = as_rng(rng).uniform(-shift, shift, 3).astype(np.float32)
    return np.clip(img + offset, 0, 1)


def to_gray3(img: np.ndarray) -> np.ndarray:
    """BGR -> gray, repeated to three channels (shape kept, so the rest of the pipeline is unchanged)."""
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return np.repeat(gray[:, :, None], 3, axis=2)
