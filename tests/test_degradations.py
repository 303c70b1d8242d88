"""Degradations: kernel parity with BasicSR's fixtures, noise statistics, JPEG, and the batched torch path."""

from __future__ import annotations

import colorsys
import json
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gfpgan.data import degradations as D
from gfpgan.data import degradations_torch as T


def test_bivariate_gaussian_matches_compat_fixture(compat_dir):
    cases = json.loads((compat_dir / 'metrics_kernels_parity.json').read_text())['bivariate_gaussian']
    assert len(cases) >= 4 and any(not c['isotropic'] for c in cases)
    for c in cases:
        k = D.bivariate_gaussian(c['kernel_size'], c['sig_x'], c['sig_y'], c['theta'], isotropic=c['isotropic'])
        ref = np.array(c['kernel'])
        assert k.shape == ref.shape
        np.testing.assert_allclose(k, ref, rtol=0, atol=1e-8, err_msg=str({x: c[x] for x in c if x != 'kernel'}))


def test_rotation_and_isotropy():
    k0 = D.bivariate_gaussian(21, 4.0, 1.0, 0.0, isotropic=False)
    k90 = D.bivariate_gaussian(21, 4.0, 1.0, math.pi / 2, isotropic=False)
    np.testing.assert_allclose(k90, k0.T, atol=1e-12)
    assert k0[10, 15] > k0[15, 10]  # wide along x
    iso = D.bivariate_gaussian(21, 2.0, 9.0, 1.0, isotropic=True)  # sig_y and theta ignored
    np.testing.assert_allclose(iso, D.bivariate_gaussian(21, 2.0, 2.0, 0.0, isotropic=False), atol=1e-15)
    np.testing.assert_allclose(iso, iso.T, atol=1e-15)


def test_generalized_and_plateau_shapes():
    g1 = D.bivariate_generalized_gaussian(21, 3.0, 3.0, 0.0, beta=1.0)
    np.testing.assert_allclose(g1, D.bivariate_gaussian(21, 3.0, 3.0, 0.0), atol=1e-14)
    heavy = D.bivariate_generalized_gaussian(21, 3.0, 3.0, 0.0, beta=0.5)
    assert heavy[10, 0] > g1[10, 0]  # beta < 1: heavier tails
    plateau = D.bivariate_plateau(21, 3.0, 3.0, 0.0, beta=2.0)
    r2 = (4.0**2) / 9.0  # point (x=4, y=0) at sigma 3
    assert plateau[10, 14] / plateau[10, 10] == pytest.approx(1 / (r2**2 + 1), rel=1e-12)
    for k in (heavy, plateau):
        assert k.sum() == pytest.approx(1.0, abs=1e-12)


def test_random_mixed_kernels_reproducible_and_valid():
    for kind in D.KERNEL_TYPES:
        a = D.random_mixed_kernels([kind], [1.0], 21, noise_range=(0.75, 1.25), rng=np.random.default_rng(5))
        b = D.random_mixed_kernels([kind], [1.0], 21, noise_range=(0.75, 1.25), rng=np.random.default_rng(5))
        np.testing.assert_array_equal(a, b)
        assert a.shape == (21, 21) and a.min() >= 0 and a.sum() == pytest.approx(1.0, abs=1e-12)
    iso = D.random_mixed_kernels(['iso'], [1.0], 21, sigma_x_range=(2, 2), rng=np.random.default_rng(0))
    np.testing.assert_allclose(iso, D.bivariate_gaussian(21, 2.0, 2.0, 0.0), atol=1e-15)
    with pytest.raises(ValueError, match='odd'):
        D.random_mixed_kernels(['iso'], [1.0], 20)
    with pytest.raises(ValueError, match='kernel_list'):
        D.random_mixed_kernels(['bogus'], [1.0], 21)


def test_circular_lowpass_kernel_is_a_lowpass():
    k = D.circular_lowpass_kernel(math.pi / 4, 21, pad_to=25)
    assert k.shape == (25, 25) and k.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(k, k.T, atol=1e-15)
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-15)
    spectrum = np.abs(np.fft.fft2(k, s=(128, 128)))
    assert spectrum[0, 0] == pytest.approx(1.0)
    assert spectrum[0, 64] < 0.1  # Nyquist well suppressed (cutoff at 1/4 of it)


