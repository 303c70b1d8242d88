"""Image reading/writing and numpy <-> tensor conversion, shared by data, metrics and inference.

Reading is strict about what it returns (BGR, 3 channels, uint8 or float32 in [0, 1]) and loud about
what it cannot read: every failure names the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from gfpgan.utils.checkpoint_io import atomic_write

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')


class ImageReadError(ValueError):
    """An image file is missing, empty, truncated or not an image."""


def is_image_file(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(IMG_EXTENSIONS)


def imfrombytes(content: bytes, float32: bool = False, source: str = '<bytes>') -> np.ndarray:
    """Decode image bytes to BGR HxWx3 (uint8, or float32 in [0, 1]).

    16-bit images are scaled to 8 bit (or to [0, 1] exactly with float32), gray is replicated to
    three channels, and an alpha channel is composited onto white (transparent areas look white,
    as in an image viewer).
    """
    if len(content) == 0:
        raise ImageReadError(f'{source}: the file is empty (0 bytes).')
    buf = np.frombuffer(content, np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if img is None:
        raise ImageReadError(
            f'{source}: not a readable image (truncated, corrupt, or not an image format OpenCV can decode).'
        )
    return to_bgr(img, float32=float32, source=source)


def to_bgr(img: np.ndarray, float32: bool = False, source: str = '<array>') -> np.ndarray:
    """Normalise any decoded image (gray, BGRA, 16-bit, float) to BGR with 3 channels."""
    if img.dtype == np.uint16:
        scale = 65535.0
    elif img.dtype == np.uint8:
        scale = 255.0
    elif np.issubdtype(img.dtype, np.floating):
        scale = 1.0
    else:
        raise ImageReadError(f'{source}: unsupported pixel type {img.dtype}.')
    out = img.astype(np.float32) / scale
    if out.ndim == 2:
        out = out[:, :, None]
    if out.ndim != 3 or out.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(f'{source}: unsupported image shape {img.shape}.')
    channels = out.shape[2]
    if channels in (2, 4):  # gray+alpha or BGRA: composite onto white
        alpha = out[:, :, -1:]
        out = out[:, :, :-1] * alpha + (1.0 - alpha)
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    out = np.clip(out, 0, 1)
    if float32:
        return np.ascontiguousarray(out)
    if img.dtype == np.uint8 and channels == 3:
        return img
    return (out * 255.0).round().astype(np.uint8)


def imread(path: str | os.PathLike, float32: bool = False) -> np.ndarray:
    """Read an image file as BGR HxWx3; raise `ImageReadError` naming the file on any failure."""
    path = str(path)
    try:
        with open(path, 'rb') as f:
            content = f.read()
    except OSError as err:
        raise ImageReadError(f'{path}: cannot open ({err.strerror}).') from err
    return imfrombytes(content, float32=float32, source=path)


def imwrite(img: np.ndarray, path: str | os.PathLike, params: Sequence[int] | None = None) -> None:
    """Write an image atomically (temp file + rename), creating parent folders."""
    path = Path(path)
    ext = path.suffix or '.png'
    ok, encoded = cv2.imencode(ext, img, list(params or []))
    if not ok:
        raise OSError(f'Could not encode an image of shape {img.shape} as {ext} for {path}.')
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(encoded.tobytes()))


def img2tensor(imgs: np.ndarray | list[np.ndarray], bgr2rgb: bool = True, float32: bool = True):
    """HWC numpy image(s) -> CHW tensor(s), optionally BGR -> RGB."""

    def convert(img: np.ndarray) -> torch.Tensor:
        if img.ndim == 2:
            img = img[:, :, None]
        if img.shape[2] == 3 and bgr2rgb:
            img = img[:, :, ::-1]
        t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        return t.float() if float32 else t

    return [convert(i) for i in imgs] if isinstance(imgs, list) else convert(imgs)


def tensor2img(
    tensor: torch.Tensor | list[torch.Tensor],
    rgb2bgr: bool = True,
    out_type: type = np.uint8,
    min_max: tuple[float, float] = (0, 1),
):
    """CHW / NCHW (N=1) tensor(s) in `min_max` -> HWC numpy image(s), uint8 in [0, 255] by default.

    uint8 output is rounded, as BasicSR does, so metrics computed on saved images agree with it.
    """

    def convert(t: torch.Tensor) -> np.ndarray:
        t = t.detach().float().cpu().clamp_(*min_max)
        t = (t - min_max[0]) / (min_max[1] - min_max[0])
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise ValueError(f'tensor2img takes one image at a time, got a batch of {t.shape[0]}.')
            t = t[0]
        if t.dim() == 3:
            img = t.numpy().transpose(1, 2, 0)
            if img.shape[2] == 1:
                img = img[:, :, 0]
            elif rgb2bgr:
                img = img[:, :, ::-1]
        elif t.dim() == 2:
            img = t.numpy()
        else:
            raise ValueError(f'tensor2img expects a 2-, 3- or 4-D tensor, got {t.dim()}-D.')
        if out_type == np.uint8:
            return (img * 255.0).round().astype(np.uint8)
        return np.ascontiguousarray(img.astype(out_type))

    return [convert(t) for t in tensor] if isinstance(tensor, list) else convert(tensor)
