"""PairedImageDataset with BasicSR's SR semantics: aligned crops under flips/rotations, meta_info_file."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from gfpgan.data import build_dataset

TRANSFORMS = [(h, v, t) for h in (0, 1) for v in (0, 1) for t in (0, 1)]


def apply(img: np.ndarray, h: int, v: int, t: int) -> np.ndarray:
    if h:
        img = img[:, ::-1]
    if v:
        img = img[::-1]
    return img.transpose(1, 0, 2) if t else img


def undo(img: np.ndarray, h: int, v: int, t: int) -> np.ndarray:
    if t:
        img = img.transpose(1, 0, 2)
    if v:
        img = img[::-1]
    return img[:, ::-1] if h else img


def nearest_pairs(tmp_path, n=2, lq_size=(12, 10), scale=4, gt_sub='', tmpl='{}'):
    """lq random (every crop is unique), gt = lq with each pixel repeated scale x scale."""
    rng = np.random.default_rng(0)
    gt_dir, lq_dir = tmp_path / 'gt' / gt_sub, tmp_path / 'lq'
    gt_dir.mkdir(parents=True)
    lq_dir.mkdir()
    for i in range(n):
        lq = (rng.random((*lq_size, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(lq_dir / f'{tmpl.format(f"{i:02d}")}.png'), lq)
        cv2.imwrite(str(gt_dir / f'{i:02d}.png'), lq.repeat(scale, 0).repeat(scale, 1))
    return tmp_path / 'gt', lq_dir


def locate(crop: np.ndarray, full: np.ndarray) -> tuple[int, int] | None:
    ch, cw = crop.shape[:2]
    for top in range(full.shape[0] - ch + 1):
        for left in range(full.shape[1] - cw + 1):
            if np.array_equal(full[top : top + ch, left : left + cw], crop):
                return top, left
    return None


def test_train_crops_align_under_flips_and_rotations(tmp_path):
    gt_dir, lq_dir = nearest_pairs(tmp_path, n=1, tmpl='{}x4')
    full_lq = cv2.imread(str(lq_dir / '00x4.png'))[:, :, ::-1].astype(np.float32) / 255
    full_gt = cv2.imread(str(gt_dir / '00.png'))[:, :, ::-1].astype(np.float32) / 255
    used = set()
    for seed in range(12):
        ds = build_dataset(dict(type='PairedImageDataset', dataroot_gt=str(gt_dir), dataroot_lq=str(lq_dir),
                                filename_tmpl='{}x4', scale=4, gt_size=24, use_hflip=True, use_rot=True,
                                phase='train', seed=seed))
        s = ds[0]
        lq, gt = s['lq'].permute(1, 2, 0).numpy(), s['gt'].permute(1, 2, 0).numpy()
        assert lq.shape == (6, 6, 3) and gt.shape == (24, 24, 3)
        found = [(tr, locate(undo(lq, *tr), full_lq)) for tr in TRANSFORMS]
        tr, (top, left) = next((tr, pos) for tr, pos in found if pos is not None)
        used.add(tr)
        # the gt crop is the same transform of the gt region at (top, left) * scale
        region = full_gt[top * 4 : top * 4 + 24, left * 4 : left * 4 + 24]
        np.testing.assert_array_equal(gt, apply(region, *tr))
    assert len(used) >= 3  # flips and rotations happened


def test_flips_and_rotations_can_be_turned_off(tmp_path):
    gt_dir, lq_dir = nearest_pairs(tmp_path, n=1)
    full_lq = cv2.imread(str(lq_dir / '00.png'))[:, :, ::-1].astype(np.float32) / 255
    for seed in range(5):
        s = build_dataset(dict(type='PairedImageDataset', dataroot_gt=str(gt_dir), dataroot_lq=str(lq_dir), scale=4,
                               gt_size=16, use_hflip=False, use_rot=False, phase='train', seed=seed))[0]
        assert locate(s['lq'].permute(1, 2, 0).numpy(), full_lq) is not None


def test_meta_info_file_picks_and_orders_pairs(tmp_path):
    gt_dir, lq_dir = nearest_pairs(tmp_path, n=3, gt_sub='sub', tmpl='{}_lr')
    meta = tmp_path / 'meta_info.txt'
    meta.write_text('sub/02.png (48,40,3)\n\nsub/00.png (48,40,3)\n')
    opt = dict(type='PairedImageDataset', dataroot_gt=str(gt_dir), dataroot_lq=str(lq_dir), filename_tmpl='{}_lr',
               meta_info_file=str(meta), scale=4, phase='val')
    ds = build_dataset(opt)
    assert len(ds) == 2
    assert ds[0]['gt_path'].endswith('sub/02.png') and ds[0]['lq_path'].endswith('lq/02_lr.png')
    s = ds[1]
    assert s['gt'].shape == (3, 48, 40) and torch.equal(s['gt'][:, ::4, ::4], s['lq'])
    meta.write_text('sub/01.png\nsub/07.png\n')
    with pytest.raises(FileNotFoundError, match=r"07_lr\.png.*filename_tmpl"):
        build_dataset(opt)


def test_older_use_flip_name_switches_the_flip(tmp_path):
    gt_dir, lq_dir = nearest_pairs(tmp_path, n=1)
    full_lq = cv2.imread(str(lq_dir / '00.png'))[:, :, ::-1].astype(np.float32) / 255
    base = dict(type='PairedImageDataset', dataroot_gt=str(gt_dir), dataroot_lq=str(lq_dir), scale=4, gt_size=16,
                use_rot=False, phase='train')
    flipped = 0
    for seed in range(8):
        off = build_dataset(dict(base, use_flip=False, seed=seed))[0]['lq'].permute(1, 2, 0).numpy()
        assert locate(off, full_lq) is not None
        on = build_dataset(dict(base, use_flip=True, seed=seed))[0]['lq'].permute(1, 2, 0).numpy()
        flipped += locate(on, full_lq) is None and locate(on[:, ::-1], full_lq) is not None
    assert flipped > 0
