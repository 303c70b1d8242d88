"""Real-ESRGAN data: kernels against their formulas, the batched device pipeline against the per-sample
path, USM sharpening, the pair pool and RealESRGANDataset."""
from __future__ import annotations

import math
import types

import cv2
import numpy as np
import pytest
import torch
from scipy import optimize, special

from gfpgan.data import build_dataset
from gfpgan.data import degradations as deg
from gfpgan.data.degradations_torch import jpeg_opencv
from gfpgan.data.pair_pool import TrainingPairPool
from gfpgan.data.realesrgan_degradations import (
    kernel_sizes,
    pulse_kernel,
    random_blur_kernel,
    random_final_sinc_kernel,
    usm_sharp,
)
from gfpgan.data.realesrgan_degradations_torch import RealESRGANDegrader, USMSharp, random_paired_crop

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


def grid(size):
    c = size // 2
    yy, xx = np.mgrid[-c : c + 1, -c : c + 1].astype(np.float64)
    return xx, yy


def sinc_formula(cutoff, size):
    """Ideal circular low-pass: omega J1(omega r) / (2 pi r), limit omega^2 / (4 pi) at r = 0; sum 1."""
    xx, yy = grid(size)
    r = np.hypot(xx, yy)
    with np.errstate(invalid='ignore', divide='ignore'):
        k = cutoff * special.j1(cutoff * r) / (2 * np.pi * r)
    k[r == 0] = cutoff**2 / (4 * np.pi)
    return k / k.sum()


def quadratic_form(size, sig_x, sig_y, theta):
    xx, yy = grid(size)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    inv = np.linalg.inv(rot @ np.diag([sig_x**2, sig_y**2]) @ rot.T)
    return inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy


