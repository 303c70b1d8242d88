"""NIQE (Mittal et al., "Making a Completely Blind Image Quality Analyzer"), with BasicSR's numbers.

No reference image: the score is the distance between a multivariate Gaussian fitted to the image's
natural-scene statistics (per 96x96 block, at full and half resolution) and the one of pristine
images in `niqe_pris_params.npz` (BasicSR's file, shipped with this package). Lower is better.

Precision is part of the definition here: BasicSR keeps the image, its Y channel, the Gaussian-window
convolutions and the per-block statistics in float32 (numpy 2 promotion rules); the same formulas in
float64 move scores by up to 4e-3. The steps below keep those dtypes, and the half-resolution image
comes from MATLAB's bicubic `imresize` with antialiasing (float32), as in BasicSR.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.ndimage import convolve
from scipy.special import gamma

from gfpgan.metrics.psnr_ssim_metric import reorder_image, to_y_channel
from gfpgan.utils.registry import METRIC_REGISTRY

PARAMS_FILE = Path(__file__).with_name('niqe_pris_params.npz')
BLOCK = 96  # block size of the pristine model
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # neighbour products: horizontal, vertical, two diagonals


@lru_cache(maxsize=1)
def pristine_params() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu, cov, 7x7 gaussian window) of the pristine model."""
    if not PARAMS_FILE.is_file():
        raise FileNotFoundError(f'NIQE model parameters not found: {PARAMS_FILE}. They ship with the package; '
                                'reinstall gfpgan (pip install -e .) so the package data is present.')
    with np.load(PARAMS_FILE) as data:
        return data['mu_pris_param'], data['cov_pris_param'], data['gaussian_window']


@lru_cache(maxsize=1)
def _aggd_grid() -> tuple[np.ndarray, np.ndarray]:
    """Shape parameters 0.2..10 (step 0.001) and the generalized-Gaussian ratio r(alpha) at each."""
    alphas = np.arange(0.2, 10.001, 0.001)
    inv = np.reciprocal(alphas)
    return alphas, np.square(gamma(inv * 2)) / (gamma(inv) * gamma(inv * 3))


def aggd_params(values: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalized Gaussian fit (shape alpha, left and right scale) by moment matching on the grid."""
    values = values.ravel()
    alphas, ratios = _aggd_grid()
    left_std = np.sqrt(np.mean(values[values < 0] ** 2))
    right_std = np.sqrt(np.mean(values[values > 0] ** 2))
    gamma_hat = left_std / right_std
    r_hat = np.mean(np.abs(values)) ** 2 / np.mean(values ** 2)
    r_hat_norm = r_hat * (gamma_hat ** 3 + 1) * (gamma_hat + 1) / (gamma_hat ** 2 + 1) ** 2
    alpha = alphas[np.argmin((ratios - r_hat_norm) ** 2)]
    spread = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left_std * spread, right_std * spread


def block_features(block: np.ndarray) -> list[float]:
    """18 features of one normalized block: its own AGGD (2) and that of 4 neighbour products (4 each)."""
    alpha, beta_l, beta_r = aggd_params(block)
    feats = [alpha, (beta_l + beta_r) / 2]
    for shift in _SHIFTS:
        alpha, beta_l, beta_r = aggd_params(block * np.roll(block, shift, axis=(0, 1)))
        mean = (beta_r - beta_l) * (gamma(2 / alpha) / gamma(1 / alpha))
        feats += [alpha, mean, beta_l, beta_r]
    return feats


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's bicubic kernel (a = -0.5)."""
    ax = torch.abs(x)
    ax2, ax3 = ax ** 2, ax ** 3
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1).type_as(ax)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) * (ax <= 2)).type_as(ax)
    return near + far


