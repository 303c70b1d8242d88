"""Landmark distance (LMD): how far a restored face's geometry moved from the reference face.

The 68 iBUG landmarks come from the offline detector of `gfpgan.face.detection` (dlib's HOG detector
and shape predictor, weights inside the installed wheels). Both images get their landmarks fitted in
one face box, so detector box jitter does not count as a geometry change.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from gfpgan.utils.registry import METRIC_REGISTRY


@lru_cache(maxsize=1)
def landmark_detector():
    """The offline 68-point detector, loaded once per process (~4 s)."""
    from gfpgan.face.detection import DlibFaceDetector

    return DlibFaceDetector()


def _largest_box(img: np.ndarray) -> np.ndarray | None:
    faces = landmark_detector().detect_68(img)
    if not faces:
        return None
    return max((box for box, _, _ in faces), key=lambda b: float((b[2] - b[0]) * (b[3] - b[1])))


def _bgr(img: np.ndarray, input_order: str) -> np.ndarray:
    arr = np.asarray(img)
    if input_order == 'CHW':
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f'calculate_lmd expects BGR images (H, W, 3), got shape {np.shape(img)}.')
    return np.ascontiguousarray(np.clip(arr, 0, 255).astype(np.uint8))


@METRIC_REGISTRY.register(better='lower')
def calculate_lmd(img: np.ndarray, img2: np.ndarray, input_order: str = 'HWC', **kwargs) -> float:
    """Mean distance (pixels at the reference's resolution) between the 68 landmarks of `img` and `img2`.

    `img` is the restored face, `img2` the reference (BGR [0, 255]; sizes may differ: the restored
    landmarks are scaled to the reference's size). The face box is the largest face the detector finds
    in the reference, else in the restored image, else the whole frame (aligned crops fill it); the
    landmarks of both images are fitted in that box. So a face the detector misses still counts, with
    landmarks fitted where the face should be: a restoration that breaks the face scores a large
    distance instead of being left out, and the metric is always a number.
    """
    restored, reference = _bgr(img, input_order), _bgr(img2, input_order)
    (rh, rw), (h, w) = restored.shape[:2], reference.shape[:2]
    to_ref = np.array([w / rw, h / rh, w / rw, h / rh], np.float32)  # restored -> reference pixels
    box = _largest_box(reference)
    if box is None:
        box_restored = _largest_box(restored)
        box = box_restored * to_ref if box_restored is not None else np.array([0, 0, w - 1, h - 1], np.float32)
    detector = landmark_detector()
    points_ref = detector.landmarks68(reference, box)
    points = detector.landmarks68(restored, box / to_ref) * to_ref[:2]
    return float(np.linalg.norm(points - points_ref, axis=1).mean())
