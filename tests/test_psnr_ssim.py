"""PSNR/SSIM: BasicSR parity on the compat fixture, torch twins, definitions on hand-made images."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch

from gfpgan.metrics import calculate_metric
from gfpgan.metrics.psnr_ssim_metric import (
    calculate_psnr,
    calculate_psnr_pt,
    calculate_ssim,
    calculate_ssim_pt,
    to_y_channel,
)


def _bgr_to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1])).permute(2, 0, 1)[None].double() / 255.0


@pytest.fixture(scope='module')
def parity(compat_dir):
    cases = json.loads((compat_dir / 'metrics_kernels_parity.json').read_text())['psnr_ssim']
    images = {}
    for case in cases:
        for key in ('img', 'img2'):
            path = compat_dir / case[key]
            if path not in images:
                images[path] = cv2.imread(str(path))
                assert images[path] is not None, path
    return [(c, images[compat_dir / c['img']], images[compat_dir / c['img2']]) for c in cases]


def test_basicsr_parity_all_settings(parity):
    assert {(c['crop_border'], c['test_y_channel']) for c, _, _ in parity} == {(0, False), (0, True), (4, False),
                                                                              (4, True)}
    for case, img, img2 in parity:
        opts = dict(crop_border=case['crop_border'], test_y_channel=case['test_y_channel'])
        assert calculate_psnr(img, img2, **opts) == pytest.approx(case['psnr'], abs=1e-6), case
        assert calculate_ssim(img, img2, **opts) == pytest.approx(case['ssim'], abs=1e-6), case
        # through the registry, as validation calls it
        psnr = calculate_metric({'img': img, 'img2': img2}, {'type': 'calculate_psnr', **opts})
        assert psnr == pytest.approx(case['psnr'], abs=1e-6)


def test_torch_versions_agree_with_numpy(parity):
    _, img, img2 = parity[0]
    batch = torch.cat([_bgr_to_tensor(img), _bgr_to_tensor(img[::-1].copy())])
    batch2 = torch.cat([_bgr_to_tensor(img2), _bgr_to_tensor(img2[::-1].copy())])
    for crop in (0, 4):
        for y in (False, True):
            psnr = calculate_psnr_pt(batch, batch2, crop_border=crop, test_y_channel=y)
            ssim = calculate_ssim_pt(batch.float(), batch2.float(), crop_border=crop, test_y_channel=y)
            assert psnr.shape == ssim.shape == (2,)
            ref_psnr = calculate_psnr(img, img2, crop, test_y_channel=y)
            ref_ssim = calculate_ssim(img, img2, crop, test_y_channel=y)
            assert psnr[0].item() == pytest.approx(ref_psnr, abs=1e-4)
            assert ssim[0].item() == pytest.approx(ref_ssim, abs=1e-4)
            # the flipped copy is a different image pair with the same pixel statistics for PSNR
            assert psnr[1].item() == pytest.approx(ref_psnr, abs=1e-4)
            assert ssim[1].item() == pytest.approx(
                calculate_ssim(img[::-1], img2[::-1], crop, test_y_channel=y), abs=1e-4)


def test_psnr_definition_on_constant_offset():
    img = np.full((16, 16, 3), 100, np.uint8)
    img2 = img + 5
    assert calculate_psnr(img, img2) == pytest.approx(10 * math.log10(255 ** 2 / 25), abs=1e-12)
    assert calculate_psnr(img, img) == float('inf')
    # CHW order and cropping: the border is excluded
    img3 = img2.copy()
    img3[:2] = 0
    assert calculate_psnr(img.transpose(2, 0, 1), img3.transpose(2, 0, 1), crop_border=2, input_order='CHW') == \
        pytest.approx(10 * math.log10(255 ** 2 / 25), abs=1e-12)


def test_ssim_is_one_for_identical_and_lower_for_noise():
    rng = np.random.default_rng(0)
    ramp = np.linspace(40, 200, 32)
    img = np.repeat((ramp[:, None] + ramp[None, :] / 4)[:, :, None], 3, axis=2).astype(np.uint8)
    assert calculate_ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    noisy = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    assert 0 < calculate_ssim(img, noisy) < 0.5


def test_y_channel_range():
    black, white = np.zeros((1, 1, 3), np.uint8), np.full((1, 1, 3), 255, np.uint8)
    assert to_y_channel(black).item() == pytest.approx(16.0, abs=1e-4)
    assert to_y_channel(white).item() == pytest.approx(235.0, abs=1e-4)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match='shapes differ'):
        calculate_psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match='input_order'):
        calculate_ssim(np.zeros((16, 16, 3)), np.zeros((16, 16, 3)), input_order='NHWC')
    with pytest.raises(ValueError, match='same shape'):
        calculate_psnr_pt(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))