def _resize_weights(in_len: int, out_len: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(out_len, taps) weights and input indices (into the input mirrored at both ends) of MATLAB imresize."""
    width = 4.0 / scale if scale < 1 else 4.0  # antialiasing widens the kernel when shrinking
    u = torch.linspace(1, out_len, out_len) / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left.view(out_len, 1) + torch.linspace(0, taps - 1, taps).view(1, taps)
    dist = u.view(out_len, 1) - idx
    weights = scale * _cubic(dist * scale) if scale < 1 else _cubic(dist)
    weights = weights / weights.sum(1, keepdim=True)
    zeros = (weights == 0).sum(0)
    if zeros[0] != 0:  # drop an all-zero first / last column
        idx, weights = idx[:, 1:], weights[:, 1:]
    if zeros[-1] != 0:
        idx, weights = idx[:, :-1], weights[:, :-1]
    return weights.contiguous(), idx.long() - 1  # 0-based


def _resize_rows(x: np.ndarray, out_len: int, scale: float, fused: bool) -> np.ndarray:
    """Resize axis 0 of a float32 (L, M) array: mirror-pad, then a float32 sum over the taps, in tap order.

    `fused`: each step is one rounding of `acc + w * x` (a fused multiply-add, exact through float64: a
    float32 product is exact there), else the product and the sum are rounded separately.
    """
    weights, idx = _resize_weights(x.shape[0], out_len, scale)
    weights, idx = weights.numpy(), idx.numpy()
    pad_s, pad_e = int(-idx.min()), int(idx.max()) - x.shape[0] + 1
    padded = np.concatenate([x[:pad_s][::-1], x, x[x.shape[0] - max(pad_e, 0):][::-1]], 0)
    idx = idx + pad_s
    acc = padded[idx[:, 0]] * weights[:, :1]
    for k in range(1, weights.shape[1]):
        if fused:
            acc = (padded[idx[:, k]].astype(np.float64) * weights[:, k:k + 1] + acc).astype(np.float32)
        else:
            acc = acc + padded[idx[:, k]] * weights[:, k:k + 1]
    return acc


def imresize_matlab(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB `imresize(img, scale)` (bicubic, antialiased) of a 2-D float image, in float32.

    The weights are BasicSR's (float32). Its loop of torch matrix-vector products leaves the last bits
    of each sum to the BLAS build and CPU, and NIQE's grid search turns such one-ulp changes into score
    changes of up to ~1e-3; here the sums run in one fixed order (vertical pass: separate roundings,
    horizontal pass: fused multiply-adds), which gives the same result everywhere and stays within
    1e-4 of BasicSR's scores on the parity images (tests/test_niqe.py).
    """
    x = np.ascontiguousarray(img, dtype=np.float32)
    out_h, out_w = math.ceil(x.shape[0] * scale), math.ceil(x.shape[1] * scale)
    x = _resize_rows(x, out_h, scale, fused=False)
    return np.ascontiguousarray(_resize_rows(x.T, out_w, scale, fused=True).T)


def niqe(img: np.ndarray, block: int = BLOCK) -> float:
    """NIQE of a 2-D float32 image in [0, 255] (cropped to whole blocks)."""
    mu_pris, cov_pris, window = pristine_params()
    rows, cols = img.shape[0] // block, img.shape[1] // block
    if rows * cols < 2:  # one block gives no covariance
        raise ValueError(f'NIQE needs at least two {block}x{block} blocks (e.g. {2 * block}x{block} pixels after '
                         f'crop_border), got {img.shape[1]}x{img.shape[0]}.')
    img = img[:rows * block, :cols * block]
    per_scale = []
    for scale in (1, 2):
        mu = convolve(img, window, mode='nearest')
        sigma = np.sqrt(np.abs(convolve(np.square(img), window, mode='nearest') - np.square(mu)))
        normalized = (img - mu) / (sigma + 1)
        size = block // scale
        per_scale.append(np.array([block_features(normalized[r * size:(r + 1) * size, c * size:(c + 1) * size])
                                   for c in range(cols) for r in range(rows)]))
        if scale == 1:
            img = imresize_matlab(img / 255.0, 0.5) * 255.0
    feats = np.concatenate(per_scale, axis=1)
    mu = np.nanmean(feats, axis=0)
    cov = np.cov(feats[~np.isnan(feats).any(axis=1)], rowvar=False)
    diff = mu_pris - mu
    return float(np.sqrt(np.squeeze(diff @ np.linalg.pinv((cov_pris + cov) / 2) @ diff.T)))


@METRIC_REGISTRY.register(better='lower', no_reference=True)
def calculate_niqe(img: np.ndarray, crop_border: int = 0, input_order: str = 'HWC', convert_to: str = 'y',
                   **kwargs) -> float:
    """NIQE of one BGR [0, 255] image (uint8 as `cv2.imread` gives it), on its Y channel (or 'gray').

    `input_order` 'HW' takes a 2-D image as it is. Other keywords (e.g. a reference `img2` that the
    validation loop passes to every metric) are ignored: NIQE looks at `img` alone.
    """
    img = np.asarray(img).astype(np.float32)
    if input_order != 'HW':
        img = reorder_image(img, input_order)
        if convert_to == 'y':
            img = to_y_channel(img)
        elif convert_to == 'gray':
            img = cv2.cvtColor(img / np.float32(255.0), cv2.COLOR_BGR2GRAY) * np.float32(255.0)
        else:
            raise ValueError(f"NIQE convert_to must be 'y' or 'gray', got {convert_to!r}.")
        img = np.squeeze(img)
    if img.ndim != 2:
        raise ValueError(f'NIQE needs a gray or Y image; got shape {img.shape} (input_order {input_order!r}).')
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    return niqe(img.round())  # rounding to integers as MATLAB's reference does
