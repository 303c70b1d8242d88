"""Unpaired low-quality images (inference, validation without gt), from a folder or an lmdb database."""

from __future__ import annotations

import os
from typing import Union

import numpy as np
from pydantic import Field
from torch.utils.data import Dataset

from gfpgan.data.degradations_torch import normalize
from gfpgan.data.file_client import build_file_client, is_lmdb, paths_from_folder, read_meta_info, read_or_skip
from gfpgan.utils.image_io import imfrombytes, img2tensor
from gfpgan.utils.option_schema import ImageFilesOptions
from gfpgan.utils.registry import DATASET_REGISTRY


class SingleImageOptions(ImageFilesOptions):
    dataroot_lq: str = Field(description='folder (or .lmdb) of lq images')
    meta_info_file: Union[str, None] = Field(None, description='text file listing the image names to read (first word)')


@DATASET_REGISTRY.register()
class SingleImageDataset(Dataset):
    """Options: `SingleImageOptions`. Returns `lq` (RGB CHW float) and `lq_path`."""

    options = SingleImageOptions

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.o = o = self.options.parse(opt, type(self).__name__)
        self.io_backend = self.io_backend_opt = dict(o.io_backend or {'type': 'disk'})
        self.lq_folder = o.dataroot_lq
        self.mean, self.std = o.mean, o.std
        if is_lmdb(self.io_backend):
            self.paths = read_meta_info(self.lq_folder)
            self.file_client = build_file_client(self.io_backend, [self.lq_folder], ['lq'])
        else:
            if o.meta_info_file:
                with open(o.meta_info_file) as f:
                    names = [line.split(' ')[0] for line in f if line.strip()]
                self.paths = [os.path.join(self.lq_folder, n) for n in names]
            else:
                self.paths = paths_from_folder(self.lq_folder)
            self.file_client = build_file_client(self.io_backend)

    def __len__(self) -> int:
        return len(self.paths)

    def _read(self, index: int) -> tuple[int, np.ndarray]:
        path = self.paths[index]
        return index, imfrombytes(self.file_client.get(path, 'lq'), float32=True, source=path)

    def __getitem__(self, index: int) -> dict:
        index, img = read_or_skip(self._read, index, len(self.paths), self.o.skip_bad_images,
                                  'SingleImageDataset')
        return {'lq': normalize(img2tensor(img, bgr2rgb=True, float32=True), self.mean, self.std),
                'lq_path': self.paths[index]}
