"""Unpaired low-quality images (inference, validation without gt), from a folder or an lmdb database."""

from __future__ import annotations

import os

import numpy as np
from torch.utils.data import Dataset

from gfpgan.data.degradations_torch import normalize
from gfpgan.data.file_client import build_file_client, is_lmdb, paths_from_folder, read_meta_info, read_or_skip
from gfpgan.utils.image_io import imfrombytes, img2tensor
from gfpgan.utils.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class SingleImageDataset(Dataset):
    """Options: `dataroot_lq`, `io_backend` ({type: disk|lmdb}), `meta_info_file` (optional list of names),
    `mean`, `std`, `skip_bad_images`. Returns `lq` (RGB CHW float) and `lq_path`."""

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.io_backend = dict(opt.get('io_backend') or {'type': 'disk'})
        self.io_backend_opt = self.io_backend  # BasicSR's name for it
        self.lq_folder = str(opt['dataroot_lq'])
        self.mean, self.std = opt.get('mean'), opt.get('std')
        if is_lmdb(self.io_backend):
            self.paths = read_meta_info(self.lq_folder)
            self.file_client = build_file_client(self.io_backend, [self.lq_folder], ['lq'])
        else:
            if opt.get('meta_info_file'):
                with open(opt['meta_info_file']) as f:
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
        index, img = read_or_skip(self._read, index, len(self.paths), self.opt.get('skip_bad_images', False),
                                  'SingleImageDataset')
        return {'lq': normalize(img2tensor(img, bgr2rgb=True, float32=True), self.mean, self.std),
                'lq_path': self.paths[index]}
