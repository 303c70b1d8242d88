"""Geometric augmentation and cropping on numpy HWC images (views where possible: no needless copies)."""

from __future__ import annotations

import cv2
import numpy as np


def augment(
    imgs: np.ndarray | list[np.ndarray], hflip: bool = True, rotation: bool = True,
    rng: np.random.Generator | None = None, return_status: bool = False,
):
    """Random horizontal flip, vertical flip and 90-degree rotation, the same for every image in `imgs`.

    Returns the image(s) (views, not copies) and, with `return_status`, `(hflip, vflip, rot90)` as drawn.
    """
    from gfpgan.data.degradations import as_rng

    rng = as_rng(rng)
    do_h = hflip and rng.random() < 0.5
    do_v = rotation and rng.random() < 0.5
    do_r = rotation and rng.random() < 0.5

    def apply(img: np.ndarray) -> np.ndarray:
        if do_h:
            img = img[:, ::-1]
        if do_v:
            img = img[::-1]
        if do_r:
            img = img.transpose(1, 0, 2) if img.ndim == 3 else img.T
        return img

    out = [apply(i) for i in imgs] if isinstance(imgs, list) else apply(imgs)
    return (out, (do_h, do_v, do_r)) if return_status else out


def paired_random_crop(
    img_gt: np.ndarray, img_lq: np.ndarray, gt_size: int, scale: int, gt_path: str = '',
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Aligned random crops: `gt_size` from gt and `gt_size // scale` from lq at the matching place."""
    from gfpgan.data.degradations import as_rng

    h_lq, w_lq = img_lq.shape[:2]
    h_gt, w_gt = img_gt.shape[:2]
    lq_size = gt_size // scale
    if (h_gt, w_gt) != (h_lq * scale, w_lq * scale):
        raise ValueError(f'{gt_path}: gt size {(h_gt, w_gt)} is not {scale}x the lq size {(h_lq, w_lq)}; '
                         'check `scale` and that the lq/gt folders hold matching files.')
    if h_lq < lq_size or w_lq < lq_size:
        raise ValueError(f'{gt_path}: lq size {(h_lq, w_lq)} is smaller than the crop {lq_size} '
                         f'(gt_size {gt_size} / scale {scale}); lower gt_size or remove the image.')
    rng = as_rng(rng)
    top, left = int(rng.integers(0, h_lq - lq_size + 1)), int(rng.integers(0, w_lq - lq_size + 1))
    lq = img_lq[top : top + lq_size, left : left + lq_size]
    gt = img_gt[top * scale : (top + lq_size) * scale, left * scale : (left + lq_size) * scale]
    return gt, lq


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop bottom/right so both sides are multiples of `scale` (a view)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def resize_short_side(img: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is `size`: area filter when shrinking (no aliasing), cubic when growing.

    Float images are assumed to be in [0, 1].
    """
    h, w = img.shape[:2]
    if min(h, w) == size:
        return img
    ratio = size / min(h, w)
    new_w, new_h = max(size, round(w * ratio)), max(size, round(h * ratio))
    interp = cv2.INTER_AREA if ratio < 1 else cv2.INTER_CUBIC
    out = cv2.resize(np.ascontiguousarray(img), (new_w, new_h), interpolation=interp)
    if interp == cv2.INTER_CUBIC and out.dtype.kind == 'f':
        np.clip(out, 0, 1, out=out)  # cubic overshoots at edges; float images live in [0, 1]
    return out[:, :, None] if out.ndim == 2 else out


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """The central `size` x `size` window (a view)."""
    h, w = img.shape[:2]
    if h < size or w < size:
        raise ValueError(f'center_crop: image {h}x{w} is smaller than the crop {size}.')
    top, left = (h - size) // 2, (w - size) // 2
    return img[top : top + size, left : left + size]
