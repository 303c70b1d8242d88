"""Turn an uploaded file into something the restorer can take, within the app's limits.

A web page takes files from anyone, so each upload is checked before it can cost memory or time. A photo:
the file's size, then the format and pixel count its header claims (read by Pillow without decoding, so a
small file that claims a huge image is refused before it is unpacked, and a file Pillow cannot identify is
refused rather than handed to OpenCV, which decodes more formats under a far larger pixel limit), then the
decoded image is shrunk until the restored result (input x upscale) fits the output limit. A video: its
size, then its header (probed by PyAV): frame size and frame count, and the upscale is lowered until the
restored frames fit the output limit. Every refusal and every change is said in words that name the file,
for the page to show.
"""
from __future__ import annotations

import math
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
PHOTO_FORMATS = 'Upload a JPEG, PNG, WebP, BMP or TIFF photo.'


class UploadError(ValueError):
    """An upload the app refuses; the message names the file and says what to do."""


@dataclass(frozen=True)
class UploadLimits:
    """max_file_mb: largest upload accepted; max_output_megapixels: largest restored image or video frame
    made (bigger photos are downscaled, videos restored at a lower upscale, and the page says so);
    max_files: photos per request; max_video_frames: longest video accepted, in frames."""

    max_file_mb: float = 25.0
    max_output_megapixels: float = 16.0
    max_files: int = 20
    max_video_frames: int = 1800

    def __post_init__(self) -> None:
        if min(self.max_file_mb, self.max_output_megapixels, self.max_files, self.max_video_frames) <= 0:
            raise ValueError(f'Upload limits must be > 0, got {self}.')


@dataclass
class Upload:
    """A decoded upload: BGR uint8 `image`, the user's file `name`, and `note` (what was changed, or '')."""

    image: np.ndarray
    name: str
    note: str = ''


def check_size(path: str | os.PathLike, name: str, limits: UploadLimits) -> None:
    """Refuse a file over `limits.max_file_mb`."""
    size_mb = os.path.getsize(path) / 2**20
    if size_mb > limits.max_file_mb:
        raise UploadError(f'{name}: the file is {size_mb:.1f} MB, over the {limits.max_file_mb:g} MB upload '
                          'limit; upload a smaller file (or start the app with a larger --max_file_mb).')


def check_header(path: str | os.PathLike, name: str) -> None:
    """Refuse a file Pillow cannot identify, or whose header claims more than `MAX_DECODE_MEGAPIXELS`,
    reading the header only.

    Unidentified files are refused, not passed on: OpenCV also decodes formats Pillow does not read
    (Radiance HDR, PFM, ...), and its own pixel limit (2^30 pixels, fixed when cv2 is imported) is far
    above ours, so such a file would be decoded unchecked.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except Image.DecompressionBombError:  # Pillow's own guard, at a larger size than ours
        w = h = None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise UploadError(f'{name}: not a readable image (its format is not one the app reads). '
                          f'{PHOTO_FORMATS}') from err
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
    check_size(path, name, limits)
    if os.path.getsize(path) == 0:
        raise UploadError(f'{name}: the file is empty (0 bytes). {PHOTO_FORMATS}')
    check_header(path, name)
    try:
        img = imfrombytes(Path(path).read_bytes(), source=name)
    except ImageReadError as err:
        raise UploadError(f'{err} {PHOTO_FORMATS}') from err
    if aligned:
        return Upload(img, name)
    return shrink_to_fit(img, name, limits.max_output_megapixels, upscale)


@dataclass
class VideoUpload:
    """A probed video upload: the `upscale` to restore it at (lowered to fit the limit), and `note` ('' or why)."""

    upscale: float
    name: str
    note: str = ''


def check_video(path: str | os.PathLike, limits: UploadLimits, upscale: float, name: str | None = None) -> VideoUpload:
    """Probe the video `path` (header only) and refuse it, or lower `upscale`, to stay within `limits`.

    The frame count is the header's; a header that gives none (or too few) is caught while the clip is
    restored, by the page counting the frames (see `gfpgan.app.ui`).
    """
    from gfpgan.video.io import VideoError, probe

    name = name or Path(path).name
    check_size(path, name, limits)
    try:
        info = probe(path)
    except (VideoError, ImportError) as err:
        detail = str(err).replace(str(path), name).removeprefix(f'{name}: ')  # the user's name, said once
        raise UploadError(f'{name}: {detail} Upload an MP4, MOV, MKV, AVI or WebM clip.') from err
    w, h, frames, limit = info.width, info.height, info.frames, limits.max_output_megapixels
    if frames > limits.max_video_frames:
        raise UploadError(f'{name}: {frames} frames ({frames / float(info.fps):.0f} s at {float(info.fps):g} fps) '
                          f'is over the app\'s {limits.max_video_frames} frame limit (--max_video_frames); '
                          'trim the clip before uploading.')
    if w * h / 1e6 > limit:
        raise UploadError(f'{name}: {w}x{h} frames ({w * h / 1e6:.1f} Mpx) are over the app\'s {limit:g} Mpx '
                          'limit (--max_megapixels) even at 1x; downscale the video before uploading.')
    if w * h * upscale**2 / 1e6 <= limit:
        return VideoUpload(upscale, name)
    fitting = math.floor(math.sqrt(limit * 1e6 / (w * h)) * 10) / 10  # >= 1: 1x fits (checked above)
    note = (f'{name}: restored at {fitting:g}x instead of {upscale:g}x so that the {w}x{h} frames '
            f'({round(w * fitting)}x{round(h * fitting)} restored) stay within the app\'s {limit:g} Mpx limit '
            '(--max_megapixels).')
    return VideoUpload(fitting, name, note)


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
