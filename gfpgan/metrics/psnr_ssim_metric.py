"""PSNR and SSIM with BasicSR's definitions (so reported numbers compare with papers), plus batched torch twins.

numpy versions: `img`, `img2` are HWC (or CHW with `input_order='CHW'`) BGR images in [0, 255]
(uint8 from `cv2.imread`, or float). `test_y_channel` evaluates the Y channel of YCbCr (ITU-R BT.601,
16-235 range), computed in float32 as BasicSR does. SSIM uses an 11x11 Gaussian window (sigma 1.5)
on float64, valid region only, averaged over channels.

torch versions (`*_pt`): `img`, `img2` are (N, 3, H, W) RGB in [0, 1]; they return one value per image
(float64) and agree with the numpy versions to ~1e-5 on 8-bit images.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from gfpgan.utils.registry import METRIC_REGISTRY

_Y_WEIGHTS_BGR = (24.966, 128.553, 65.481)  # BT.601 luma for [0, 1] input, 16-235 output


def reorder_image(img: np.ndarray, input_order: str = 'HWC') -> np.ndarray:
    """Return `img` as HWC (a 2-D image gets a channel axis)."""
    if input_order not in ('HWC', 'CHW'):
        raise ValueError(f"input_order must be 'HWC' or 'CHW', got {input_order!r}.")
    if img.ndim == 2:
        return img[..., None]
    return img.transpose(1, 2, 0) if input_order == 'CHW' else img


def to_y_channel(img: np.ndarray) -> np.ndarray:
    """BGR [0, 255] -> Y [16, 235] (HW1), float32 arithmetic as BasicSR's `bgr2ycbcr(y_only=True)`."""
    img = img.astype(np.float32) / 255.0
    if img.ndim == 3 and img.shape[2] == 3:
        y = np.dot(img, _Y_WEIGHTS_BGR) + 16.0
        img = (y / 255.0).astype(np.float32)[..., None]
    return img * 255.0


def _prepare(img: np.ndarray, img2: np.ndarray, crop_border: int, input_order: str, test_y_channel: bool):
    if img.shape != img2.shape:
        raise ValueError(f'Image shapes differ: {img.shape} vs {img2.shape}.')
    img, img2 = reorder_image(img, input_order), reorder_image(img2, input_order)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]
    if test_y_channel:
        img, img2 = to_y_channel(img), to_y_channel(img2)
    return img.astype(np.float64), img2.astype(np.float64)


@METRIC_REGISTRY.register(better='higher')
def calculate_psnr(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, input_order: str = 'HWC',
                   test_y_channel: bool = False, **kwargs) -> float:
    """Peak signal-to-noise ratio in dB for [0, 255] images (inf when they are identical)."""
    img, img2 = _prepare(img, img2, crop_border, input_order, test_y_channel)
    mse = np.mean((img - img2) ** 2)
    if mse == 0:
        return float('inf')
    return float(10.0 * np.log10(255.0 * 255.0 / mse))


def _gaussian_window() -> np.ndarray:
    kernel = cv2.getGaussianKernel(11, 1.5)
    return np.outer(kernel, kernel.transpose())


def _ssim_single(img: np.ndarray, img2: np.ndarray) -> float:
    """SSIM of two float64 HxW planes in [0, 255], over the valid (unpadded) region."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    window = _gaussian_window()

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]

    mu1, mu2 = blur(img), blur(img2)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 ** 2, mu2 ** 2, mu1 * mu2
    sigma1_sq = blur(img ** 2) - mu1_sq
    sigma2_sq = blur(img2 ** 2) - mu2_sq
    sigma12 = blur(img * img2) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return float(ssim_map.mean())


@METRIC_REGISTRY.register(better='higher')
def calculate_ssim(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, input_order: str = 'HWC',
                   test_y_channel: bool = False, **kwargs) -> float:
    """Structural similarity for [0, 255] images, mean over channels."""
    img, img2 = _prepare(img, img2, crop_border, input_order, test_y_channel)
    return float(np.mean([_ssim_single(img[..., c], img2[..., c]) for c in range(img.shape[2])]))


def _prepare_pt(img: torch.Tensor, img2: torch.Tensor, crop_border: int, test_y_channel: bool):
    if img.shape != img2.shape or img.ndim != 4:
        raise ValueError(f'Expected two (N, C, H, W) tensors of the same shape, got {tuple(img.shape)} and '
                         f'{tuple(img2.shape)}.')
    if crop_border:
        img = img[:, :, crop_border:-crop_border, crop_border:-crop_border]
        img2 = img2[:, :, crop_border:-crop_border, crop_border:-crop_border]
    img, img2 = img.to(torch.float64), img2.to(torch.float64)
    if test_y_channel:
        img, img2 = rgb_to_y_pt(img), rgb_to_y_pt(img2)
    return img, img2


def rgb_to_y_pt(img: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB [0, 1] -> (N, 1, H, W) Y in [16/255, 235/255]."""
    weight = img.new_tensor(_Y_WEIGHTS_BGR[::-1]).view(1, 3, 1, 1)
    return ((img * weight).sum(1, keepdim=True) + 16.0) / 255.0


@METRIC_REGISTRY.register(better='higher')
def calculate_psnr_pt(img: torch.Tensor, img2: torch.Tensor, crop_border: int = 0, test_y_channel: bool = False,
                      **kwargs) -> torch.Tensor:
    """Per-image PSNR (N,) in dB of RGB [0, 1] batches."""
    img, img2 = _prepare_pt(img, img2, crop_border, test_y_channel)
    mse = ((img - img2) ** 2).mean((1, 2, 3))
    return 10.0 * torch.log10(1.0 / mse)


@METRIC_REGISTRY.register(better='higher')
def calculate_ssim_pt(img: torch.Tensor, img2: torch.Tensor, crop_border: int = 0, test_y_channel: bool = False,
                      **kwargs) -> torch.Tensor:
    """Per-image SSIM (N,) of RGB [0, 1] batches, same window and constants as `calculate_ssim`."""
    img, img2 = _prepare_pt(img, img2, crop_border, test_y_channel)
    img, img2 = img * 255.0, img2 * 255.0
    channels = img.shape[1]
    kernel = torch.from_numpy(cv2.getGaussianKernel(11, 1.5)).to(img).view(1, 1, 11, 1).expand(channels, 1, 11, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:  # the 11x11 window is separable: 11x1 then 1x11
        return F.conv2d(F.conv2d(x, kernel, groups=channels), kernel.transpose(2, 3), groups=channels)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = blur(img), blur(img2)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 ** 2, mu2 ** 2, mu1 * mu2
    sigma1_sq = blur(img * img) - mu1_sq
    sigma2_sq = blur(img2 * img2) - mu2_sq
    sigma12 = blur(img * img2) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return ssim_map.mean((1, 2, 3))
