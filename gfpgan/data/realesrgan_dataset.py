"""Real-ESRGAN's training data: high-quality images as gt plus the random kernels of their degradation.

The degradation itself (blur, resize, noise, JPEG, twice, then the final sinc filter) runs on the
device on whole batches (`gfpgan.data.realesrgan_degradations_torch`); the workers only read, flip,
crop or pad, and draw the three kernels of each sample, which is cheap on the CPU.
"""

from __future__ import annotations

import os
from typing import Any, Union

import cv2
import numpy as np
import torch
from pydantic import Field, model_validator
from torch.utils.data import Dataset

from gfpgan.data.degradations import KERNEL_TYPES, as_rng
from gfpgan.data.file_client import (
    build_file_client,
    is_lmdb,
    meta_info_names,
    paths_from_folder,
    read_meta_info,
    read_or_skip,
)
from gfpgan.data.realesrgan_degradations import random_blur_kernel, random_final_sinc_kernel
from gfpgan.data.transforms import augment
from gfpgan.utils.image_io import imfrombytes, img2tensor
from gfpgan.utils.option_schema import DatasetOptions, IOBackendBlock, upstream_only
from gfpgan.utils.registry import DATASET_REGISTRY

_X4PLUS_PROB = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]  # Real-ESRGAN x4plus kernel probabilities


def _pair(default: list[float], what: str) -> Any:
    return Field(list(default), min_length=2, max_length=2, description=what)


class RealESRGANDatasetOptions(DatasetOptions):
    """Real-ESRGAN's dataset keys (its x4plus recipe values when left out)."""

    dataroot_gt: str = Field(description='folder (or .lmdb) of high-quality images')
    meta_info: Union[str, None] = Field(None, description='disk: file listing image paths relative to dataroot_gt')
    io_backend: IOBackendBlock = Field(None, description='{type: disk} (default) or {type: lmdb}')
    skip_bad_images: bool = Field(False, description='skip unreadable files with a warning instead of stopping')
    seed: Union[int, None] = Field(None, description='each index always draws the same flips, crop and kernels')
    use_hflip: bool = Field(True, description='random horizontal flip')
    use_rot: bool = Field(False, description='random vertical flip and 90-degree rotation')
    crop_pad_size: int = Field(400, ge=1, description='gt is reflect-padded or randomly cropped to this square')
    blur_kernel_size: int = Field(21, ge=7, description='first blur: largest kernel (sizes 7, 9, ... up to it)')
    kernel_list: list[str] = Field(list(KERNEL_TYPES), description='first blur: kernel types')
    kernel_prob: list[float] = Field(list(_X4PLUS_PROB), description='first blur: one probability per type')
    sinc_prob: float = Field(0.1, ge=0, le=1, description='first blur: probability of a sinc kernel instead')
    blur_sigma: list[float] = _pair([0.2, 3], 'first blur: sigma range')
    betag_range: list[float] = _pair([0.5, 4], 'first blur: generalized Gaussian beta range')
    betap_range: list[float] = _pair([1, 2], 'first blur: plateau beta range')
    blur_kernel_size2: int = Field(21, ge=7, description='second blur: largest kernel')
    kernel_list2: list[str] = Field(list(KERNEL_TYPES), description='second blur: kernel types')
    kernel_prob2: list[float] = Field(list(_X4PLUS_PROB), description='second blur: one probability per type')
    sinc_prob2: float = Field(0.1, ge=0, le=1, description='second blur: probability of a sinc kernel instead')
    blur_sigma2: list[float] = _pair([0.2, 1.5], 'second blur: sigma range')
    betag_range2: list[float] = _pair([0.5, 4], 'second blur: generalized Gaussian beta range')
    betap_range2: list[float] = _pair([1, 2], 'second blur: plateau beta range')
    final_sinc_prob: float = Field(0.8, ge=0, le=1, description='probability of the final sinc filter')
    gt_size: Union[int, None] = upstream_only("the model crops the degraded batch to the top-level 'gt_size'")

    @model_validator(mode='after')
    def _one_probability_per_kernel(self) -> RealESRGANDatasetOptions:
        for suffix in ('', '2'):
            kinds, prob = getattr(self, f'kernel_list{suffix}'), getattr(self, f'kernel_prob{suffix}')
            if len(kinds) != len(prob):
                raise ValueError(f'kernel_prob{suffix}: {len(prob)} entries for the {len(kinds)} types of '
                                 f'kernel_list{suffix}; give one probability per kernel type')
        return self


