"""Batched PyTorch degradations (NCHW, RGB, float in [0, 1]) that run on whichever device the batch is on.

Moving the FFHQ degradation from dataloader workers to the GPU frees the CPU (workers only decode and
flip): `GPUFFHQDegrader` applies the recipe of `FFHQDegradationDataset` to a batch of gt.

JPEG: there is no exact JPEG on tensors here. `jpeg_mode='opencv'` (default) round-trips each
(downsampled, so small) sample through OpenCV on the CPU: the real codec, not differentiable, one
device transfer per sample. `jpeg_mode='skip'` leaves JPEG out (all on device; fastest).
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from gfpgan.data import degradations as npdeg

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601, as OpenCV's RGB2GRAY


def filter2d(img: torch.Tensor, kernels: torch.Tensor, method: str = 'auto') -> torch.Tensor:
    """Correlate each sample of (B, C, H, W) with its own kernel from (B, k, k) (or one (k, k) for all).

    Reflect-101 borders as cv2.filter2D. `direct`: one grouped convolution for the batch; `fft`: products of
    spectra, much cheaper for the large kernels of the FFHQ recipe (41 px: 1681 multiply-adds per pixel
    directly); `auto` picks FFT from 15 px up.
    """
    b, c, h, w = img.shape
    if kernels.dim() == 2:
        kernels = kernels.expand(b, -1, -1)
    k = kernels.shape[-1]
    if k % 2 != 1:
        raise ValueError(f'filter2d needs odd kernel sizes, got {k}.')
    pad = k // 2
    mode = 'reflect' if pad < h and pad < w else 'replicate'
    x = F.pad(img, (pad, pad, pad, pad), mode=mode)
    kernels = kernels.to(img)
    if method == 'fft' or (method == 'auto' and k >= 15):
        size = (_fft_size(x.shape[-2]), _fft_size(x.shape[-1]))
        spectrum = torch.fft.rfft2(x, s=size) * torch.fft.rfft2(kernels.flip(-2, -1), s=size).unsqueeze(1)
        return torch.fft.irfft2(spectrum, s=size)[..., k - 1 : k - 1 + h, k - 1 : k - 1 + w]
    weight = kernels.unsqueeze(1).repeat_interleave(c, dim=0)  # (B*C, 1, k, k)
    return F.conv2d(x.reshape(1, b * c, h + 2 * pad, w + 2 * pad), weight, groups=b * c).view(b, c, h, w)


def _fft_size(n: int) -> int:
    """Smallest m >= n with no prime factor above 5: FFTs of such sizes are several times faster."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def rgb_to_gray(img: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) -> (..., 1, H, W), as one matrix product (no per-channel temporaries)."""
    weights = torch.tensor(GRAY_WEIGHTS, dtype=img.dtype, device=img.device)
    return torch.matmul(weights, img.flatten(-2)).view(*img.shape[:-3], 1, *img.shape[-2:])


