"""Paste restored faces back into the (enlarged) image through a feathered mask.

Each face is warped only into its own bounding box of the output, never into a full-size canvas, so
pasting costs the same for a 1-megapixel and a 100-megapixel image. The default mask is the crop
square with soft edges (upstream blurs an eroded warped square the same way); a face-parsing mask can
be passed instead when the parsing network is available.

`paste_face` (OpenCV, one face at a time) is the CPU path; `paste_faces_torch` does the same on the
device the faces were restored on (GPU), so a whole photo comes back in one transfer.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F


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


def _sample_grid(inv_affine: np.ndarray, roi: tuple[int, int, int, int], face_size: int,
                 device: torch.device) -> torch.Tensor:
    """(1, h, w, 2) grid_sample coordinates (align_corners=True) of the crop pixel under each ROI pixel.

    `inv_affine` maps crop to canvas pixels (centres at integers, as OpenCV). The positions are those
    OpenCV's bilinear `warpAffine` samples: the inverse map in 1/1024 fixed point (row part and column
    part rounded separately), then rounded to 1/32 pixel. So a mask edge over a high-contrast background
    gets the same blend weight on both paths.
    """
    x0, y0, x1, y1 = roi
    local = np.asarray(inv_affine, np.float64).copy()
    local[:, 2] -= (x0, y0)
    fwd = cv2.invertAffineTransform(local)  # ROI pixel -> crop pixel
    xs = np.arange(x1 - x0, dtype=np.float64)
    ys = np.arange(y1 - y0, dtype=np.float64)
    coords = []
    for row in fwd:  # (x part, y part) of the crop coordinate; the 1-D terms here, the 2-D sum on the device
        by_row = torch.from_numpy(np.rint((row[1] * ys + row[2]) * 1024).astype(np.int64)).to(device)
        by_col = torch.from_numpy(np.rint(row[0] * xs * 1024).astype(np.int64)).to(device)
        coords.append(((by_row[:, None] + by_col[None, :] + 16) >> 5).float() / 32.0)
    return (torch.stack(coords, -1) * (2.0 / (face_size - 1)) - 1.0)[None]


def paste_faces_torch(canvas: torch.Tensor, faces: torch.Tensor, inv_affines: Sequence[np.ndarray],
                      masks: torch.Tensor | None = None) -> torch.Tensor:
    """`paste_face` for a batch of faces on any device: the restored faces and their masks are warped
    with `grid_sample` and blended where they already are (a GPU), so only the result travels back.

    canvas: (H, W, 3) uint8 (BGR, the enlarged background); faces: (N, S, S, 3) uint8 crops; masks:
    (N, S, S) float crop-space masks (default `feather_mask`). Returns a new uint8 (H, W, 3) canvas on
    the canvas' device, equal to `paste_face` applied face after face within one grey level (same
    sample positions as OpenCV; its fixed-point weights against float32 here).
    """
    if canvas.ndim != 3 or canvas.shape[2] != 3 or faces.ndim != 4 or faces.shape[1] != faces.shape[2]:
        raise ValueError(f'paste_faces_torch expects an (H, W, 3) canvas and (N, S, S, 3) faces; got '
                         f'{tuple(canvas.shape)} and {tuple(faces.shape)}.')
    if len(inv_affines) != faces.shape[0]:
        raise ValueError(f'{faces.shape[0]} faces but {len(inv_affines)} inverse affine matrices.')
    device, face_size = canvas.device, faces.shape[1]
    out = canvas.clone()
    if masks is None:
        masks = torch.from_numpy(np.array(feather_mask(face_size)))[None].expand(faces.shape[0], -1, -1)
    masks = masks.to(device, torch.float32)
    faces_f = faces.to(device).permute(0, 3, 1, 2).float()  # (N, 3, S, S)
    for i, inv in enumerate(inv_affines):
        roi = _face_roi(np.asarray(inv, np.float64), face_size, out.shape[0], out.shape[1])
        if roi is None:
            continue
        x0, y0, x1, y1 = roi
        grid = _sample_grid(inv, roi, face_size, device)
        face = F.grid_sample(faces_f[i:i + 1], grid, mode='bilinear', padding_mode='border', align_corners=True)
        face = face.round()  # OpenCV's warp of a uint8 face gives uint8 pixels
        mask = F.grid_sample(masks[i][None, None], grid, mode='bilinear', padding_mode='zeros', align_corners=True)
        face, mask = face[0].permute(1, 2, 0), mask[0].permute(1, 2, 0)
        region = out[y0:y1, x0:x1].float()
        out[y0:y1, x0:x1] = (mask * face + (1.0 - mask) * region).round_().clamp_(0, 255).to(torch.uint8)
    return out
