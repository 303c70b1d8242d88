"""Real-ESRGAN's training data: high-quality images as gt plus the random kernels of their degradation.

The degradation itself (blur, resize, noise, JPEG, twice, then the final sinc filter) runs on the
device on whole batches (`gfpgan.data.realesrgan_degradations_torch`); the workers only read, flip,
crop or pad, and draw the three kernels of each sample, which is cheap on the CPU.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch
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
from gfpgan.utils.registry import DATASET_REGISTRY

# Real-ESRGAN x4plus recipe values, used for options left out
DEFAULTS = dict(
    blur_kernel_size=21, kernel_list=list(KERNEL_TYPES), kernel_prob=[0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    sinc_prob=0.1, blur_sigma=[0.2, 3], betag_range=[0.5, 4], betap_range=[1, 2],
    blur_kernel_size2=21, kernel_list2=list(KERNEL_TYPES), kernel_prob2=[0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    sinc_prob2=0.1, blur_sigma2=[0.2, 1.5], betag_range2=[0.5, 4], betap_range2=[1, 2],
    final_sinc_prob=0.8, use_hflip=True, use_rot=False, crop_pad_size=400,
)


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

    Options (Real-ESRGAN's; missing ones take its x4plus recipe values): `dataroot_gt`, `meta_info` (disk:
    list of image paths relative to `dataroot_gt`; without it the folder is read), `io_backend`
    ({type: disk|lmdb}), `use_hflip`, `use_rot`, `crop_pad_size` (400: gt is reflect-padded or randomly
    cropped to it), for the first blur `blur_kernel_size` (largest size; the size is drawn from
    7, 9, ..., blur_kernel_size and zero-padded to it), `kernel_list`, `kernel_prob`, `blur_sigma`,
    `betag_range`, `betap_range`, `sinc_prob`, the same with suffix `2` for the second blur, and
    `final_sinc_prob`; `seed` (per-index draws), `skip_bad_images`. `gt_size` and the degradation
    ranges belong to the model, which degrades and crops the batch.

    Returns `gt` (RGB CHW float in [0, 1]), `kernel1` and `kernel2` (blur_kernel_size[2] squared,
    float32), `sinc_kernel` (blur_kernel_size squared), `gt_path`.
    """

    def __init__(self, opt: dict) -> None:
        self.opt = {**DEFAULTS, **opt}
        self.io_backend = dict(opt.get('io_backend') or {'type': 'disk'})
        self.gt_folder = str(opt['dataroot_gt'])
        self.seed = opt.get('seed')
        if is_lmdb(self.io_backend):
            self.paths = read_meta_info(self.gt_folder)
            self.file_client = build_file_client(self.io_backend, [self.gt_folder], ['gt'])
        else:
            if opt.get('meta_info'):
                self.paths = [os.path.join(self.gt_folder, n) for n in meta_info_names(opt['meta_info'])]
            else:
                self.paths = paths_from_folder(self.gt_folder)
            self.file_client = build_file_client(self.io_backend)
        for key in ('kernel_list', 'kernel_list2'):
            prob_key = key.replace('list', 'prob')
            if len(self.opt[key]) != len(self.opt[prob_key]):
                raise ValueError(f'RealESRGANDataset: {key} has {len(self.opt[key])} entries but {prob_key} has '
                                 f'{len(self.opt[prob_key])}; give one probability per kernel type.')

    def __len__(self) -> int:
        return len(self.paths)

    def _read(self, index: int) -> tuple[int, np.ndarray]:
        path = self.paths[index]
        return index, imfrombytes(self.file_client.get(path, 'gt'), float32=True, source=path)

    def _kernel(self, suffix: str, rng: np.random.Generator) -> torch.Tensor:
        o = self.opt
        kernel = random_blur_kernel(o[f'kernel_list{suffix}'], o[f'kernel_prob{suffix}'], o[f'blur_sigma{suffix}'],
                                    o[f'betag_range{suffix}'], o[f'betap_range{suffix}'], o[f'sinc_prob{suffix}'],
                                    int(o[f'blur_kernel_size{suffix}']), rng)
        return torch.from_numpy(kernel.astype(np.float32))

    def __getitem__(self, index: int) -> dict:
        index, img = read_or_skip(self._read, index, len(self.paths), self.opt.get('skip_bad_images', False),
                                  'RealESRGANDataset')
        rng = np.random.default_rng([int(self.seed), index]) if self.seed is not None else as_rng(None)
        img = augment(img, self.opt['use_hflip'], self.opt['use_rot'], rng)
        img = crop_or_pad(img, int(self.opt['crop_pad_size']), rng)
        kernel1, kernel2 = self._kernel('', rng), self._kernel('2', rng)
        sinc = random_final_sinc_kernel(self.opt['final_sinc_prob'], int(self.opt['blur_kernel_size']), rng)
        return {'gt': img2tensor(img, bgr2rgb=True, float32=True), 'kernel1': kernel1, 'kernel2': kernel2,
                'sinc_kernel': torch.from_numpy(sinc.astype(np.float32)), 'gt_path': self.paths[index]}