def _batch_param(value: torch.Tensor | float, img: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A scalar or per-sample (B,) noise parameter as a (B, 1, 1, 1) tensor on `img`'s device."""
    return torch.as_tensor(value, dtype=dtype, device=img.device).reshape(-1, 1, 1, 1).expand(img.shape[0], 1, 1, 1)


def add_gaussian_noise(
    img: torch.Tensor, sigma: torch.Tensor | float, gray: torch.Tensor | bool = False, clip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """img + N(0, sigma/255), sigma per sample (B,) on the 0..255 scale; `gray` (B,) shares noise over channels."""
    sigma = _batch_param(sigma, img, img.dtype)
    noise = torch.randn(img.shape, generator=generator, device=img.device, dtype=img.dtype)
    gray = _batch_param(gray, img)
    noise = torch.where(gray, noise[:, :1].expand_as(noise), noise)  # no .any(): it would sync the GPU
    out = img + noise * (sigma / 255.0)
    return out.clamp_(0, 1) if clip else out


def add_poisson_noise(
    img: torch.Tensor, scale: torch.Tensor | float, gray: torch.Tensor | bool = False, clip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Shot noise per sample; the photon level is set, as on the numpy path, by the distinct 8-bit values."""
    b = img.shape[0]
    scale = _batch_param(scale, img, img.dtype)
    gray = _batch_param(gray, img)
    src = torch.where(gray, rgb_to_gray(img).expand_as(img), img)
    q8 = (src * 255.0).round().clamp_(0, 255)
    bins = q8.flatten(1).long() + 256 * torch.arange(b, device=img.device).unsqueeze(1)  # one histogram per sample
    counts = torch.bincount(bins.flatten(), minlength=256 * b).view(b, 256).count_nonzero(dim=1)
    levels = torch.exp2(torch.ceil(torch.log2(counts.clamp(min=2).to(img.dtype)))).reshape(b, 1, 1, 1)
    q = q8 / 255.0
    noise = torch.poisson(q * levels, generator=generator) / levels - q
    out = img + noise * scale
    return out.clamp_(0, 1) if clip else out


def jpeg_opencv(img: torch.Tensor, quality: Sequence[int]) -> torch.Tensor:
    """Real JPEG round trip per sample on the CPU (OpenCV), at integer qualities; not differentiable."""
    out = []
    for x, q in zip(img, quality):
        rgb8 = (x.detach().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        ok, enc = cv2.imencode('.jpg', rgb8[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(q)])
        if not ok:
            raise RuntimeError(f'OpenCV could not JPEG-encode a sample of shape {tuple(x.shape)}.')
        dec = cv2.imdecode(enc, cv2.IMREAD_COLOR)[:, :, ::-1]
        out.append(torch.from_numpy(np.ascontiguousarray(dec)).permute(2, 0, 1))
    return torch.stack(out).to(img.device, non_blocking=True).to(img.dtype) / 255.0


def _blend(img: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """factor * img + (1 - factor) * other, clamped to [0, 1] (one fused lerp, then in place)."""
    return torch.lerp(other.expand_as(img), img, factor.expand_as(img) if factor.dim() else factor).clamp_(0, 1)


def adjust_brightness(img: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    return (img * _per_sample(factor, img)).clamp_(0, 1)


def adjust_contrast(img: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    mean = rgb_to_gray(img).mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(img, mean, _per_sample(factor, img))


def adjust_saturation(img: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    return _blend(img, rgb_to_gray(img), _per_sample(factor, img))


def adjust_hue(img: torch.Tensor, shift: torch.Tensor | float) -> torch.Tensor:
    """Rotate hue by `shift` (fraction of a turn, in [-0.5, 0.5]) through HSV.

    A single CPU image goes through OpenCV's HSV conversion (same formulas, ~20x faster than tensor ops).
    """
    if img.dim() == 3 and img.device.type == 'cpu' and img.dtype == torch.float32 and not img.requires_grad:
        hsv = cv2.cvtColor(np.ascontiguousarray(img.permute(1, 2, 0).numpy()), cv2.COLOR_RGB2HSV)
        hsv[:, :, 0] = np.mod(hsv[:, :, 0] + float(shift) * 360.0, 360.0)
        return torch.from_numpy(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).transpose(2, 0, 1).copy())
    h, s, v = rgb_to_hsv(img).unbind(-3)
    shift = _per_sample(shift, img)
    h = (h + (shift[:, 0] if shift.dim() == 4 else shift)) % 1.0
    return hsv_to_rgb(torch.stack((h, s, v), dim=-3))


def _per_sample(value: torch.Tensor | float, img: torch.Tensor) -> torch.Tensor:
    """A scalar or (B,) value shaped to broadcast over (B, C, H, W) (or (C, H, W))."""
    t = torch.as_tensor(value, dtype=img.dtype, device=img.device)
    return t.reshape(-1, 1, 1, 1) if img.dim() == 4 and t.dim() == 1 else t


def rgb_to_hsv(img: torch.Tensor) -> torch.Tensor:
    r, g, b = img.unbind(-3)
    maxc, minc = img.amax(dim=-3), img.amin(dim=-3)
    same = maxc == minc
    chroma = maxc - minc
    s = chroma / torch.where(same, torch.ones_like(maxc), maxc)
    div = torch.where(same, torch.ones_like(chroma), chroma)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(same, torch.zeros_like(h), h)
    h = (h / 6.0) % 1.0
    return torch.stack((h, s, maxc), dim=-3)


def hsv_to_rgb(img: torch.Tensor) -> torch.Tensor:
    """Closed form: channel n in (R, G, B) = v - v s clamp(min(k, 4 - k), 0, 1), k = (n' + 6h) mod 6."""
    h, s, v = img.split(1, dim=-3)
    offsets = torch.tensor([5.0, 3.0, 1.0], dtype=img.dtype, device=img.device).view(3, 1, 1)
    k = torch.remainder(h * 6.0 + offsets, 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0, 1)
    return v - v * s * ramp


def color_jitter_pt(
    img: torch.Tensor, brightness: Sequence[float] | None, contrast: Sequence[float] | None,
    saturation: Sequence[float] | None, hue: Sequence[float] | None, rng: np.random.Generator | None = None,
) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter in random order (as torchvision's ColorJitter).

    `img` is (3, H, W) or (B, 3, H, W); a batch gets per-sample factors and one order.
    """
    rng = npdeg.as_rng(rng)
    n = img.shape[0] if img.dim() == 4 else None
    adjust = {0: (adjust_brightness, brightness), 1: (adjust_contrast, contrast), 2: (adjust_saturation, saturation),
              3: (adjust_hue, hue)}
    for fn_id in rng.permutation(4):
        fn, bounds = adjust[int(fn_id)]
        if bounds is None:
            continue
        factor = rng.uniform(bounds[0], bounds[1], size=n)
        img = fn(img, torch.as_tensor(factor, dtype=img.dtype, device=img.device))
    return img.clamp(0, 1)


def normalize(img: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None) -> torch.Tensor:
    """(img - mean) / std per channel, in place; no-op without mean and std."""
    if mean is None and std is None:
        return img
    c = img.shape[-3]
    mean_t = torch.as_tensor(mean if mean is not None else [0.0] * c, dtype=img.dtype, device=img.device)
    std_t = torch.as_tensor(std if std is not None else [1.0] * c, dtype=img.dtype, device=img.device)
    return img.sub_(mean_t.view(-1, 1, 1)).div_(std_t.view(-1, 1, 1))


class GPUFFHQDegrader:
    """The `FFHQDegradationDataset` recipe applied to a batch of gt on its device.

    Options are the dataset's (`blur_kernel_size`, `kernel_list`, `kernel_prob`, `blur_sigma`,
    `downsample_range`, `noise_range`, `jpeg_range`, `color_jitter_prob`, `color_jitter_shift`,
    `color_jitter_pt_prob`, `brightness`, `contrast`, `saturation`, `hue`, `gray_prob`, `gt_gray`, `mean`,
    `std`) plus `jpeg_mode` (`opencv` or `skip`, see the module docstring). The random parameters are
    drawn on the CPU from a numpy generator (cheap: a few numbers and one kernel per sample); pixel
    noise comes from a torch generator on the device; both are seeded by `seed` when given.
    Call with gt (B, 3, H, W) RGB in [0, 1]; returns `{'lq', 'gt'}` (normalised with mean/std if set).
    """

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.kernel_size = int(opt.get('blur_kernel_size', 41))
        self.kernel_list = list(opt.get('kernel_list', ['iso', 'aniso']))
        self.kernel_prob = list(opt.get('kernel_prob', [0.5, 0.5]))
        self.blur_sigma = opt.get('blur_sigma', [0.1, 10])
        self.downsample_range = opt.get('downsample_range', [0.8, 8])
        self.noise_range = opt.get('noise_range', [0, 20])
        self.jpeg_range = opt.get('jpeg_range', [60, 100])
        self.jpeg_mode = opt.get('jpeg_mode', 'opencv')
        if self.jpeg_mode not in ('opencv', 'skip'):
            raise ValueError(f"jpeg_mode must be 'opencv' or 'skip', got {self.jpeg_mode!r}.")
        self.color_jitter_prob = opt.get('color_jitter_prob')
        self.color_jitter_shift = opt.get('color_jitter_shift', 20) / 255.0
        self.color_jitter_pt_prob = opt.get('color_jitter_pt_prob')
        self.gray_prob = opt.get('gray_prob')
        self.gt_gray = opt.get('gt_gray', False)
        self.mean, self.std = opt.get('mean'), opt.get('std')

    @torch.no_grad()
    def __call__(self, gt: torch.Tensor, seed: int | None = None) -> dict[str, torch.Tensor]:
        if gt.dim() != 4 or gt.shape[1] != 3:
            raise ValueError(f'GPUFFHQDegrader expects a (B, 3, H, W) RGB batch, got {tuple(gt.shape)}.')
        rng = np.random.default_rng(seed) if seed is not None else npdeg.as_rng(None)
        gen = None
        if seed is not None:
            gen = torch.Generator(device=gt.device)
            gen.manual_seed(int(rng.integers(2**62)))
        b, _, h, w = gt.shape
        kernels = np.stack([
            npdeg.random_mixed_kernels(self.kernel_list, self.kernel_prob, self.kernel_size, self.blur_sigma,
                                       self.blur_sigma, (-math.pi, math.pi), noise_range=None, rng=rng)
            for _ in range(b)
        ])
        gt = gt.float()
        blurred = filter2d(gt, torch.from_numpy(kernels).to(gt.device, torch.float32, non_blocking=True))
        scales = rng.uniform(self.downsample_range[0], self.downsample_range[1], size=b)
        sigmas = rng.uniform(self.noise_range[0], self.noise_range[1], size=b) if self.noise_range is not None else None
        qualities = [npdeg.random_jpeg_quality(self.jpeg_range, rng) for _ in range(b)]
        lq = torch.empty_like(gt)
        for i in range(b):  # each sample has its own intermediate size
            size = (max(1, int(h // scales[i])), max(1, int(w // scales[i])))
            x = F.interpolate(blurred[i : i + 1], size=size, mode='bilinear', align_corners=False)
            if sigmas is not None:
                x = add_gaussian_noise(x, float(sigmas[i]), generator=gen)
            if self.jpeg_range is not None and self.jpeg_mode == 'opencv':
                x = jpeg_opencv(x, [qualities[i]])
            lq[i : i + 1] = F.interpolate(x, size=(h, w), mode='bilinear', align_corners=False)
        if self.color_jitter_prob is not None:
            apply = torch.from_numpy(rng.uniform(size=b) < self.color_jitter_prob).to(gt.device)
            shift = torch.from_numpy(rng.uniform(-self.color_jitter_shift, self.color_jitter_shift, (b, 3)))
            shift = shift.to(gt).view(b, 3, 1, 1) * apply.view(b, 1, 1, 1)
            lq = (lq + shift).clamp_(0, 1)
        if self.gray_prob:
            gray = torch.from_numpy(rng.uniform(size=b) < self.gray_prob).to(gt.device).view(b, 1, 1, 1)
            lq = torch.where(gray, rgb_to_gray(lq).expand_as(lq), lq)
            if self.gt_gray:
                gt = torch.where(gray, rgb_to_gray(gt).expand_as(gt), gt)
        if self.color_jitter_pt_prob is not None:
            chosen = np.flatnonzero(rng.uniform(size=b) < self.color_jitter_pt_prob)
            if len(chosen):
                idx = torch.from_numpy(chosen).to(gt.device)
                lq[idx] = color_jitter_pt(lq[idx], self.opt.get('brightness', (0.5, 1.5)),
                                          self.opt.get('contrast', (0.5, 1.5)), self.opt.get('saturation', (0, 1.5)),
                                          self.opt.get('hue', (-0.1, 0.1)), rng)
        lq = (lq * 255.0).round_().clamp_(0, 255).div_(255.0)
        return {'lq': normalize(lq, self.mean, self.std), 'gt': normalize(gt.clone(), self.mean, self.std)}
