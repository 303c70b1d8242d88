"""Landmark distance: zero for the same face, the shift for a shifted face, resolution-independent."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from gfpgan.metrics import METRIC_REGISTRY, calculate_metric

pytest.importorskip('dlib', reason='LMD uses the offline dlib detector: pip install dlib-bin face-recognition-models')
from gfpgan.metrics.landmark_metric import calculate_lmd  # noqa: E402


@pytest.fixture(scope='module')
def face(data_dir):
    return cv2.imread(str(data_dir / 'ffhq_512' / '00000000.png'))


def _shift(img, dx, dy):
    return cv2.warpAffine(img, np.float32([[1, 0, dx], [0, 1, dy]]), img.shape[1::-1], borderMode=cv2.BORDER_REFLECT)


def test_same_face_is_zero_and_validation_call(face):
    assert calculate_lmd(face, face) == 0.0
    assert calculate_metric({'img': face, 'img2': face}, {'type': 'calculate_lmd'}) == 0.0
    assert METRIC_REGISTRY.meta('calculate_lmd') == {'better': 'lower'}


@pytest.mark.parametrize('dx, dy', [(6, 0), (0, 8), (6, 8)])
def test_shifted_face_moves_by_the_shift(face, dx, dy):
    assert calculate_lmd(_shift(face, dx, dy), face) == pytest.approx(np.hypot(dx, dy), abs=1.5)


def test_in_reference_pixels_for_a_smaller_restored_face(face):
    half = cv2.resize(face, (256, 256), interpolation=cv2.INTER_AREA)
    assert calculate_lmd(half, face) < 3.0  # same face, measured at 512 px
    shifted_half = cv2.resize(_shift(face, 8, 0), (256, 256), interpolation=cv2.INTER_AREA)
    assert calculate_lmd(shifted_half, face) == pytest.approx(8.0, abs=2.0)  # 4 px at 256 are 8 px at 512


def test_undetected_faces_still_count(face):
    """No face in the restored image: its landmarks are fitted in the reference's box, so it scores, and badly."""
    blank = np.full_like(face, 128)
    assert calculate_lmd(blank, face) > 10 * calculate_lmd(_shift(face, 2, 0), face)
    assert calculate_lmd(blank, blank) == 0.0  # no face anywhere: the whole frame is the box, same landmarks