@pytest.mark.parametrize('cutoff, size', [(math.pi / 3, 7), (math.pi / 5, 15), (2.9, 21)])
def test_sinc_kernel_is_the_circular_lowpass_formula(cutoff, size):
    np.testing.assert_allclose(deg.circular_lowpass_kernel(cutoff, size), sinc_formula(cutoff, size), atol=1e-12)
    padded = deg.circular_lowpass_kernel(cutoff, size, pad_to=21)
    assert padded.shape == (21, 21) and np.isclose(padded.sum(), 1)
    np.testing.assert_allclose(padded[10 - size // 2 : 11 + size // 2, 10 - size // 2 : 11 + size // 2],
                               sinc_formula(cutoff, size), atol=1e-12)


@pytest.mark.parametrize('sig_x, sig_y, theta, beta', [(1.5, 0.7, 0.6, 0.5), (2.5, 1.2, -2.0, 3.0), (1.0, 1.0, 0, 1)])
def test_generalized_gaussian_and_plateau_formulas(sig_x, sig_y, theta, beta):
    q = quadratic_form(21, sig_x, sig_y, theta)
    gen = np.exp(-0.5 * q**beta)
    plateau = 1 / (1 + q**beta)
    np.testing.assert_allclose(deg.bivariate_generalized_gaussian(21, sig_x, sig_y, theta, beta, isotropic=False),
                               gen / gen.sum(), atol=1e-12)
    np.testing.assert_allclose(deg.bivariate_plateau(21, sig_x, sig_y, theta, beta, isotropic=False),
                               plateau / plateau.sum(), atol=1e-12)
    iso_q = quadratic_form(21, sig_x, sig_x, 0)
    np.testing.assert_allclose(deg.bivariate_generalized_gaussian(21, sig_x, sig_y, theta, beta, isotropic=True),
                               np.exp(-0.5 * iso_q**beta) / np.exp(-0.5 * iso_q**beta).sum(), atol=1e-12)


def test_random_sinc_blur_fits_the_formula_with_a_cutoff_in_range():
    for seed in range(6):
        k = random_blur_kernel(['iso'], [1], [0.2, 3], [0.5, 4], [1, 2], sinc_prob=1.0, rng=np.random.default_rng(seed))
        assert k.shape == (21, 21) and np.isclose(k.sum(), 1)
        rows = np.flatnonzero(np.abs(k).sum(1) > 0)
        size = rows[-1] - rows[0] + 1
        assert size in kernel_sizes(21)
        window = k[rows[0] : rows[-1] + 1, rows[0] : rows[-1] + 1]
        fit = optimize.minimize_scalar(lambda c, n=size, w=window: np.abs(sinc_formula(c, n) - w).max(),
                                       bounds=(0.5, math.pi), method='bounded', options={'xatol': 1e-10})
        low = math.pi / 3 if size < 13 else math.pi / 5
        assert fit.fun < 1e-7 and low - 1e-6 <= fit.x <= math.pi + 1e-6


def test_random_kernels_sizes_types_and_pulse():
    rng = np.random.default_rng(3)
    sizes = set()
    for _ in range(60):
        k = random_blur_kernel(list(deg.KERNEL_TYPES), [1] * 6, [0.2, 3], [0.5, 4], [1, 2], 0.1, rng=rng)
        assert k.shape == (21, 21) and np.isclose(k.sum(), 1) and k.min() > -0.1  # sinc kernels ring below zero
        rows = np.flatnonzero(np.abs(k).sum(1) > 1e-300)
        sizes.add(rows[-1] - rows[0] + 1)
    assert sizes <= set(kernel_sizes(21)) and len(sizes) >= 5
    np.testing.assert_array_equal(random_final_sinc_kernel(0.0, 21, np.random.default_rng(0)), pulse_kernel(21))
    assert random_final_sinc_kernel(1.0, 21, np.random.default_rng(0))[10, 10] < 1
    with pytest.raises(ValueError, match='blur_kernel_size'):
        kernel_sizes(20)


def _kernels(b, seed=0):
    rng = np.random.default_rng(seed)
    k1 = [random_blur_kernel(list(deg.KERNEL_TYPES), [1] * 6, [0.2, 3], [0.5, 4], [1, 2], 0.2, rng=rng)
          for _ in range(b)]
    k2 = [random_blur_kernel(['iso', 'aniso'], [1, 1], [0.2, 1.5], [0.5, 4], [1, 2], 0.2, rng=rng) for _ in range(b)]
    sinc = [random_final_sinc_kernel(0.8, 21, rng) for _ in range(b)]
    return [torch.from_numpy(np.stack(k)).float() for k in (k1, k2, sinc)]


def _gt(b, size=48, seed=0):
    img = torch.rand(b, 3, size // 8, size // 8, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(img, size=(size, size), mode='bicubic').clamp(0, 1)


@pytest.mark.parametrize('device', DEVICES)
def test_batch_degrades_as_its_samples_one_by_one(device):
    degrader = RealESRGANDegrader({'scale': 4})
    gt = _gt(3).to(device)
    kernels = [k.to(device) for k in _kernels(3)]
    seen = set()
    for seed in range(8):
        params = degrader.draw(3, torch.Generator().manual_seed(seed))
        seen.add((params.noise1.gaussian, params.sinc_before_jpeg))
        lq = degrader.degrade(gt, *kernels, params)
        assert lq.shape == (3, 3, 12, 12) and lq.device.type == device
        assert torch.equal(lq, (lq * 255).round() / 255) and 0 <= lq.min() and lq.max() <= 1
        one_by_one = degrader.degrade_per_sample(gt, *kernels, params)
        if device == 'cpu':
            assert torch.equal(lq, one_by_one)
        else:  # cuDNN/cuFFT may pick other algorithms per batch size: float-level differences, then 8-bit rounding
            assert (lq - one_by_one).abs().mean() < 2e-3
        again = degrader.degrade(gt, *kernels, degrader.draw(3, torch.Generator().manual_seed(seed)))
        assert torch.equal(lq, again)
    assert len(seen) >= 3  # both noise kinds and both final orders were exercised


def test_draws_are_seeded_and_per_sample_where_the_recipe_says():
    degrader = RealESRGANDegrader({})
    a = degrader.draw(4, torch.Generator().manual_seed(1))
    b = degrader.draw(4, torch.Generator().manual_seed(1))
    c = degrader.draw(4, torch.Generator().manual_seed(2))
    assert (a.scale1, a.mode1, a.second_blur, a.scale2, a.mode2, a.sinc_before_jpeg, a.mode_final) == (
        b.scale1, b.mode1, b.second_blur, b.scale2, b.mode2, b.sinc_before_jpeg, b.mode_final)
    assert torch.equal(a.jpeg1, b.jpeg1) and torch.equal(a.noise2.seed, b.noise2.seed)
    assert torch.equal(a.noise1.amount, b.noise1.amount)
    assert not torch.equal(a.noise1.seed, c.noise1.seed)
    assert len(set(a.noise1.seed.tolist())) == 4 and a.jpeg1.shape == (4,)
    assert 30 <= int(a.jpeg2.min()) and int(a.jpeg2.max()) <= 95
    one = a.sample(2)
    assert one.scale1 == a.scale1 and torch.equal(one.noise1.amount, a.noise1.amount[2:3])
    scales = [degrader.draw(1, torch.Generator().manual_seed(s)).scale1 for s in range(200)]
    assert min(scales) >= 0.15 and max(scales) <= 1.5 and sum(s == 1.0 for s in scales) > 5  # 'keep' is 10 %


def test_with_identity_steps_only_the_two_jpegs_remain():
    opt = dict(scale=1, resize_prob=[0, 0, 1], resize_prob2=[0, 0, 1], noise_range=[0, 0], noise_range2=[0, 0],
               poisson_scale_range=[0, 0], poisson_scale_range2=[0, 0], jpeg_range=[100, 100], jpeg_range2=[100, 100])
    degrader = RealESRGANDegrader(opt)
    gt = (_gt(2, 32) * 255).round() / 255
    pulse = torch.from_numpy(pulse_kernel(21)).float().expand(2, 21, 21)
    lq = degrader.degrade(gt, pulse, pulse, pulse, degrader.draw(2, torch.Generator().manual_seed(0)))
    twice = jpeg_opencv(jpeg_opencv(gt, [100, 100]), [100, 100])
    assert torch.equal(lq, twice) and not torch.equal(lq, gt)


def test_degrader_checks_its_inputs():
    degrader = RealESRGANDegrader({})
    k = _kernels(2)
    params = degrader.draw(2, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match='a batch of 3 needs 3 kernels'):
        degrader.degrade(_gt(3), *k, params)
    with pytest.raises(ValueError, match='CPU torch.Generator'):
        degrader.draw(2, types.SimpleNamespace(device=torch.device('cuda')))  # a device generator, without a GPU
    with pytest.raises(ValueError, match='resize_prob'):
        RealESRGANDegrader({'resize_prob': [0.5, 0.5]})


def test_usm_sharp_numpy_and_torch_agree_and_sharpen():
    img = cv2.GaussianBlur(np.random.default_rng(0).random((40, 40, 3)).astype(np.float32), (5, 5), 1.5)
    ref = usm_sharp(img)
    out = USMSharp()(torch.from_numpy(img).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-5)
    blur = cv2.GaussianBlur(img, (51, 51), 0)
    assert np.abs(ref - blur).mean() > np.abs(img - blur).mean()  # more detail than before
    assert ref.min() >= 0 and ref.max() <= 1
    flat = np.full((20, 20, 3), 0.5, np.float32)
    np.testing.assert_allclose(usm_sharp(flat), flat, atol=1e-6)  # no detail above threshold: unchanged


def test_random_paired_crop_aligns():
    lq = torch.rand(2, 3, 10, 12)
    gt = lq.repeat_interleave(4, -2).repeat_interleave(4, -1)
    (gt_c, gt2_c), lq_c = random_paired_crop([gt, gt + 1], lq, 16, 4, torch.Generator().manual_seed(0))
    assert lq_c.shape == (2, 3, 4, 4) and gt_c.shape == (2, 3, 16, 16)
    assert torch.equal(gt_c[..., ::4, ::4], lq_c) and torch.equal(gt2_c, gt_c + 1)
    with pytest.raises(ValueError, match='smaller than the crop'):
        random_paired_crop([gt], lq, 64, 4, torch.Generator())


def test_training_pair_pool_fills_then_swaps():
    pool = TrainingPairPool(4)
    g = torch.Generator().manual_seed(0)
    seen = []
    for step in range(6):
        lq = torch.full((2, 1, 2, 2), float(step))
        out_lq, out_gt = pool(lq, lq * 10, g)
        assert torch.equal(out_gt, out_lq * 10)  # pairs stay pairs
        seen.append(sorted(out_lq[:, 0, 0, 0].tolist()))
    assert seen[:2] == [[0, 0], [1, 1]]  # filling: passed through
    held = sorted(pool.lq[:, 0, 0, 0].tolist() + sum(seen[2:], []))  # swapped out + still held = every input
    assert held == sorted([float(s) for s in range(6) for _ in range(2)])  # nothing lost or duplicated
    state = pool.state_dict()
    clone = TrainingPairPool(4)
    clone.load_state_dict(state)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x = torch.full((2, 1, 2, 2), 9.0)
    assert torch.equal(pool(x, x, g1)[0], clone(x, x, g2)[0])
    with pytest.raises(ValueError, match='divisible by the batch size 3'):
        TrainingPairPool(4)(torch.zeros(3, 1, 2, 2), torch.zeros(3, 1, 2, 2))


def _images(folder, sizes):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        cv2.imwrite(str(folder / f'{i:02d}.png'), (rng.random((h, w, 3)) * 255).astype(np.uint8))


def test_realesrgan_dataset_pads_crops_and_draws_kernels(tmp_path):
    _images(tmp_path / 'hq' / 'sub', [(40, 56), (120, 100)])
    meta = tmp_path / 'meta.txt'
    meta.write_text('sub/01.png\nsub/00.png\n')
    opt = dict(type='RealESRGANDataset', dataroot_gt=str(tmp_path / 'hq'), meta_info=str(meta), crop_pad_size=64,
               blur_kernel_size=21, blur_kernel_size2=11, use_hflip=True, use_rot=True, seed=3)
    ds = build_dataset(opt)
    assert [p[-10:] for p in ds.paths] == ['sub/01.png', 'sub/00.png']
    for i in range(2):
        s = ds[i]
        assert s['gt'].shape == (3, 64, 64) and s['gt'].dtype == torch.float32
        assert s['kernel1'].shape == (21, 21) and s['kernel2'].shape == (11, 11) and s['sinc_kernel'].shape == (21, 21)
        for k in ('kernel1', 'kernel2', 'sinc_kernel'):
            assert abs(float(s[k].sum()) - 1) < 1e-5
    small = cv2.imread(str(tmp_path / 'hq' / 'sub' / '00.png'))[:, :, ::-1].astype(np.float32) / 255
    padded = build_dataset(dict(opt, use_hflip=False, use_rot=False))[1]['gt'].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(padded[:40, :56], small, atol=1e-6)  # the original stays top-left
    np.testing.assert_allclose(padded[40:42, :56], small[38:36:-1], atol=1e-6)  # reflect-101 below
    again = build_dataset(opt)[0]
    assert torch.equal(again['kernel1'], ds[0]['kernel1']) and torch.equal(again['gt'], ds[0]['gt'])
    with pytest.raises(ValueError, match='kernel_prob2: 1 entries for the 2 types of kernel_list2'):
        build_dataset(dict(opt, kernel_list2=['iso', 'aniso'], kernel_prob2=[1]))
    with pytest.raises(FileNotFoundError, match='meta_info_file'):
        build_dataset(dict(opt, meta_info=str(tmp_path / 'nope.txt')))


def test_realesrgan_dataset_batches_into_the_degrader(tmp_path):
    _images(tmp_path / 'hq', [(80, 80)] * 4)
    ds = build_dataset(dict(type='RealESRGANDataset', dataroot_gt=str(tmp_path / 'hq'), crop_pad_size=64, seed=0))
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    degrader = RealESRGANDegrader({'scale': 4})
    g = torch.Generator().manual_seed(0)
    usm = USMSharp()(batch['gt'])
    lq = degrader.degrade(usm, batch['kernel1'], batch['kernel2'], batch['sinc_kernel'], degrader.draw(4, g))
    (gt, gt_usm), lq = random_paired_crop([batch['gt'], usm], lq, 32, 4, g)
    assert lq.shape == (4, 3, 8, 8) and gt.shape == gt_usm.shape == (4, 3, 32, 32)
