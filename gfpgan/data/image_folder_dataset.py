"""A folder of images: training data for GANs, unconditional or (with class folders) class-conditional."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from gfpgan.data.degradations import as_rng
from gfpgan.data.degradations_torch import normalize
from gfpgan.data.file_client import build_file_client, is_lmdb, paths_from_folder, read_meta_info, read_or_skip
from gfpgan.data.folder_check import DataFolderError, check_image_folder, class_of, loose_images_problem
from gfpgan.data.transforms import center_crop, resize_short_side
from gfpgan.utils.image_io import imfrombytes, img2tensor
from gfpgan.utils.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageFolderDataset(Dataset):
    """Every image under `dataroot` (recursive, any common format), as `gt`.

    Options: `dataroot` (or `dataroot_gt`), `io_backend` ({type: disk|lmdb}), `recursive` (true),
    `image_size` (shorter side resized to it, then a centre square crop; none: images as they are),
    `use_hflip` (false), `channels` (3 RGB; 1 gray; 4 RGBA with alpha kept, opaque where absent; 3
    composites alpha onto white), `mean`/`std` (none: values in [0, 1], as the GAN model's default
    `data_range`; `mean: [0.5, ...], std: [0.5, ...]` gives [-1, 1]), `seed`, `skip_bad_images`,
    `class_labels` (false; true: an ImageFolder layout `dataroot/<class>/.../*.jpg`, classes numbered in
    sorted folder-name order, as torchvision's ImageFolder), `check_images` (false; true: read every file
    first and report all problems of the folder, one line each; see `gfpgan.data.folder_check`).
    Returns `{'gt': CHW float tensor, 'gt_path': path or lmdb key}`, plus `'label'` (int64) with class labels.
    """

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.root = str(opt.get('dataroot', opt.get('dataroot_gt', '')))
        if not self.root:
            raise KeyError("ImageFolderDataset needs 'dataroot' (the image folder).")
        self.io_backend = dict(opt.get('io_backend') or {'type': 'disk'})
        self.io_backend_opt = self.io_backend  # BasicSR's name for it
        self.image_size = opt.get('image_size')
        self.use_hflip = bool(opt.get('use_hflip', False))
        self.channels = int(opt.get('channels', 3))
        if self.channels not in (1, 3, 4):
            raise ValueError(f'ImageFolderDataset: channels must be 1, 3 or 4, got {self.channels}.')
        self.mean, self.std = opt.get('mean'), opt.get('std')
        self.seed = opt.get('seed')
        self.class_labels = bool(opt.get('class_labels', False))
        if is_lmdb(self.io_backend):
            if opt.get('check_images', False):
                raise ValueError(f'ImageFolderDataset ({self.root}): check_images reads disk folders; an lmdb '
                                 'database was checked when scripts/create_lmdb.py wrote it.')
            self.paths = read_meta_info(self.root)
            self.file_client = build_file_client(self.io_backend, [self.root], ['gt'])
        else:
            if opt.get('check_images', False):
                check_image_folder(self.root, same_size=not self.image_size, class_labels=self.class_labels)
            self.paths = paths_from_folder(self.root, recursive=bool(opt.get('recursive', True)))
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
        index, img = read_or_skip(self._read, index, len(self.paths), self.opt.get('skip_bad_images', False),
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
