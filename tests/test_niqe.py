"""NIQE against BasicSR's numbers (compat fixture), its package data, its calling conventions and errors."""
from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

from gfpgan.metrics import METRIC_REGISTRY, calculate_metric
from gfpgan.metrics import niqe_metric as nm


def _cases():
    from conftest import SHARED

    path = SHARED / 'compat' / 'lpips_niqe_parity.json'
    if not path.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f'{path} is absent'))]
    data = json.loads(path.read_text())
    return [pytest.param(c, id=f'{c["img"].split("/")[-1]}-crop{c["crop_border"]}') for c in data['niqe']['values']]


@pytest.mark.parametrize('case', _cases())
def test_matches_basicsr(case, shared_dir):
    tol = json.loads((shared_dir / 'compat' / 'lpips_niqe_parity.json').read_text())['tolerance']['niqe_abs']
    img = cv2.imread(str(shared_dir / case['img']), cv2.IMREAD_UNCHANGED)
    assert nm.calculate_niqe(img, case['crop_border'], input_order='HWC', convert_to='y') == pytest.approx(
        case['niqe'], abs=tol)


def test_package_data_is_basicsr_file(compat_dir):
    """The shipped parameters are byte-for-byte BasicSR's (sha256 from the fixture's notes)."""
    assert nm.PARAMS_FILE.is_file()
    digest = hashlib.sha256(nm.PARAMS_FILE.read_bytes()).hexdigest()
    assert digest == hashlib.sha256((compat_dir / 'niqe_pris_params.npz').read_bytes()).hexdigest()
    mu, cov, window = nm.pristine_params()
    assert mu.shape == (1, 36) and cov.shape == (36, 36) and window.shape == (7, 7)


def test_registered_as_no_reference_and_callable_like_validation(data_dir):
    assert METRIC_REGISTRY.meta('calculate_niqe') == {'better': 'lower', 'no_reference': True}
    img = cv2.imread(str(data_dir / 'cropped_faces' / 'Adele_crop.png'))
    direct = nm.calculate_niqe(img, 0)
    # the validation loop passes img (and img2 when there is ground truth) plus the options
    assert calculate_metric({'img': img}, {'type': 'calculate_niqe', 'crop_border': 0}) == direct
    assert calculate_metric({'img': img, 'img2': img[::-1]}, {'type': 'calculate_niqe', 'crop_border': 0}) == direct
    assert nm.calculate_niqe(img.transpose(2, 0, 1), 0, input_order='CHW') == direct
    gray = nm.calculate_niqe(img, 0, convert_to='gray')
    assert np.isfinite(gray) and gray != direct


def test_matlab_resize_basics():
    flat = np.full((96, 80), 0.25, np.float32)
    np.testing.assert_allclose(nm.imresize_matlab(flat, 0.5), np.full((48, 40), 0.25), atol=1e-6)
    ramp = np.tile(np.arange(16, dtype=np.float32), (16, 1))  # a linear ramp stays linear away from the edges
    half = nm.imresize_matlab(ramp, 0.5)
    assert half.shape == (8, 8) and half.dtype == np.float32
    np.testing.assert_allclose(half[:, 2:6], [[4.5, 6.5, 8.5, 10.5]] * 8, atol=1e-5)  # output j sits at 2j + 0.5
    assert half[0, 0] < 0.5 < half[0, 1] - 1.5  # mirrored edge: bends, still increasing


def test_clear_errors():
    with pytest.raises(ValueError, match='at least two 96x96 blocks'):
        nm.calculate_niqe(np.zeros((100, 100, 3), np.uint8), 0)
    with pytest.raises(ValueError, match="convert_to must be 'y' or 'gray'"):
        nm.calculate_niqe(np.zeros((200, 200, 3), np.uint8), 0, convert_to='rgb')
