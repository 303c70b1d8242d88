"""The web app's upload checks (gfpgan.app.uploads: photos and videos) and private workspace, without a server.

Also makes the malformed files and the small clip that tests/test_app_server.py sends through the page and the API.
"""
from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from gfpgan.app.uploads import MAX_DECODE_MEGAPIXELS, UploadError, UploadLimits, check_video, read_upload, shrink_to_fit
from gfpgan.app.workspace import Workspace

pytest.importorskip('PIL', reason='the app extra (pip install -e .[app]) brings Pillow')


def photo(h: int = 48, w: int = 64) -> np.ndarray:
    """A smooth BGR test image (gradients), uint8."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], axis=2).astype(np.uint8)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but holds one compressed row: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(b'\x00' * (3 * width + 1)))
            + chunk(b'IEND', b''))


def write_malformed(folder: Path) -> dict[str, Path]:
    """text renamed .png, a 0-byte .png (both refused), a 16-bit PNG and a CMYK JPEG (both valid)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    files = {name: folder / name for name in ('text.png', 'empty.png', 'deep16.png', 'cmyk.jpg')}
    files['text.png'].write_text('this is a text file, not a picture')
    files['empty.png'].write_bytes(b'')
    cv2.imwrite(str(files['deep16.png']), photo().astype(np.uint16) * 257)
    rgb = Image.fromarray(photo()[:, :, ::-1].copy())
    rgb.convert('CMYK').save(files['cmyk.jpg'], quality=95)
    return files


