"""Paste restored faces back into the (enlarged) image through a feathered mask.

Each face is warped only into its own bounding box of the output, never into a full-size canvas, so
pasting costs the same for a 1-megapixel and a 100-megapixel image. The default mask is the crop
square with soft edges (upstream blurs an eroded warped square the same way); a face-parsing mask can
be passed instead when the parsing network is available.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np


@lru_cache(maxsize=4)
def feather_mask(face_size: int, feather: float = 1 / 16, inset: float = 1 / 128) -> np.ndarray:
    """float32 (face_size, face_size) mask: 1 inside, ramping to 0 over `feather` of the side at the edges.

    The outer `inset` of the side is 0, so the crop's border colour never leaks into the result.
    """
    ramp_len = max(1.0, feather * face_size)
    dist = np.minimum(np.arange(face_size), np.arange(face_size)[::-1]).astype(np.float32) + 0.5
    ramp = np.clip((dist - inset * face_size) / ramp_len, 0.0, 1.0)
    mask = np.minimum(ramp[:, None], ramp[None, :])
    mask.setflags(write=False)
    return mask


def _face_roi(inv_affine: np.ndarray, face_size: int, out_h: int, out_w: int) -> tuple[int, int, int, int] | None:
    corners = np.array([[0, 0], [face_size, 0], [0, face_size], [face_size, face_size]], np.float64) - 0.5
    pts = corners @ inv_affine[:, :2].T + inv_affine[:, 2]
    x0, y0 = np.floor(pts.min(0)).astype(int) - 1
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, out_w), min(y1, out_h)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def paste_face(canvas: np.ndarray, face: np.ndarray, inv_affine: np.ndarray, mask: np.ndarray | None = None) -> None:
    """Blend one restored `face` crop into `canvas` (uint8 BGR, modified in place) at `inv_affine`.

    `inv_affine` maps crop pixels to canvas pixels (see `alignment.inverse_affine`); `mask` is a float
    mask in crop space (default: `feather_mask`).
    """
    face_size = face.shape[0]
    if face.shape[:2] != (face_size, face_size):
        raise ValueError(f'paste_face expects a square face crop, got shape {face.shape}.')
    mask = feather_mask(face_size) if mask is None else mask
    roi = _face_roi(inv_affine, face_size, *canvas.shape[:2])
    if roi is None:  # the face lies wholly outside the image
        return
    x0, y0, x1, y1 = roi
    local = inv_affine.copy()
    local[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    warped_face = cv2.warpAffine(face, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    warped_mask = cv2.warpAffine(np.ascontiguousarray(mask, np.float32), local, size, flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)[:, :, None]
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    blended = warped_mask * warped_face.astype(np.float32) + (1.0 - warped_mask) * region
    canvas[y0:y1, x0:x1] = np.clip(blended.round(), 0, 255).astype(np.uint8)