def test_gaussian_noise_statistics_and_gray():
    img = np.full((256, 256, 3), 0.5, np.float32)
    noisy = D.add_gaussian_noise(img, sigma=10, clip=False, rng=np.random.default_rng(0))
    assert noisy.dtype == np.float32
    assert (noisy - img).std() == pytest.approx(10 / 255, rel=0.02)
    assert abs((noisy - img).mean()) < 1e-3
    gray = D.add_gaussian_noise(img, sigma=10, gray_noise=True, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
    clipped = D.random_add_gaussian_noise(np.ones_like(img), (30, 30), rng=np.random.default_rng(1))
    assert clipped.max() <= 1.0 and clipped.min() < 1.0


def test_poisson_noise_statistics():
    img = np.full((256, 256, 3), 0.25, np.float32)
    img[:, :128] = 0.75  # two 8-bit values -> photon level 2
    noise = D.add_poisson_noise(img, scale=1.0, clip=False, rng=np.random.default_rng(0)) - img
    left, right = noise[:, :128], noise[:, 128:]
    assert abs(left.mean()) < 0.01 and abs(right.mean()) < 0.01
    assert left.var() == pytest.approx(0.75 / 2, rel=0.05)  # Poisson(l*x)/l has variance x/l
    assert right.var() == pytest.approx(0.25 / 2, rel=0.05)


def test_jpeg_integer_quality_and_quality_matters():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.random((64, 64, 3)).astype(np.float32), (0, 0), 2)
    hi = D.add_jpg_compression(img, 95.0)  # a float quality must work (upstream bug)
    lo = D.add_jpg_compression(img, 10)
    assert hi.dtype == np.float32 and hi.shape == img.shape
    assert np.abs(hi - img).mean() < np.abs(lo - img).mean()
    qualities = {D.random_jpeg_quality((60, 62), np.random.default_rng(s)) for s in range(60)}
    assert qualities == {60, 61, 62} and all(isinstance(q, int) for q in qualities)
    with pytest.raises(ValueError, match='quality'):
        D.add_jpg_compression(img, 150)


def test_color_jitter_and_gray():
    img = np.full((8, 8, 3), 0.5, np.float32)
    out = D.color_jitter(img, 20 / 255, np.random.default_rng(0))
    offset = out[0, 0] - 0.5
    assert np.all(np.abs(offset) <= 20 / 255 + 1e-7) and np.abs(offset).max() > 0
    np.testing.assert_allclose(out, np.broadcast_to(0.5 + offset, out.shape), atol=1e-7)
    bgr = np.zeros((2, 2, 3), np.float32)
    bgr[..., 2] = 1.0
    gray = D.to_gray3(bgr)
    np.testing.assert_allclose(gray, 0.299, atol=1e-3)


# ------------------------------------------------------------------------------------------- torch path
@pytest.mark.parametrize('method', ['direct', 'fft'])
def test_torch_filter2d_matches_opencv_per_sample(method):
    rng = np.random.default_rng(0)
    img = rng.random((3, 3, 30, 37), dtype=np.float32)
    kernels = np.stack([D.random_mixed_kernels(['aniso'], [1], 11, rng=rng) for _ in range(3)])
    out = T.filter2d(torch.from_numpy(img), torch.from_numpy(kernels), method=method).numpy()
    for i in range(3):
        ref = cv2.filter2D(np.ascontiguousarray(img[i].transpose(1, 2, 0)), -1, kernels[i].astype(np.float32))
        np.testing.assert_allclose(out[i].transpose(1, 2, 0), ref, atol=2e-6)


def test_torch_blur_resize_matches_numpy_path():
    rng = np.random.default_rng(1)
    gt = cv2.GaussianBlur(rng.random((64, 64, 3)).astype(np.float32), (0, 0), 1.5)
    kernel = D.bivariate_gaussian(21, 2.0, 1.0, 0.4, isotropic=False)
    small = cv2.resize(D.filter2d(gt, kernel), (23, 23), interpolation=cv2.INTER_LINEAR)
    ref = cv2.resize(small, (64, 64), interpolation=cv2.INTER_LINEAR)
    x = torch.from_numpy(gt.transpose(2, 0, 1)[None].copy())
    y = T.filter2d(x, torch.from_numpy(kernel).float())
    y = F.interpolate(F.interpolate(y, size=(23, 23), mode='bilinear', align_corners=False), size=(64, 64),
                      mode='bilinear', align_corners=False)
    assert np.abs(y[0].numpy().transpose(1, 2, 0) - ref).max() < 2e-3


