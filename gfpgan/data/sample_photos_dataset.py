"""Degraded crops of scikit-image's bundled sample photos: a dataset that needs no download.

It feeds the README demo and the framework tests: a real-image restoration task (blur, downsampling,
noise, JPEG) available on any machine where scikit-image is installed.
"""

from __future__ import annotations

import functools
from typing import Union

import cv2
import numpy as np
import torch
from pydantic import Field
from torch.utils.data import Dataset

from gfpgan.utils.option_schema import DatasetOptions
from gfpgan.utils.registry import DATASET_REGISTRY

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry', 'hubble_deep_field')


@functools.cache
def _photo(name: str) -> np.ndarray:
    try:
        import skimage.data
    except ImportError as err:
        raise ImportError('SamplePhotosDataset needs scikit-image (pip install scikit-image).') from err
    rgb = getattr(skimage.data, name)()
    return np.ascontiguousarray(rgb[:, :, :3].astype(np.float32) / 255.0)


class SamplePhotosOptions(DatasetOptions):
    num_samples: int = Field(64, ge=1, description='virtual length')
    gt_size: int = Field(64, ge=8, description='crop side')
    photos: Union[list[str], None] = Field(None, description='names in skimage.data (default: six photos)')
    scale_range: list[float] = Field([2, 4], min_length=2, max_length=2, description='downsampling factors')
    noise_range: list[float] = Field([0, 8], min_length=2, max_length=2, description='noise sigma (0..255)')
    jpeg_range: list[int] = Field([60, 95], min_length=2, max_length=2, description='JPEG quality')
    use_hflip: bool = Field(True, description='random horizontal flip (train phase)')


@DATASET_REGISTRY.register()
class SamplePhotosDataset(Dataset):
    """Random `gt_size` crops of the sample photos with a random degradation as `lq` (same size).

    Options: `SamplePhotosOptions`. Validation (`phase: val`) draws crop and degradation from the index
    alone, so it is the same every time. Returns RGB CHW float tensors in [0, 1]: `lq`, `gt`, and
    `lq_path`/`gt_path` naming photo and index.
    """

    options = SamplePhotosOptions

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.o = o = self.options.parse(opt, type(self).__name__)
        self.photos = list(o.photos or PHOTOS)
        self.num_samples = o.num_samples
        self.gt_size = o.gt_size
        self.scale_range, self.noise_range, self.jpeg_range = o.scale_range, o.noise_range, o.jpeg_range
        self.use_hflip = o.use_hflip
        self.fixed = o.phase != 'train'

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng(index) if self.fixed else np.random.default_rng(np.random.randint(2**31))
        name = self.photos[index % len(self.photos)]
        photo = _photo(name)
        h, w = photo.shape[:2]
        s = self.gt_size
        top, left = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        gt = photo[top : top + s, left : left + s]
        if self.use_hflip and not self.fixed and rng.random() < 0.5:
            gt = gt[:, ::-1]
        gt = np.ascontiguousarray(gt)
        scale = rng.uniform(*self.scale_range)
        small = max(4, round(s / scale))
        lq = cv2.GaussianBlur(gt, (0, 0), sigmaX=0.3 * scale + 0.1)
        lq = cv2.resize(lq, (small, small), interpolation=cv2.INTER_AREA)
        lq = lq + rng.normal(0, rng.uniform(*self.noise_range) / 255.0, lq.shape).astype(np.float32)
        quality = int(rng.integers(self.jpeg_range[0], self.jpeg_range[1] + 1))
        bgr8 = (np.clip(lq[:, :, ::-1], 0, 1) * 255).round().astype(np.uint8)  # OpenCV encodes BGR
        _, enc = cv2.imencode('.jpg', bgr8, [cv2.IMWRITE_JPEG_QUALITY, quality])
        lq = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)[:, :, ::-1].astype(np.float32) / 255.0
        lq = cv2.resize(lq, (s, s), interpolation=cv2.INTER_LINEAR)
        to_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float()  # noqa: E731
        tag = f'{name}_{index:04d}'
        return {'lq': to_tensor(np.clip(lq, 0, 1)), 'gt': to_tensor(gt), 'lq_path': tag, 'gt_path': tag}
