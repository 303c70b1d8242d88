"""Paired lq/gt images (super-resolution, restoration) from folders or lmdb databases."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
from pydantic import Field, model_validator
from torch.utils.data import Dataset

from gfpgan.data.degradations import as_rng
from gfpgan.data.degradations_torch import normalize
from gfpgan.data.file_client import (
    build_file_client,
    is_lmdb,
    meta_info_names,
    paths_from_folder,
    read_meta_info,
    read_or_skip,
)
from gfpgan.data.transforms import augment, paired_random_crop
from gfpgan.utils.image_io import imfrombytes, img2tensor
from gfpgan.utils.option_schema import ImageFilesOptions
from gfpgan.utils.registry import DATASET_REGISTRY


def paired_paths(lq_folder: str, gt_folder: str, filename_tmpl: str = '{}', lmdb: bool = False,
                 meta_info_file: str | None = None) -> list[dict]:
    """`[{'lq_path', 'gt_path'}]` sorted by gt name; the lq of gt `name.ext` is `filename_tmpl.format(name)`
    with any image extension (or that lmdb key).

    With a `meta_info_file` (disk only, BasicSR's semantics) the pairs are the listed gt names in the
    file's order, and the lq of `dir/name.ext` is `lq_folder/filename_tmpl.format(name).ext`.
    """
    if meta_info_file and not lmdb:
        pairs = []
        for gt_name in meta_info_names(meta_info_file):
            stem, ext = os.path.splitext(os.path.basename(gt_name))
            pairs.append({'lq_path': os.path.join(lq_folder, f'{filename_tmpl.format(stem)}{ext}'),
                          'gt_path': os.path.join(gt_folder, gt_name)})
        missing = [p['lq_path'] for p in pairs if not os.path.isfile(p['lq_path'])]
        missing += [p['gt_path'] for p in pairs if not os.path.isfile(p['gt_path'])]
        if missing:
            raise FileNotFoundError(f'{len(missing)} files listed (through filename_tmpl \'{filename_tmpl}\') in '
                                    f'meta_info_file {meta_info_file} do not exist (e.g. {missing[:3]}); check '
                                    'dataroot_gt, dataroot_lq and filename_tmpl.')
        return pairs
    if lmdb:
        gt_keys, lq_keys = read_meta_info(gt_folder), set(read_meta_info(lq_folder))
        pairs = [{'lq_path': filename_tmpl.format(k), 'gt_path': k} for k in sorted(gt_keys)]
        missing = [p['lq_path'] for p in pairs if p['lq_path'] not in lq_keys]
    else:
        lq_by_stem = {Path(p).stem: p for p in paths_from_folder(lq_folder)}
        pairs, missing = [], []
        for gt_path in paths_from_folder(gt_folder):
            name = filename_tmpl.format(Path(gt_path).stem)
            if name in lq_by_stem:
                pairs.append({'lq_path': lq_by_stem[name], 'gt_path': gt_path})
            else:
                missing.append(name)
    if missing:
        raise FileNotFoundError(f'{len(missing)} gt images have no lq partner in {lq_folder} (e.g. {missing[:3]}); '
                                f"check dataroot_lq and filename_tmpl ('{filename_tmpl}').")
    return pairs


class PairedImageOptions(ImageFilesOptions):
    dataroot_gt: str = Field(description='folder (or .lmdb) of gt images')
    dataroot_lq: str = Field(description='folder (or .lmdb) of lq images')
    filename_tmpl: str = Field('{}', description="lq name of gt 'name': filename_tmpl.format(name)")
    scale: int = Field(1, ge=1, description='gt size / lq size')
    gt_size: Union[int, None] = Field(None, ge=1, description='train: gt crop size (required to train)')
    use_hflip: bool = Field(True, description='train: random horizontal flip')
    use_flip: Union[bool, None] = Field(None, description='older BasicSR name of use_hflip (wins when given)')
    use_rot: bool = Field(True, description='train: random vertical flip and 90-degree rotation')
    meta_info_file: Union[str, None] = Field(None, description='disk: a file listing the gt names to use, in order')
    seed: Union[int, None] = Field(None, description='train: each index always draws the same crop and flips')

    @model_validator(mode='after')
    def _train_crops(self) -> PairedImageOptions:
        if self.phase == 'train' and self.gt_size is None:
            raise ValueError('gt_size: the train phase needs the gt crop size')
        return self


@DATASET_REGISTRY.register()
class PairedImageDataset(Dataset):
    """lq/gt pairs, BasicSR's `PairedImageDataset` for super-resolution and restoration.

    Options: `PairedImageOptions` (BasicSR's keys, `use_flip` and `meta_info_file` included).
    Training crops aligned random patches (`gt_size` of gt, `gt_size // scale` of lq at the same place)
    and flips/rotates both alike; other phases crop gt to `scale` times the lq size. Returns `lq`, `gt`
    (RGB CHW float), `lq_path`, `gt_path`.
    """

    options = PairedImageOptions

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.o = o = self.options.parse(opt, type(self).__name__)
        self.io_backend = self.io_backend_opt = dict(o.io_backend or {'type': 'disk'})
        self.gt_folder, self.lq_folder = o.dataroot_gt, o.dataroot_lq
        self.scale = o.scale
        self.mean, self.std = o.mean, o.std
        self.phase = o.phase
        self.seed = o.seed
        lmdb = is_lmdb(self.io_backend)
        self.filename_tmpl = o.filename_tmpl
        self.pairs = self.paths = paired_paths(self.lq_folder, self.gt_folder, o.filename_tmpl, lmdb,
                                               o.meta_info_file)  # ours, BasicSR's
        if lmdb:
            self.file_client = build_file_client(self.io_backend, [self.lq_folder, self.gt_folder], ['lq', 'gt'])
        else:
            self.file_client = build_file_client(self.io_backend)

    def __len__(self) -> int:
        return len(self.pairs)

    def _read(self, index: int) -> tuple[int, np.ndarray, np.ndarray]:
        pair = self.pairs[index]
        gt = imfrombytes(self.file_client.get(pair['gt_path'], 'gt'), float32=True, source=pair['gt_path'])
        lq = imfrombytes(self.file_client.get(pair['lq_path'], 'lq'), float32=True, source=pair['lq_path'])
        return index, gt, lq

    def __getitem__(self, index: int) -> dict:
        index, img_gt, img_lq = read_or_skip(self._read, index, len(self.pairs),
                                             self.o.skip_bad_images, 'PairedImageDataset')
        pair = self.pairs[index]
        if self.phase == 'train':
            rng = np.random.default_rng([int(self.seed), index]) if self.seed is not None else as_rng(None)
            img_gt, img_lq = paired_random_crop(img_gt, img_lq, self.o.gt_size, self.scale, pair['gt_path'], rng)
            hflip = self.o.use_hflip if self.o.use_flip is None else self.o.use_flip
            img_gt, img_lq = augment([img_gt, img_lq], hflip, self.o.use_rot, rng)
        else:
            img_gt = img_gt[: img_lq.shape[0] * self.scale, : img_lq.shape[1] * self.scale]
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        return {'lq': normalize(img_lq, self.mean, self.std), 'gt': normalize(img_gt, self.mean, self.std),
                'lq_path': os.fspath(pair['lq_path']), 'gt_path': os.fspath(pair['gt_path'])}
