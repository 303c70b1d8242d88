"""lq/gt pairs made from gt images alone: lq is the bicubic downscale of gt, computed on the fly.

The classic SR benchmark degradation (DIV2K's `LR_bicubic`, Set5/Set14), as MATLAB's antialiased
`imresize` makes it, without a prepared lq folder: a recipe can train or validate on any folder of
photos. Training crops a `gt_size` gt patch first and downscales the patch; validation downscales the
whole image, cropped to a multiple of `scale`.
"""

from __future__ import annotations

import os
from typing import Union

import numpy as np
from pydantic import Field, model_validator
from torch.utils.data import Dataset

from gfpgan.data.degradations import as_rng
from gfpgan.data.degradations_torch import normalize
from gfpgan.data.file_client import build_file_client, meta_info_names, paths_from_folder, read_or_skip
from gfpgan.data.transforms import augment, mod_crop
from gfpgan.metrics.niqe_metric import imresize_matlab
from gfpgan.utils.image_io import imfrombytes, img2tensor
from gfpgan.utils.option_schema import ImageFilesOptions
from gfpgan.utils.registry import DATASET_REGISTRY


def bicubic_downscale(img: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB `imresize(img, 1 / scale)` (bicubic, antialiased) of an HWC float image in [0, 1], clipped."""
    channels = [imresize_matlab(img[..., c], 1.0 / scale) for c in range(img.shape[2])]
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0)


class BicubicPairOptions(ImageFilesOptions):
    dataroot_gt: str = Field(description='folder of gt images (disk)')
    meta_info_file: Union[str, None] = Field(None, description='file listing the gt names to use, in order')
    scale: int = Field(4, ge=1, description='gt size / lq size')
    gt_size: Union[int, None] = Field(None, ge=1, description='train: gt crop size (required to train)')
    use_hflip: bool = Field(True, description='train: random horizontal flip')
    use_rot: bool = Field(True, description='train: random vertical flip and 90-degree rotation')
    seed: Union[int, None] = Field(None, description='train: each index always draws the same crop and flips')

    @model_validator(mode='after')
    def _train_crops(self) -> BicubicPairOptions:
        if self.phase == 'train' and self.gt_size is None:
            raise ValueError('gt_size: the train phase needs the gt crop size')
        if self.gt_size is not None and self.gt_size % self.scale:
            raise ValueError(f'gt_size: {self.gt_size} is not a multiple of scale {self.scale}')
        return self


@DATASET_REGISTRY.register()
class BicubicPairDataset(Dataset):
    """gt images and their bicubic downscale as lq (see the module docstring).

    Options: `BicubicPairOptions`. Returns `lq`, `gt` (RGB CHW float), `lq_path` (= `gt_path`), `gt_path`.
    """

    options = BicubicPairOptions

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.o = o = self.options.parse(opt, type(self).__name__)
        if o.meta_info_file:
            self.paths = [os.path.join(o.dataroot_gt, n) for n in meta_info_names(o.meta_info_file)]
        else:
            self.paths = paths_from_folder(o.dataroot_gt)
        if not self.paths:
            raise FileNotFoundError(f'BicubicPairDataset: no images in {o.dataroot_gt}.')
        self.file_client = build_file_client(dict(o.io_backend or {'type': 'disk'}))

    def __len__(self) -> int:
        return len(self.paths)

    def _read(self, index: int) -> tuple[int, np.ndarray]:
        path = self.paths[index]
        return index, imfrombytes(self.file_client.get(path, 'gt'), float32=True, source=path)

    def __getitem__(self, index: int) -> dict:
        o = self.o
        index, img = read_or_skip(self._read, index, len(self.paths), o.skip_bad_images, 'BicubicPairDataset')
        path = self.paths[index]
        if o.phase == 'train':
            h, w = img.shape[:2]
            if h < o.gt_size or w < o.gt_size:
                raise ValueError(f'{path}: {h}x{w} is smaller than gt_size {o.gt_size}; lower gt_size or remove it.')
            rng = np.random.default_rng([int(o.seed), index]) if o.seed is not None else as_rng(None)
            top, left = int(rng.integers(0, h - o.gt_size + 1)), int(rng.integers(0, w - o.gt_size + 1))
            img = augment(img[top : top + o.gt_size, left : left + o.gt_size], o.use_hflip, o.use_rot, rng)
        else:
            img = mod_crop(img, o.scale)
        gt = np.ascontiguousarray(img)
        gt, lq = img2tensor([gt, bicubic_downscale(gt, o.scale)], bgr2rgb=True, float32=True)
        return {'lq': normalize(lq, o.mean, o.std), 'gt': normalize(gt, o.mean, o.std),
                'lq_path': os.fspath(path), 'gt_path': os.fspath(path)}
