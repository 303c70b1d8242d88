"""A folder of images: training data for GANs, unconditional or (with class folders) class-conditional."""

from __future__ import annotations

from typing import Literal, Union

import numpy as np
import torch
from pydantic import Field, model_validator
from torch.utils.data import Dataset

from gfpgan.data.degradations import as_rng
from gfpgan.data.degradations_torch import normalize
from gfpgan.data.file_client import build_file_client, is_lmdb, paths_from_folder, read_meta_info, read_or_skip
from gfpgan.data.folder_check import DataFolderError, check_image_folder, class_of, loose_images_problem
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
    class_labels: bool = Field(False, description="return 'label': the class folder below dataroot")
    check_images: bool = Field(False, description='read every file first and report all problems, one line each')

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
    std: [0.5, ...]` gives [-1, 1]. With `class_labels`, an ImageFolder layout `dataroot/<class>/.../*.jpg`:
    classes numbered in sorted folder-name order (as torchvision's ImageFolder). Returns `{'gt': CHW float
    tensor, 'gt_path': path or lmdb key}`, plus `'label'` (int64) with class labels.
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
        self.class_labels = o.class_labels
        if is_lmdb(self.io_backend):
            if o.check_images:
                raise ValueError(f'ImageFolderDataset ({self.root}): check_images reads disk folders; an lmdb '
                                 'database was checked when scripts/create_lmdb.py wrote it.')
            self.paths = read_meta_info(self.root)
            self.file_client = build_file_client(self.io_backend, [self.root], ['gt'])
        else:
            if o.check_images:
                check_image_folder(self.root, same_size=not self.image_size, class_labels=self.class_labels)
            self.paths = paths_from_folder(self.root, recursive=o.recursive)
            self.file_client = build_file_client(self.io_backend)
        self.classes: list[str] = []
        self.labels: list[int] = []
        if self.class_labels:
            self._label_paths()

    def _label_paths(self) -> None:
        """Class index of every path from its first folder below `dataroot` (sorted names -> 0, 1, ...)."""
        if is_lmdb(self.io_backend):
            raise ValueError(f'ImageFolderDataset ({self.root}): class_labels needs a disk folder of class '
                             'folders; lmdb keys carry no folders.')
        loose = loose_images_problem(self.paths, self.root)
        if loose:
            raise DataFolderError(loose)
        names = [class_of(p, self.root) for p in self.paths]
        self.classes = sorted(set(names))
        index = {c: i for i, c in enumerate(self.classes)}
        self.labels = [index[c] for c in names]

    @property
    def num_classes(self) -> int:
        """Number of class folders (0 without class labels): what `network_g.num_classes` must be."""
        return len(self.classes)

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
        out = {'gt': normalize(tensor, self.mean, self.std), 'gt_path': self.paths[index]}
        if self.class_labels:
            out['label'] = torch.tensor(self.labels[index], dtype=torch.long)
        return out
