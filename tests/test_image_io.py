"""Robust image reading: malformed files fail with the file named; odd formats convert to the right values."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from gfpgan.utils.image_io import ImageReadError, imfrombytes, imread


def _gradient(h: int = 24, w: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 7) % 256, (y * 11) % 256, ((x + y) * 5) % 256], axis=2).astype(np.uint8)


def _encode(img: np.ndarray, ext: str, params=()) -> bytes:
    ok, enc = cv2.imencode(ext, img, list(params))
    assert ok
    return enc.tobytes()


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


def test_zero_byte_file_names_the_file(tmp_path):
    path = _write(tmp_path / 'empty.png', b'')
    with pytest.raises(ImageReadError, match=r'empty\.png.*empty \(0 bytes\)') as info:
        imread(path)
    assert info.value.path == str(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ImageReadError, match='nothere.png.*cannot open'):
        imread(tmp_path / 'nothere.png')


def test_text_renamed_png_names_the_file(tmp_path):
    path = _write(tmp_path / 'notes.png', b'this is not an image, just some text\n' * 10)
    with pytest.raises(ImageReadError, match=r'notes\.png.*not a readable image'):
        imread(path)


# (extension, encoder params, format name, bytes of the end marker: PNG's IEND chunk, JPEG's EOI)
@pytest.mark.parametrize('ext, params, kind, end_bytes', [
    ('.png', (), 'PNG', 12),
    ('.jpg', (cv2.IMWRITE_JPEG_QUALITY, 90), 'JPEG', 2),
])
@pytest.mark.parametrize('keep', ['half', 'no_end_marker'])
def test_truncated_file_raises(tmp_path, ext, params, kind, end_bytes, keep):
    data = _encode(_gradient(), ext, params)
    cut = data[: len(data) // 2] if keep == 'half' else data[:-end_bytes]
    path = _write(tmp_path / f'cut{ext}', cut)
    with pytest.raises(ImageReadError, match=rf'cut\{ext}: truncated {kind}'):
        imread(path)


def test_truncated_png_with_iend_text_inside_still_raises(tmp_path):
    """The bytes 'IEND' inside a text chunk must not pass for the end chunk: chunks are walked."""
    import zlib

    data = _encode(_gradient(), '.png')
    body = b'tEXt' + b'Comment\x00IEND IEND IEND'
    chunk = (len(body) - 4).to_bytes(4, 'big') + body + zlib.crc32(body).to_bytes(4, 'big')
    ihdr_end = 8 + 25  # signature + IHDR chunk
    with_text = data[:ihdr_end] + chunk + data[ihdr_end:]
    assert imread(_write(tmp_path / 'ok.png', with_text + b'junk after the end')).shape == (24, 32, 3)
    with pytest.raises(ImageReadError, match='truncated PNG'):
        imread(_write(tmp_path / 'cut.png', with_text[: len(with_text) - 30]))


def test_truncated_jpeg_with_thumbnail_eoi_still_raises(tmp_path):
    """An EXIF thumbnail carries its own EOI early in the file; truncation must still be caught."""
    data = _encode(_gradient(), '.jpg')
    thumb = b'Exif\x00\x00' + b'\xff\xd8\xff\xdb' + b'\x00' * 20 + b'\xff\xd9'
    app1 = b'\xff\xe1' + (len(thumb) + 2).to_bytes(2, 'big') + thumb
    with_thumb = data[:2] + app1 + data[2:]
    assert imread(_write(tmp_path / 'ok.jpg', with_thumb)).shape == (24, 32, 3)
    with pytest.raises(ImageReadError, match='truncated JPEG'):
        imread(_write(tmp_path / 'cut.jpg', with_thumb[: len(with_thumb) - 40]))


def test_trailing_bytes_after_jpeg_end_are_fine(tmp_path):
    img = _gradient()
    data = _encode(img, '.jpg', [cv2.IMWRITE_JPEG_QUALITY, 100]) + b'\x00' * 64
    out = imread(_write(tmp_path / 'padded.jpg', data))
    assert np.abs(out.astype(int) - img.astype(int)).mean() < 3


def test_16bit_png_scaled_exactly(tmp_path):
    values = np.array([0, 257, 1000, 32768, 65535], dtype=np.uint16)
    img16 = np.stack([np.tile(values, (3, 1))] * 3, axis=2)  # 3x5x3
    img16[:, :, 2] = 65535 - img16[:, :, 2]
    path = _write(tmp_path / 'deep.png', _encode(img16, '.png'))
    f = imread(path, float32=True)
    assert f.dtype == np.float32 and f.shape == (3, 5, 3)
    np.testing.assert_allclose(f, img16.astype(np.float64) / 65535, atol=1e-7)
    u8 = imread(path)
    np.testing.assert_array_equal(u8, np.round(img16 / 65535 * 255).astype(np.uint8))


def test_rgba_png_alpha_composited_onto_white_or_kept(tmp_path):
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[:, :, 2] = 255  # pure red in BGR order
    bgra[:, :, 3] = [[0, 255, 128], [0, 255, 128]]
    path = _write(tmp_path / 'alpha.png', _encode(bgra, '.png'))
    out = imread(path, float32=True)
    assert out.shape == (2, 3, 3)
    np.testing.assert_allclose(out[0, 0], [1, 1, 1], atol=1e-6)  # transparent -> white
    np.testing.assert_allclose(out[0, 1], [0, 0, 1], atol=1e-6)  # opaque red stays red
    a = 128 / 255
    np.testing.assert_allclose(out[0, 2], [1 - a, 1 - a, 1], atol=1e-6)
    kept = imread(path, float32=True, channels=4)
    assert kept.shape == (2, 3, 4)
    np.testing.assert_allclose(kept[..., 3], bgra[..., 3] / 255, atol=1e-6)
    np.testing.assert_allclose(kept[..., 2], 1.0, atol=1e-6)


def test_gray_png_replicated_and_single_channel(tmp_path):
    gray = (np.arange(20, dtype=np.uint8) * 12).reshape(4, 5)
    path = _write(tmp_path / 'gray.png', _encode(gray, '.png'))
    out = imread(path)
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)
    one = imread(path, float32=True, channels=1)
    assert one.shape == (4, 5, 1)
    np.testing.assert_allclose(one[:, :, 0], gray / 255.0, atol=1e-7)
    rgba = imread(path, channels=4)
    np.testing.assert_array_equal(rgba[:, :, 3], 255)


def test_color_png_to_gray_uses_bt601_weights(tmp_path):
    img = np.zeros((1, 3, 3), np.uint8)
    img[0, 0] = (255, 0, 0)  # blue
    img[0, 1] = (0, 255, 0)  # green
    img[0, 2] = (0, 0, 255)  # red
    g = imread(_write(tmp_path / 'c.png', _encode(img, '.png')), float32=True, channels=1)[0, :, 0]
    np.testing.assert_allclose(g, [0.114, 0.587, 0.299], atol=1e-3)


def test_cmyk_jpeg_converted_to_bgr(tmp_path):
    pil = pytest.importorskip('PIL.Image')
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, :8] = (200, 30, 40)
    rgb[:, 8:] = (20, 160, 220)
    path = tmp_path / 'cmyk.jpg'
    pil.fromarray(rgb).convert('CMYK').save(path, quality=100)
    assert pil.open(path).mode == 'CMYK'
    out = imread(path)
    assert out.shape == (16, 16, 3)
    back = out[:, :, ::-1].astype(int)
    assert np.abs(back[4:12, 2:6] - np.array([200, 30, 40])).max() < 12
    assert np.abs(back[4:12, 10:14] - np.array([20, 160, 220])).max() < 12


def test_common_uint8_float_read_is_exact():
    img = _gradient()
    out = imfrombytes(_encode(img, '.png'), float32=True)
    np.testing.assert_array_equal(out, img.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(imfrombytes(_encode(img, '.png')), img)


def test_no_opencv_warnings_leak_as_errors(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with pytest.raises(ImageReadError):
            imfrombytes(b'\x89PNG\r\n\x1a\n' + b'\x00' * 30, source='x.png')