def write_clip(path: Path, frame: np.ndarray, frames: int = 4, fps: int = 5) -> Path:
    """A small MP4 of `frames` copies of `frame` (BGR, even sides)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (frame.shape[1], frame.shape[0]))
    for _ in range(frames):
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def malformed(tmp_path) -> dict[str, Path]:
    return write_malformed(tmp_path / 'uploads')


LIMITS = UploadLimits(max_file_mb=25, max_output_megapixels=16)


def test_unreadable_uploads_are_refused_with_the_file_named(malformed):
    with pytest.raises(UploadError, match=r'text\.png: not a readable image.*Upload a JPEG, PNG'):
        read_upload(malformed['text.png'], LIMITS, upscale=2)
    with pytest.raises(UploadError, match=r'empty\.png: the file is empty \(0 bytes\)'):
        read_upload(malformed['empty.png'], LIMITS, upscale=2)
    # the name the user knows wins over the server-side path
    with pytest.raises(UploadError, match=r'^holiday\.png: '):
        read_upload(malformed['text.png'], LIMITS, upscale=2, name='holiday.png')


def test_16_bit_and_cmyk_uploads_are_converted_not_refused(malformed):
    deep = read_upload(malformed['deep16.png'], LIMITS, upscale=2)
    assert deep.image.dtype == np.uint8 and deep.image.shape == (48, 64, 3) and deep.note == ''
    np.testing.assert_array_equal(deep.image, photo())  # x * 257 / 65535 * 255 is x again
    cmyk = read_upload(malformed['cmyk.jpg'], LIMITS, upscale=2)
    assert cmyk.image.dtype == np.uint8 and cmyk.image.shape == (48, 64, 3)
    assert np.abs(cmyk.image.astype(int) - photo()).mean() < 12  # colours survive the CMYK round trip


def test_a_6000x6000_photo_is_downscaled_and_the_note_says_so(tmp_path):
    big = tmp_path / 'big.jpg'
    cv2.imwrite(str(big), np.full((6000, 6000, 3), 128, np.uint8))
    up = read_upload(big, LIMITS, upscale=2)
    assert up.image.shape == (2000, 2000, 3)  # 2x of it = 16 Mpx, the limit
    assert 'big.jpg: 6000x6000 photo downscaled to 2000x2000' in up.note and '16 Mpx' in up.note
    assert read_upload(big, UploadLimits(max_output_megapixels=400), upscale=2).image.shape == (6000, 6000, 3)
    aligned = read_upload(big, LIMITS, upscale=2, aligned=True)  # a crop is resized to the network anyway
    assert aligned.image.shape == (6000, 6000, 3) and aligned.note == ''


def test_shrink_keeps_the_result_within_the_limit():
    for h, w, upscale, limit in [(1000, 3000, 4, 5.0), (4001, 2999, 1.5, 7.3), (10, 10, 2, 1e-4)]:
        up = shrink_to_fit(np.zeros((h, w, 3), np.uint8), 'x.png', limit, upscale)
        oh, ow = up.image.shape[:2]
        assert oh * ow * upscale**2 / 1e6 <= limit or (oh, ow) == (1, 1)
        assert abs(ow / oh - w / h) < 0.05 * w / h + 1 / oh  # aspect kept
    small = shrink_to_fit(np.zeros((100, 100, 3), np.uint8), 'x.png', 1.0, 2)
    assert small.image.shape == (100, 100, 3) and small.note == ''


def test_oversized_files_and_bomb_headers_are_refused_before_decoding(tmp_path):
    bomb = tmp_path / 'bomb.png'
    bomb.write_bytes(png_claiming(20000, 20000))  # over Pillow's own guard too
    assert bomb.stat().st_size < 100_000
    too_big = rf'bomb\.png: an image is larger than the app decodes \({MAX_DECODE_MEGAPIXELS:g} Mpx\)'
    with pytest.raises(UploadError, match=too_big):
        read_upload(bomb, LIMITS, upscale=1)
    bomb.write_bytes(png_claiming(13000, 12000))
    with pytest.raises(UploadError, match=r'bomb\.png: a 13000x12000 image \(156 Mpx\) is larger than the app decodes'):
        read_upload(bomb, LIMITS, upscale=1)
    ok = tmp_path / 'ok.png'
    cv2.imwrite(str(ok), np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8))
    with pytest.raises(UploadError, match=r'ok\.png: the file is 0\.3 MB, over the 0\.1 MB upload limit.*max_file_mb'):
        read_upload(ok, UploadLimits(max_file_mb=0.1), upscale=1)
    with pytest.raises(ValueError, match='must be > 0'):
        UploadLimits(max_file_mb=0)


def test_files_pillow_cannot_identify_are_refused_even_when_opencv_decodes_them(tmp_path):
    """OpenCV decodes Radiance HDR (and more) under its own 2^30-pixel limit: such files never reach it."""
    hdr = tmp_path / 'scan.hdr'
    cv2.imwrite(str(hdr), np.random.default_rng(0).random((20, 30, 3), dtype=np.float32))
    assert cv2.imdecode(np.fromfile(hdr, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH).shape == (20, 30, 3)
    with pytest.raises(UploadError, match=r'^scan\.hdr: not a readable image \(its format is not one the app '
                                          r'reads\)\. Upload a JPEG, PNG'):
        read_upload(hdr, LIMITS, upscale=1)


def test_video_uploads_are_probed_against_the_limits(tmp_path):
    clip = write_clip(tmp_path / 'clip.mp4', photo(64, 96), frames=6, fps=3)
    ok = check_video(clip, LIMITS, upscale=2)
    assert (ok.upscale, ok.name, ok.note) == (2, 'clip.mp4', '')
    with pytest.raises(UploadError, match=r"^clip\.mp4: 6 frames \(2 s at 3 fps\) is over the app's 5 frame "
                                          r'limit \(--max_video_frames\)'):
        check_video(clip, UploadLimits(max_video_frames=5), upscale=2)
    # 96x64 = 6144 px; 4x would be 98304 px, over 0.05 Mpx: the upscale is lowered to 2.8 (48169 px)
    fitted = check_video(clip, UploadLimits(max_output_megapixels=0.05), upscale=4, name='holiday.mp4')
    assert fitted.upscale == 2.8 and 96 * 64 * fitted.upscale**2 <= 0.05e6
    assert fitted.note.startswith('holiday.mp4: restored at 2.8x instead of 4x so that the 96x64 frames '
                                  '(269x179 restored) stay within')
    with pytest.raises(UploadError, match=r"clip\.mp4: 96x64 frames \(0\.0 Mpx\) are over the app's 0\.005 Mpx "
                                          r'limit \(--max_megapixels\) even at 1x'):
        check_video(clip, UploadLimits(max_output_megapixels=0.005), upscale=1)
    text = tmp_path / 'notes.mp4'
    text.write_text('not a video')
    with pytest.raises(UploadError, match=r'^notes\.mp4: not a readable video \(.*\)\. Upload an MP4') as info:
        check_video(text, LIMITS, upscale=2)
    assert str(tmp_path) not in str(info.value)  # the server-side path is not shown
    with pytest.raises(UploadError, match=r'clip\.mp4: the file is .* MB, over the 1e-05 MB upload limit'):
        check_video(clip, UploadLimits(max_file_mb=1e-5), upscale=2)
    with pytest.raises(ValueError, match='must be > 0'):
        UploadLimits(max_files=0)


def age(folder: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(folder, (past, past))


def test_workspace_sweeps_old_results_on_its_own_and_is_removed(tmp_path):
    ws = Workspace(max_age_s=60, parent=str(tmp_path))
    assert ws.root.parent == tmp_path.resolve() and oct(ws.root.stat().st_mode & 0o777) == '0o700'
    assert ws.sweep_every_s == 6  # a tenth of the age
    old, new = ws.new_request_dir(), ws.new_request_dir()
    (old / 'a.png').write_bytes(b'x')
    age(old, 120)
    ws.sweep()
    assert not old.exists() and new.is_dir() and new.parent == ws.results_dir
    ws.remove()
    assert not ws.root.exists()
    # with no request coming in, the sweeper thread removes what turned old
    ws = Workspace(max_age_s=60, parent=str(tmp_path), sweep_every_s=0.05)
    ws.start_sweeping()
    kept, stale = ws.new_request_dir(), ws.new_request_dir()
    age(stale, 61)
    deadline = time.monotonic() + 10
    while stale.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not stale.exists() and kept.is_dir()
    ws.remove()
    assert not ws.root.exists() and not ws._sweeper.is_alive()
