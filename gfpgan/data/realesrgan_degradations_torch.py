"""Real-ESRGAN's second-order degradation on a batch, on the batch's device (NCHW RGB float in [0, 1]).

blur (kernel1) -> resize up/down/keep -> Gaussian or Poisson noise -> JPEG, then
[blur (kernel2)] -> resize -> noise, then in a random order {resize to gt/scale + sinc filter} and JPEG,
and 8-bit rounding.

Randomness is drawn in two stages so that a batch degrades exactly like its samples one at a time:
`RealESRGANDegrader.draw(batch_size, generator)` draws every parameter from a CPU `torch.Generator`
into a `DegradationParams` (a few numbers per sample, so the same on every device), and
`degrade(img, kernel1, kernel2, sinc_kernel, params)` applies them. As in Real-ESRGAN, the choices that
change the image size or the kind of step (resize factor and mode, noise kind, second blur, final order)
are one per batch; noise levels, gray noise, JPEG qualities and the kernels are per sample. Each
sample's noise comes from its own device generator seeded from `params`, so it does not depend on its
place in the batch: `degrade` on a batch equals `degrade` on each `params.sample(i)` concatenated.

JPEG is the real codec: each sample is round-tripped through OpenCV on the CPU (`jpeg_opencv`), at an
integer quality (Real-ESRGAN's differentiable DiffJPEG takes float qualities; nothing here needs the
gradient, the degradation runs under no_grad). One device-to-host copy per sample and JPEG step.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Sequence

import cv2
import torch
import torch.nn.functional as F

from gfpgan.data.degradations_torch import add_gaussian_noise, add_poisson_noise, filter2d, jpeg_opencv
from gfpgan.data.realesrgan_degradations import usm_radius

RESIZE_MODES = ('area', 'bilinear', 'bicubic')
# Real-ESRGAN x4plus recipe values, used for options left out
DEFAULTS = dict(
    scale=4, resize_prob=[0.2, 0.7, 0.1], resize_range=[0.15, 1.5], gaussian_noise_prob=0.5, noise_range=[1, 30],
    poisson_scale_range=[0.05, 3], gray_noise_prob=0.4, jpeg_range=[30, 95],
    second_blur_prob=0.8, resize_prob2=[0.3, 0.4, 0.3], resize_range2=[0.3, 1.2], gaussian_noise_prob2=0.5,
    noise_range2=[1, 25], poisson_scale_range2=[0.05, 2.5], gray_noise_prob2=0.4, jpeg_range2=[30, 95],
)
OPTION_KEYS = tuple(DEFAULTS)


@dataclass(frozen=True, eq=False)  # tensor fields: no field-wise ==
class NoiseParams:
    """One noise step: `gaussian` (per batch) else Poisson; per sample (B,) `amount` (sigma on the 0..255
    scale, or the Poisson scale), `gray` (one noise map for all channels) and `seed` (of its noise)."""

    gaussian: bool
    amount: torch.Tensor
    gray: torch.Tensor
    seed: torch.Tensor


@dataclass(frozen=True, eq=False)  # tensor fields: no field-wise ==
class DegradationParams:
    """Everything `degrade` draws; per-batch fields are Python scalars, per-sample ones (B,) CPU tensors."""

    scale1: float
    mode1: str
    noise1: NoiseParams
    jpeg1: torch.Tensor
    second_blur: bool
    scale2: float
    mode2: str
    noise2: NoiseParams
    jpeg2: torch.Tensor
    sinc_before_jpeg: bool
    mode_final: str

    def sample(self, i: int) -> DegradationParams:
        """The parameters of sample `i` alone (a batch of one)."""
        def take(value):
            if isinstance(value, torch.Tensor):
                return value[i : i + 1]
            if isinstance(value, NoiseParams):
                return replace(value, amount=take(value.amount), gray=take(value.gray), seed=take(value.seed))
            return value

        return replace(self, **{f.name: take(getattr(self, f.name)) for f in fields(self)})


def _uniform(low: float, high: float, generator: torch.Generator, n: int | None = None) -> torch.Tensor | float:
    u = torch.rand(n if n is not None else 1, generator=generator, dtype=torch.float64) * (high - low) + low
    return u if n is not None else float(u)


def _choice(options: Sequence, generator: torch.Generator, prob: Sequence[float] | None = None):
    if prob is None:
        return options[int(torch.randint(len(options), (1,), generator=generator))]
    weights = torch.as_tensor(prob, dtype=torch.float64)
    return options[int(torch.multinomial(weights, 1, generator=generator))]


def random_paired_crop(gts: Sequence[torch.Tensor], lq: torch.Tensor, gt_size: int, scale: int,
                       generator: torch.Generator) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One random `gt_size // scale` window of the lq batch and the matching `gt_size` windows of each gt
    batch (the same place for the whole batch, as Real-ESRGAN crops after degrading)."""
    h, w = lq.shape[-2:]
    lq_size = gt_size // scale
    for gt in gts:
        if gt.shape[-2:] != (h * scale, w * scale):
            raise ValueError(f'random_paired_crop: gt {tuple(gt.shape)} is not {scale}x the lq {tuple(lq.shape)}.')
    if h < lq_size or w < lq_size:
        raise ValueError(f'random_paired_crop: lq {h}x{w} is smaller than the crop {lq_size} (gt_size {gt_size} / '
                         f'scale {scale}); lower gt_size or raise crop_pad_size.')
    top = int(torch.randint(h - lq_size + 1, (1,), generator=generator))
    left = int(torch.randint(w - lq_size + 1, (1,), generator=generator))
    out = [gt[..., top * scale : (top + lq_size) * scale, left * scale : (left + lq_size) * scale] for gt in gts]
    return out, lq[..., top : top + lq_size, left : left + lq_size]


