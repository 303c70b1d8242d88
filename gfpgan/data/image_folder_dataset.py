"""A folder of images, no labels: training data for unconditional GANs."""

from __future__ import annotations

from typing import Literal, Union

import numpy as np
from pydantic import Field, model_validator
from torch.utils.data import Dataset

from gfpgan.data.degradations import as_rng
from gfpgan.data.degradations_torch import normalize
from gfpgan.data.file_client import build_file_client, is_lmdb, paths_from_folder, read_meta_info, read_or_skip
from gfpgan.data.transforms import center_crop, resize_short_side
from gfpgan.utils.image_io import imfrombytes, img2tensor
from gfpgan.utils.option_schema import ImageFilesOptions
from gfpgan.utils.registry import DATASET_REGISTRY


class ImageFolderOptions(ImageFilesOptions):
    dataroot: Union[str, None] = Field(None, description='image folder (searched recursively) or .lmdb')
    dataroot_gt: Union[str, None] = Field(None, description='the same as dataroot (BasicSR name)')
    recursive: bool = Field(True, description='also read images in subfolders')
    image_size: Union[int, None] = Field(None, ge=1, description='shorter side resized to it, then a centre crop')
    use_hflip: bool = Field(False, description='random horizontal flip')
    seed: Union[int, None] = Field(None, description='each index always draws the same flip')
    channels: Literal[1, 3, 4] = Field(3, description='3 RGB (alpha composited onto white), 1 gray, 4 RGBA')

    @model_validator(mode='after')
    def _one_root(self) -> ImageFolderOptions:
        if not (self.dataroot or self.dataroot_gt):
            raise ValueError('dataroot: required (the image folder)')
        if self.dataroot and self.dataroot_gt and self.dataroot != self.dataroot_gt:
            raise ValueError('dataroot_gt: give dataroot or dataroot_gt, not two different folders')
        return self


@DATASET_REGISTRY.register()
class ImageFolderDataset(Dataset):
    """Every image under `dataroot`, as `gt` (options: `ImageFolderOptions`).

    `mean`/`std` none: values in [0, 1], as the GAN model's default `data_range`; `mean: [0.5, ...],
    std: [0.5, ...]` gives [-1, 1]. Returns `{'gt': CHW float tensor, 'gt_path': path or lmdb key}`.
    """

    options = ImageFolderOptions

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.o = o = self.options.parse(opt, type(self).__name__)
        self.root = self.gt_folder = o.dataroot or o.dataroot_gt
        self.io_backend = self.io_backend_opt = dict(o.io_backend or {'type': 'disk'})
        self.image_size = o.image_size
        self.use_hflip = o.use_hflip
        self.channels = o.channels
        self.mean, self.std = o.mean, o.std
        self.seed = o.seed
        if is_lmdb(self.io_backend):
            self.paths = read_meta_info(self.root)
            self.file_client = build_file_client(self.io_backend, [self.root], ['gt'])
        else:
            self.paths = paths_from_folder(self.root, recursive=o.recursive)
            self.file_client = build_file_client(self.io_backend)

    def __len__(self) -> int:
        return len(self.paths)

    def _read(self, index: int) -> tuple[int, np.ndarray]:
        path = self.paths[index]
        return index, imfrombytes(self.file_client.get(path, 'gt'), float32=True, source=path, channels=self.channels)

    def __getitem__(self, index: int) -> dict:
        index, img = read_or_skip(self._read, index, len(self.paths), self.o.skip_bad_images,
                                  'ImageFolderDataset')
        if self.image_size:
            img = center_crop(resize_short_side(img, int(self.image_size)), int(self.image_size))
        if self.use_hflip:
            rng = np.random.default_rng([int(self.seed), index]) if self.seed is not None else as_rng(None)
            if rng.random() < 0.5:
                img = img[:, ::-1]
        if self.channels == 4:  # BGRA -> RGBA
            img = img[:, :, [2, 1, 0, 3]]
        tensor = img2tensor(img, bgr2rgb=self.channels == 3, float32=True)
        return {'gt': normalize(tensor, self.mean, self.std), 'gt_path': self.paths[index]}