def crop_or_pad(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` x `size`: reflect-pad (bottom/right) a smaller image, then take a random window of a larger one."""
    h, w = img.shape[:2]
    if h < size or w < size:
        img = cv2.copyMakeBorder(np.ascontiguousarray(img), 0, max(0, size - h), 0, max(0, size - w),
                                 cv2.BORDER_REFLECT_101)
        h, w = img.shape[:2]
    top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return img[top : top + size, left : left + size]


@DATASET_REGISTRY.register()
class RealESRGANDataset(Dataset):
    """gt images and, per sample, `kernel1`, `kernel2` (first/second blur) and `sinc_kernel` (final filter).

    Options: `RealESRGANDatasetOptions` (Real-ESRGAN's keys; without `meta_info` the folder is read; each
    blur kernel's size is drawn from 7, 9, ..., blur_kernel_size and zero-padded to it). `gt_size` and
    the degradation ranges belong to the model, which degrades and crops the batch.

    Returns `gt` (RGB CHW float in [0, 1]), `kernel1` and `kernel2` (blur_kernel_size[2] squared,
    float32), `sinc_kernel` (blur_kernel_size squared), `gt_path`.
    """

    options = RealESRGANDatasetOptions

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.o = o = self.options.parse(opt, type(self).__name__)
        self.io_backend = dict(o.io_backend or {'type': 'disk'})
        self.gt_folder = o.dataroot_gt
        self.seed = o.seed
        if is_lmdb(self.io_backend):
            self.paths = read_meta_info(self.gt_folder)
            self.file_client = build_file_client(self.io_backend, [self.gt_folder], ['gt'])
        else:
            if o.meta_info:
                self.paths = [os.path.join(self.gt_folder, n) for n in meta_info_names(o.meta_info)]
            else:
                self.paths = paths_from_folder(self.gt_folder)
            self.file_client = build_file_client(self.io_backend)

    def __len__(self) -> int:
        return len(self.paths)

    def _read(self, index: int) -> tuple[int, np.ndarray]:
        path = self.paths[index]
        return index, imfrombytes(self.file_client.get(path, 'gt'), float32=True, source=path)

    def _kernel(self, suffix: str, rng: np.random.Generator) -> torch.Tensor:
        o = self.o
        kernel = random_blur_kernel(getattr(o, f'kernel_list{suffix}'), getattr(o, f'kernel_prob{suffix}'),
                                    getattr(o, f'blur_sigma{suffix}'), getattr(o, f'betag_range{suffix}'),
                                    getattr(o, f'betap_range{suffix}'), getattr(o, f'sinc_prob{suffix}'),
                                    getattr(o, f'blur_kernel_size{suffix}'), rng)
        return torch.from_numpy(kernel.astype(np.float32))

    def __getitem__(self, index: int) -> dict:
        o = self.o
        index, img = read_or_skip(self._read, index, len(self.paths), o.skip_bad_images, 'RealESRGANDataset')
        rng = np.random.default_rng([int(self.seed), index]) if self.seed is not None else as_rng(None)
        img = augment(img, o.use_hflip, o.use_rot, rng)
        img = crop_or_pad(img, o.crop_pad_size, rng)
        kernel1, kernel2 = self._kernel('', rng), self._kernel('2', rng)
        sinc = random_final_sinc_kernel(o.final_sinc_prob, o.blur_kernel_size, rng)
        return {'gt': img2tensor(img, bgr2rgb=True, float32=True), 'kernel1': kernel1, 'kernel2': kernel2,
                'sinc_kernel': torch.from_numpy(sinc.astype(np.float32)), 'gt_path': self.paths[index]}