def test_torch_noise_per_sample_sigma():
    img = torch.full((2, 3, 128, 128), 0.5)
    g = torch.Generator().manual_seed(0)
    out = T.add_gaussian_noise(img, torch.tensor([5.0, 20.0]), clip=False, generator=g)
    stds = (out - img).flatten(1).std(dim=1)
    assert stds[0].item() == pytest.approx(5 / 255, rel=0.03)
    assert stds[1].item() == pytest.approx(20 / 255, rel=0.03)
    gray = T.add_gaussian_noise(img, 10.0, gray=torch.tensor([True, False]), generator=g)
    assert torch.equal(gray[0, 0], gray[0, 2]) and not torch.equal(gray[1, 0], gray[1, 2])
    pois = T.add_poisson_noise(img, torch.tensor([0.0, 1.0]), clip=False, generator=g)
    assert torch.equal(pois[0], img[0]) and (pois[1] - img[1]).abs().mean() > 0.1
    two = torch.full((2, 3, 128, 128), 0.25)
    two[..., :64] = 0.75  # two 8-bit values -> photon level 2, as on the numpy path
    noise = T.add_poisson_noise(two, 1.0, clip=False, generator=g) - two
    assert noise[..., :64].var().item() == pytest.approx(0.75 / 2, rel=0.05)
    assert noise[..., 64:].var().item() == pytest.approx(0.25 / 2, rel=0.05)


def test_torch_color_adjustments():
    rng = np.random.default_rng(0)
    img = torch.from_numpy(rng.random((2, 3, 5, 6), dtype=np.float32))
    np.testing.assert_allclose(T.hsv_to_rgb(T.rgb_to_hsv(img)), img, atol=1e-6)
    r, g, b = img[0, :, 1, 2].tolist()
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    np.testing.assert_allclose(T.rgb_to_hsv(img)[0, :, 1, 2], [h, s, v], atol=1e-6)
    shifted = T.adjust_hue(img, torch.tensor([0.1, 0.0]))
    np.testing.assert_allclose(shifted[0, :, 1, 2], colorsys.hsv_to_rgb((h + 0.1) % 1, s, v), atol=1e-5)
    np.testing.assert_allclose(shifted[1], img[1], atol=1e-6)
    single = T.adjust_hue(img[0], -0.3)  # one CPU image: the OpenCV route
    np.testing.assert_allclose(single[:, 1, 2], colorsys.hsv_to_rgb((h - 0.3) % 1, s, v), atol=1e-5)
    np.testing.assert_allclose(single, T.adjust_hue(img[:1], torch.tensor([-0.3]))[0], atol=1e-5)
    gray = T.adjust_saturation(img, 0.0)
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])
    assert torch.allclose(T.adjust_brightness(img, 0.5), img * 0.5)
    flat = T.adjust_contrast(img, 0.0)
    assert torch.allclose(flat, T.rgb_to_gray(img).mean(dim=(1, 2, 3), keepdim=True).expand_as(img))


@pytest.mark.parametrize('jpeg_mode', ['opencv', 'skip'])
def test_gpu_degrader_batch(jpeg_mode):
    opt = dict(blur_kernel_size=11, downsample_range=[2, 4], noise_range=[0, 10], jpeg_range=[60, 90],
               jpeg_mode=jpeg_mode, color_jitter_prob=1, color_jitter_pt_prob=1, gray_prob=1, gt_gray=True,
               mean=[0.5] * 3, std=[0.5] * 3)
    deg = T.GPUFFHQDegrader(opt)
    gt = torch.rand(3, 3, 32, 32)
    a, b = deg(gt, seed=7), deg(gt, seed=7)
    assert torch.equal(a['lq'], b['lq']) and not torch.equal(a['lq'], deg(gt, seed=8)['lq'])
    assert a['lq'].shape == gt.shape and a['lq'].min() >= -1 and a['lq'].max() <= 1
    lq01 = a['lq'] * 0.5 + 0.5
    assert torch.allclose(lq01 * 255, (lq01 * 255).round(), atol=1e-3)  # rounded to 8 bit
    assert torch.allclose(a['lq'][:, 0], a['lq'][:, 2]) and torch.allclose(a['gt'][:, 0], a['gt'][:, 1])
    assert torch.equal(gt, gt.clamp(0, 1))  # input untouched
    with pytest.raises(ValueError, match='jpeg_mode'):
        T.GPUFFHQDegrader({'jpeg_mode': 'fast'})
