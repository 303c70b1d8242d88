"""Turn an uploaded file into an image the restorer can take, within the app's size limits.

A web page takes files from anyone, so each upload is checked before it can cost memory: the file's
size, then the pixel count its header claims (read without decoding, so a small file that claims
a huge image is refused before it is unpacked), then the decoded image is shrunk until the restored
result (input x upscale) fits the output limit. Every refusal and every shrink is said in words that
name the file, for the page to show.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gfpgan.utils.image_io import ImageReadError, imfrombytes

# A header claiming more than this is refused without decoding it: decoding alone would take
# several GiB (uint8 plus the float copy a 16-bit image goes through).
MAX_DECODE_MEGAPIXELS = 150.0


class UploadError(ValueError):
    """An upload the app refuses; the message names the file and says what to do."""


@dataclass(frozen=True)
class UploadLimits:
    """max_file_mb: largest upload accepted; max_output_megapixels: largest restored image made
    (bigger inputs are downscaled to fit, and the page says so)."""

    max_file_mb: float = 25.0
    max_output_megapixels: float = 16.0

    def __post_init__(self) -> None:
        if self.max_file_mb <= 0 or self.max_output_megapixels <= 0:
            raise ValueError(f'Upload limits must be > 0, got {self}.')


@dataclass
class Upload:
    """A decoded upload: BGR uint8 `image`, the user's file `name`, and `note` (what was changed, or '')."""

    image: np.ndarray
    name: str
    note: str = ''


def check_header(path: str | os.PathLike, name: str) -> None:
    """Refuse a file whose header claims more than `MAX_DECODE_MEGAPIXELS`, reading the header only.

    Files Pillow cannot parse pass: the decoder then names what is wrong with them.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except Image.DecompressionBombError:  # Pillow's own guard, at a larger size than ours
        w = h = None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return
    if w is None or w * h / 1e6 > MAX_DECODE_MEGAPIXELS:
        size = 'an image' if w is None else f'a {w}x{h} image ({w * h / 1e6:.0f} Mpx)'
        raise UploadError(f'{name}: {size} is larger than the app decodes ({MAX_DECODE_MEGAPIXELS:g} Mpx); '
                          'resize it before uploading.')


def read_upload(path: str | os.PathLike, limits: UploadLimits, upscale: float, aligned: bool = False,
                name: str | None = None) -> Upload:
    """Read `path` as a BGR uint8 image that, restored at `upscale`, stays within `limits`.

    16-bit, gray, alpha and CMYK files are converted (`gfpgan.utils.image_io`); aligned face crops are
    resized to the network's input anyway, so only the decode guards apply to them. Raises
    `UploadError` naming the file for anything empty, too large or not an image.
    """
    name = name or Path(path).name
    size_mb = os.path.getsize(path) / 2**20
    if size_mb > limits.max_file_mb:
        raise UploadError(f'{name}: the file is {size_mb:.1f} MB, over the {limits.max_file_mb:g} MB upload '
                          'limit; upload a smaller file (or start the app with a larger --max_file_mb).')
    check_header(path, name)
    try:
        img = imfrombytes(Path(path).read_bytes(), source=name)
    except ImageReadError as err:
        raise UploadError(f'{err} Upload a JPEG, PNG, WebP, BMP or TIFF photo.') from err
    if aligned:
        return Upload(img, name)
    return shrink_to_fit(img, name, limits.max_output_megapixels, upscale)


def shrink_to_fit(img: np.ndarray, name: str, max_output_megapixels: float, upscale: float) -> Upload:
    """Downscale `img` (area filter) so that `upscale` times it has at most `max_output_megapixels`."""
    h, w = img.shape[:2]
    out_mp = h * w * upscale**2 / 1e6
    if out_mp <= max_output_megapixels:
        return Upload(img, name)
    factor = (max_output_megapixels / out_mp) ** 0.5
    new_w, new_h = max(1, int(w * factor)), max(1, int(h * factor))
    small = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_AREA)
    note = (f'{name}: {w}x{h} photo downscaled to {new_w}x{new_h} so that the {upscale:g}x result '
            f'({round(new_w * upscale)}x{round(new_h * upscale)}) stays within the app\'s '
            f'{max_output_megapixels:g} Mpx limit (--max_megapixels).')
    return Upload(small, name, note)