class RealESRGANDegrader:
    """The recipe's degradation options (`scale`, `resize_prob`, `resize_range`, `gaussian_noise_prob`,
    `noise_range`, `poisson_scale_range`, `gray_noise_prob`, `jpeg_range`, `second_blur_prob` and the
    same with suffix `2` for the second stage; Real-ESRGAN's x4plus values when missing) plus
    `filter_method` (`auto`, `direct` or `fft`, see `degradations_torch.filter2d`)."""

    def __init__(self, opt: dict) -> None:
        self.opt = {**DEFAULTS, **{k: v for k, v in opt.items() if k in DEFAULTS}}
        self.scale = int(self.opt['scale'])
        self.filter_method = opt.get('filter_method', 'auto')
        for key in ('resize_prob', 'resize_prob2'):
            if len(self.opt[key]) != 3:
                raise ValueError(f'{key} must give three probabilities (up, down, keep), got {self.opt[key]}.')

    def _draw_noise(self, suffix: str, b: int, g: torch.Generator) -> NoiseParams:
        o = self.opt
        gaussian = bool(torch.rand(1, generator=g) < o[f'gaussian_noise_prob{suffix}'])
        lo, hi = o[f'noise_range{suffix}'] if gaussian else o[f'poisson_scale_range{suffix}']
        amount = _uniform(lo, hi, g, b)
        gray = torch.rand(b, generator=g, dtype=torch.float64) < o[f'gray_noise_prob{suffix}']
        seed = torch.randint(2**62, (b,), generator=g)
        return NoiseParams(gaussian, amount, gray, seed)

    def _draw_scale(self, suffix: str, g: torch.Generator) -> float:
        kind = _choice(('up', 'down', 'keep'), g, self.opt[f'resize_prob{suffix}'])
        low, high = self.opt[f'resize_range{suffix}']
        return _uniform(1, high, g) if kind == 'up' else _uniform(low, 1, g) if kind == 'down' else 1.0

    def _draw_jpeg(self, suffix: str, b: int, g: torch.Generator) -> torch.Tensor:
        low, high = (int(round(v)) for v in self.opt[f'jpeg_range{suffix}'])
        return torch.randint(low, high + 1, (b,), generator=g)

    def draw(self, batch_size: int, generator: torch.Generator) -> DegradationParams:
        """Every random choice for a batch, from a CPU generator (the order of draws is fixed)."""
        if generator.device.type != 'cpu':
            raise ValueError(f'RealESRGANDegrader.draw needs a CPU torch.Generator (the draws are a few numbers, the '
                             f'same on every device), got one on {generator.device}.')
        g = generator
        scale1, mode1 = self._draw_scale('', g), _choice(RESIZE_MODES, g)
        noise1, jpeg1 = self._draw_noise('', batch_size, g), self._draw_jpeg('', batch_size, g)
        second_blur = bool(torch.rand(1, generator=g) < self.opt['second_blur_prob'])
        scale2, mode2 = self._draw_scale('2', g), _choice(RESIZE_MODES, g)
        noise2, jpeg2 = self._draw_noise('2', batch_size, g), self._draw_jpeg('2', batch_size, g)
        sinc_before_jpeg = bool(torch.rand(1, generator=g) < 0.5)
        return DegradationParams(scale1, mode1, noise1, jpeg1, second_blur, scale2, mode2, noise2, jpeg2,
                                 sinc_before_jpeg, _choice(RESIZE_MODES, g))

    @torch.no_grad()
    def degrade(self, img: torch.Tensor, kernel1: torch.Tensor, kernel2: torch.Tensor, sinc_kernel: torch.Tensor,
                params: DegradationParams) -> torch.Tensor:
        """lq `(B, 3, H // scale, W // scale)` from `img` `(B, 3, H, W)` (gt, or its USM-sharpened version)."""
        if img.dim() != 4 or img.shape[1] != 3:
            raise ValueError(f'RealESRGANDegrader expects a (B, 3, H, W) RGB batch, got {tuple(img.shape)}.')
        b, _, h, w = img.shape
        if len(params.jpeg1) != b or any(len(k) != b for k in (kernel1, kernel2, sinc_kernel)):
            raise ValueError(f'RealESRGANDegrader: a batch of {b} needs {b} kernels and parameters each; got kernels '
                             f'{len(kernel1)}, {len(kernel2)}, {len(sinc_kernel)} and parameters {len(params.jpeg1)}.')
        out = self._blur(img.float(), kernel1)
        out = _resize(out, (int(h * params.scale1), int(w * params.scale1)), params.mode1)
        out = _add_noise(out, params.noise1)
        out = jpeg_opencv(out.clamp(0, 1), params.jpeg1.tolist())
        if params.second_blur:
            out = self._blur(out, kernel2)
        out = _resize(out, (int(h / self.scale * params.scale2), int(w / self.scale * params.scale2)), params.mode2)
        out = _add_noise(out, params.noise2)
        final = (h // self.scale, w // self.scale)
        if params.sinc_before_jpeg:
            out = self._blur(_resize(out, final, params.mode_final), sinc_kernel)
            out = jpeg_opencv(out.clamp(0, 1), params.jpeg2.tolist())
        else:
            out = jpeg_opencv(out.clamp(0, 1), params.jpeg2.tolist())
            out = self._blur(_resize(out, final, params.mode_final), sinc_kernel)
        return (out * 255.0).round().clamp(0, 255) / 255.0

    def degrade_per_sample(self, img: torch.Tensor, kernel1: torch.Tensor, kernel2: torch.Tensor,
                           sinc_kernel: torch.Tensor, params: DegradationParams) -> torch.Tensor:
        """`degrade` one sample at a time (the reference the batched path must equal)."""
        return torch.cat([self.degrade(img[i : i + 1], kernel1[i : i + 1], kernel2[i : i + 1], sinc_kernel[i : i + 1],
                                       params.sample(i)) for i in range(img.shape[0])])

    def _blur(self, img: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        return filter2d(img, kernels.to(img.device, img.dtype), self.filter_method)


def _resize(img: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    size = (max(1, size[0]), max(1, size[1]))
    if tuple(img.shape[-2:]) == size:
        return img
    return F.interpolate(img, size=size, mode=mode)


def _add_noise(img: torch.Tensor, noise: NoiseParams) -> torch.Tensor:
    """Per-sample noise, each from a device generator seeded by its own seed (batch-position independent)."""
    out = []
    for i in range(img.shape[0]):
        gen = torch.Generator(device=img.device)
        gen.manual_seed(int(noise.seed[i]))
        add = add_gaussian_noise if noise.gaussian else add_poisson_noise
        out.append(add(img[i : i + 1], float(noise.amount[i]), bool(noise.gray[i]), clip=True, generator=gen))
    return torch.cat(out)


class USMSharp:
    """Unsharp masking of a batch (`realesrgan_degradations.usm_sharp` on tensors, same defaults and
    Gaussian window), for the USM-sharpened gt of Real-ESRGAN's recipe."""

    def __init__(self, radius: int = 50, sigma: float = 0) -> None:
        k = usm_radius(radius)
        g = torch.from_numpy(cv2.getGaussianKernel(k, sigma)).float()
        self.kernel = g @ g.T

    @torch.no_grad()
    def __call__(self, img: torch.Tensor, weight: float = 0.5, threshold: float = 10) -> torch.Tensor:
        kernel = self.kernel.to(img.device, img.dtype)
        blur = filter2d(img, kernel)
        residual = img - blur
        mask = ((residual.abs() * 255) > threshold).to(img.dtype)
        soft_mask = filter2d(mask, kernel)
        sharp = (img + weight * residual).clamp(0, 1)
        return soft_mask * sharp + (1 - soft_mask) * img
