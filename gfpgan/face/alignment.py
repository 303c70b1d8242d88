"""Similarity alignment of a face to the FFHQ 512 five-point template, and its inverse.

The template is the published FFHQ-512 landmark layout (image-left eye, image-right eye, nose tip,
image-left and image-right mouth corners) that GFPGAN's crops and training data use; crops of another
size use the template scaled. The warp fills outside pixels with (135, 133, 132), the BGR border
colour of upstream's crops, so the network sees what it was trained on.
"""
from __future__ import annotations

import cv2
import numpy as np

FFHQ_TEMPLATE_512 = np.array(
    [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935], [201.26117, 371.41043],
     [313.08905, 371.15118]],
    np.float32,
)
BORDER_VALUE = (135, 133, 132)


def face_template(face_size: int = 512) -> np.ndarray:
    """The five-point template for a `face_size` x `face_size` crop."""
    return FFHQ_TEMPLATE_512 * (face_size / 512.0)


def similarity_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking `src` points onto `dst`.

    Closed form (Umeyama without reflection); returns a 2x3 float64 matrix.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    s, d = src - src_mean, dst - dst_mean
    # Similarity as [[a, -b], [b, a]]: solve a, b minimising |(a, -b; b, a) s - d|^2.
    norm = (s ** 2).sum()
    if norm == 0:
        raise ValueError('Cannot align a face whose landmarks all coincide.')
    a = (s * d).sum() / norm
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / norm
    rot = np.array([[a, -b], [b, a]])
    return np.hstack([rot, (dst_mean - rot @ src_mean)[:, None]])


def estimate_alignment(landmarks: np.ndarray, face_size: int = 512, method: str = 'lmeds') -> np.ndarray:
    """2x3 similarity matrix taking image `landmarks` (5, 2) onto the template of `face_size`.

    'lmeds' is OpenCV's least-median-of-squares fit (what upstream uses: robust to one bad landmark),
    falling back to the least-squares fit when OpenCV finds no model; 'lstsq' is the plain fit.
    """
    dst = face_template(face_size)
    src = np.asarray(landmarks, np.float32).reshape(-1, 2)
    if method == 'lmeds':
        matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
        if matrix is not None:
            return matrix
    elif method != 'lstsq':
        raise ValueError(f"Unknown alignment method {method!r}; use 'lmeds' or 'lstsq'.")
    return similarity_lstsq(src, dst)


def warp_face(img: np.ndarray, affine: np.ndarray, face_size: int = 512,
              border_mode: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """Cut the aligned `face_size` crop out of `img` with `affine` (bilinear; outside pixels are
    (135, 133, 132) with the default `border_mode`, or an OpenCV reflection mode)."""
    return cv2.warpAffine(img, affine, (face_size, face_size), flags=cv2.INTER_LINEAR,
                          borderMode=border_mode, borderValue=BORDER_VALUE)


def inverse_affine(affine: np.ndarray, upscale: float = 1.0) -> np.ndarray:
    """Matrix taking crop pixels back to pixels of the input image enlarged `upscale` times.

    OpenCV puts pixel centres at integers, and an image resized by s maps input x to s * (x + 0.5) - 0.5,
    so the upscaled inverse is s * A^-1 plus a (s - 1) / 2 shift; with s = 1 it is the plain inverse.
    """
    inv = cv2.invertAffineTransform(np.asarray(affine, np.float64))
    inv = inv * upscale
    inv[:, 2] += 0.5 * (upscale - 1)
    return inv


def transform_points(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Apply a 2x3 matrix to (N, 2) points."""
    points = np.asarray(points, np.float64)
    return points @ np.asarray(affine, np.float64)[:, :2].T + np.asarray(affine, np.float64)[:, 2]
