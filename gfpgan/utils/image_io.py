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
    """An image file is missing, empty, truncated or not an image; `path` names it."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


def is_image_file(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(IMG_EXTENSIONS)


_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_JPEG_SIGNATURE = b'\xff\xd8\xff'


def _check_complete(content: bytes, source: str) -> None:
    """Raise if a PNG or JPEG stream is cut short.

    Some decoder builds return the decoded part of a truncated file with only a log warning (grey or
    black bottom rows in the training data); the end markers tell reliably: a PNG has an IEND chunk
    (found by walking the chunks), and a JPEG has an EOI marker after its first scan (searched after
    the scan, since an EXIF thumbnail carries an EOI of its own).
    """
    if content.startswith(_PNG_SIGNATURE):
        if not _png_has_end(content):
            raise ImageReadError(f'{source}: truncated PNG (no IEND chunk); re-download or re-export the file.', source)
    elif content.startswith(_JPEG_SIGNATURE):
        scan = _jpeg_first_scan(content)
        if scan < 0 or content.rfind(b'\xff\xd9') < scan:
            raise ImageReadError(f'{source}: truncated JPEG (no end-of-image marker after the image data); '
                                 're-download or re-export the file.', source)


def _png_has_end(content: bytes) -> bool:
    """Walk the chunks (length, type, data, CRC) to an IEND chunk; False when the data ends first."""
    pos, n = len(_PNG_SIGNATURE), len(content)
    while pos + 8 <= n:
        if content[pos + 4 : pos + 8] == b'IEND':
            return True
        pos += 12 + int.from_bytes(content[pos : pos + 4], 'big')
    return False


def _jpeg_first_scan(content: bytes) -> int:
    """Offset of the first start-of-scan (SOS) segment, walking the marker segments; -1 if cut short."""
    pos, n = 2, len(content)
    while pos + 4 <= n:
        if content[pos] != 0xFF:
            return -1
        marker = content[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:
            return pos
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length field
            pos += 2
            continue
        pos += 2 + int.from_bytes(content[pos + 2 : pos + 4], 'big')
    return -1


def imfrombytes(content: bytes, float32: bool = False, source: str = '<bytes>', channels: int = 3) -> np.ndarray:
    """Decode image bytes to BGR HxWx3 (uint8, or float32 in [0, 1]).

    16-bit images are scaled to 8 bit (or to [0, 1] exactly with float32), gray is replicated to
    three channels, and an alpha channel is composited onto white (transparent areas look white,
    as in an image viewer). JPEGs are decoded in color mode, so CMYK/YCCK files are converted and EXIF
    orientation is applied. `channels=1` returns HxWx1 gray, `channels=4` BGRA (alpha kept, opaque
    when the file has none). Truncated PNG/JPEG files raise rather than decode partially.
    """
    if channels not in (1, 3, 4):
        raise ValueError(f'{source}: channels must be 1, 3 or 4, got {channels}.')
    if len(content) == 0:
        raise ImageReadError(f'{source}: the file is empty (0 bytes).', source)
    _check_complete(content, source)
    buf = np.frombuffer(content, np.uint8)
    is_jpeg = content.startswith(_JPEG_SIGNATURE)
    if is_jpeg:
        flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    else:
        flag = cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH
    try:
        img = cv2.imdecode(buf, flag)
    except cv2.error as err:
        raise ImageReadError(f'{source}: OpenCV could not decode it ({err}).', source) from err
    if img is None:
        raise ImageReadError(
            f'{source}: not a readable image (truncated, corrupt, or not an image format OpenCV can decode).', source
        )
    return to_bgr(img, float32=float32, source=source, channels=channels)


def to_bgr(img: np.ndarray, float32: bool = False, source: str = '<array>', channels: int = 3) -> np.ndarray:
    """Normalise any decoded image (gray, BGRA, 16-bit, float) to BGR with 3 channels (or gray/BGRA)."""
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(f'{source}: unsupported image shape {img.shape}.', source)
    have = img.shape[2]
    if img.dtype == np.uint8 and have == channels:  # the common case: no conversion at all
        return _to_float(img, 255.0) if float32 else img
    if img.dtype == np.uint16:
        scale = 65535.0
    elif img.dtype == np.uint8:
        scale = 255.0
    elif np.issubdtype(img.dtype, np.floating):
        scale = 1.0
    else:
        raise ImageReadError(f'{source}: unsupported pixel type {img.dtype}.', source)
    out = _to_float(img, scale)
    alpha = None
    if have in (2, 4):
        out, alpha = out[:, :, :-1], out[:, :, -1:]
    if channels == 4:
        color = np.repeat(out, 3, axis=2) if out.shape[2] == 1 else out
        out = np.concatenate([color, alpha if alpha is not None else np.ones_like(out[:, :, :1])], axis=2)
    else:
        if alpha is not None:  # composite onto white
            out = out * alpha + (1.0 - alpha)
        if channels == 1 and out.shape[2] == 3:
            out = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_BGR2GRAY)[:, :, None]
        elif channels == 3 and out.shape[2] == 1:
            out = np.repeat(out, 3, axis=2)
    np.clip(out, 0, 1, out=out)  # `out` is always a temporary of ours here
    if float32:
        return np.ascontiguousarray(out)
    return (out * 255.0).round().astype(np.uint8)


def _to_float(img: np.ndarray, scale: float) -> np.ndarray:
    """One float32 copy scaled into [0, 1] (in place after the cast: no second full-size temporary)."""
    out = img.astype(np.float32)
    if scale != 1.0:
        out /= np.float32(scale)  # divide (not multiply by 1/scale): bit-identical to BasicSR's img / 255.
    return out


def imread(path: str | os.PathLike, float32: bool = False, channels: int = 3) -> np.ndarray:
    """Read an image file as BGR HxWx3 (see `imfrombytes`); raise `ImageReadError` naming the file on any failure."""
    path = str(path)
    try:
        with open(path, 'rb') as f:
            content = f.read()
    except OSError as err:
        raise ImageReadError(f'{path}: cannot open ({err.strerror}).', path) from err
    return imfrombytes(content, float32=float32, source=path, channels=channels)


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
