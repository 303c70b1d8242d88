"""Datasets: FFHQ degradation on the shared sample (disk and lmdb), paired/single/folder datasets, bad files."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from gfpgan.data import build_dataset
from gfpgan.data.ffhq_degradation_dataset import FFHQDegradationDataset, load_components
from gfpgan.data.lmdb_writer import make_lmdb_from_folder
from gfpgan.utils.image_io import ImageReadError, imread

# the sample face's landmarks, as stored in ../shared/data/ffhq_512/eye_mouth_landmarks.pth
LEFT, RIGHT, MOUTH = (191.56666666666663, 242.29416666666668, 28.567499999999995), \
    (319.47666666666663, 247.08, 23.692499999999995), (267.7465, 355.83200000000005, 42.209999999999994)


def _box(c, half):
    return [c[0] - half + 1, c[1] - half + 1, c[0] + half, c[1] + half]


def _mirror(c, width=512):
    return (width - c[0], c[1], c[2])


@pytest.fixture(scope='module')
def ffhq(data_dir):
    path = data_dir / 'ffhq_512'
    if not (path / 'eye_mouth_landmarks.pth').is_file():
        pytest.skip('sample FFHQ folder lacks eye_mouth_landmarks.pth')
    return path


def _opt(ffhq, **over):
    opt = dict(type='FFHQDegradationDataset', dataroot_gt=str(ffhq), io_backend={'type': 'disk'}, out_size=512,
               mean=[0.5] * 3, std=[0.5] * 3, use_hflip=True, hflip_prob=0.0, blur_kernel_size=41,
               kernel_list=['iso', 'aniso'], kernel_prob=[0.5, 0.5], blur_sigma=[0.1, 10], downsample_range=[0.8, 8],
               noise_range=[0, 20], jpeg_range=[60, 100], color_jitter_prob=1, color_jitter_shift=20,
               color_jitter_pt_prob=1, gray_prob=1, gt_gray=True, crop_components=True,
               component_path=str(ffhq / 'eye_mouth_landmarks.pth'), eye_enlarge_ratio=1.4, seed=0)
    opt.update(over)
    return opt


def _check_sample(s, size=512):
    assert set(s) == {'lq', 'gt', 'gt_path', 'loc_left_eye', 'loc_right_eye', 'loc_mouth'}
    for key in ('lq', 'gt'):
        assert s[key].shape == (3, size, size) and s[key].dtype == torch.float32
        assert s[key].min() >= -1 and s[key].max() <= 1 and s[key].std() > 0.05
    lq01 = s['lq'] * 0.5 + 0.5
    assert torch.allclose(lq01 * 255, (lq01 * 255).round(), atol=1e-3)  # lq rounded to 8 bit
    assert torch.equal(s['lq'][0], s['lq'][1]) and torch.equal(s['gt'][0], s['gt'][2])  # gray_prob 1, gt_gray


def test_ffhq_disk_all_probabilities_one(ffhq):
    ds = build_dataset(_opt(ffhq))
    assert isinstance(ds, FFHQDegradationDataset) and len(ds) == 1
    s = ds[0]
    _check_sample(s)
    assert s['gt_path'].endswith('00000000.png')
    torch.testing.assert_close(s['loc_left_eye'], torch.tensor(_box(LEFT, LEFT[2] * 1.4)))
    torch.testing.assert_close(s['loc_right_eye'], torch.tensor(_box(RIGHT, RIGHT[2] * 1.4)))
    torch.testing.assert_close(s['loc_mouth'], torch.tensor(_box(MOUTH, MOUTH[2])))
    gt_file = imread(ffhq / '00000000.png', float32=True)
    gray = cv2.cvtColor(gt_file, cv2.COLOR_BGR2GRAY)
    torch.testing.assert_close(s['gt'][0], torch.from_numpy(gray) * 2 - 1, atol=1e-6, rtol=0)


def test_ffhq_flip_swaps_and_mirrors_boxes_repeatably(ffhq):
    plain = FFHQDegradationDataset(_opt(ffhq, gray_prob=None))[0]
    ds = FFHQDegradationDataset(_opt(ffhq, hflip_prob=1.0, gray_prob=None))
    first, second = ds[0], ds[0]
    # the eye that is on the left of the flipped image is the mirrored right eye
    torch.testing.assert_close(first['loc_left_eye'], torch.tensor(_box(_mirror(RIGHT), RIGHT[2] * 1.4)))
    torch.testing.assert_close(first['loc_right_eye'], torch.tensor(_box(_mirror(LEFT), LEFT[2] * 1.4)))
    torch.testing.assert_close(first['loc_mouth'], torch.tensor(_box(_mirror(MOUTH), MOUTH[2])))
    for key in ('loc_left_eye', 'loc_right_eye', 'loc_mouth', 'lq', 'gt'):
        assert torch.equal(first[key], second[key]), key  # same (seed, index): same sample
    assert torch.equal(first['gt'], plain['gt'].flip(-1))
    assert ds.components['00000000']['left_eye'] == LEFT  # the cached table is never edited


def test_ffhq_random_flips_never_drift(ffhq):
    """Upstream mutated the cached boxes on every flip; here every read gives one of the two valid sets."""
    ds = FFHQDegradationDataset(_opt(ffhq, hflip_prob=0.5, seed=None, gray_prob=None, color_jitter_pt_prob=None,
                                     out_size=128, blur_kernel_size=11))
    valid = {tuple(torch.tensor(_box(LEFT, LEFT[2] * 1.4)) / 4 + torch.tensor([0.75, 0.75, 0, 0])),
             tuple(torch.tensor(_box(_mirror(RIGHT), RIGHT[2] * 1.4)) / 4 + torch.tensor([0.75, 0.75, 0, 0]))}
    valid = {tuple(round(float(v), 4) for v in box) for box in valid}
    seen = set()
    np.random.seed(0)
    for _ in range(12):
        box = tuple(round(float(v), 4) for v in ds[0]['loc_left_eye'])
        assert box in valid
        seen.add(box)
    assert seen == valid


def test_ffhq_small_out_size_scales_gt_and_boxes(ffhq):
    s = FFHQDegradationDataset(_opt(ffhq, out_size=128, blur_kernel_size=11))[0]
    _check_sample(s, 128)
    scale = 128 / 512
    c = (MOUTH[0] * scale, MOUTH[1] * scale)
    torch.testing.assert_close(s['loc_mouth'], torch.tensor(_box(c, MOUTH[2] * scale)))


def test_ffhq_lmdb_matches_disk(ffhq, tmp_path):
    db = tmp_path / 'ffhq.lmdb'
    make_lmdb_from_folder(ffhq, db, progress=False, log=lambda m: None)
    disk = FFHQDegradationDataset(_opt(ffhq, hflip_prob=1.0))[0]
    ds = FFHQDegradationDataset(_opt(ffhq, dataroot_gt=str(db), io_backend={'type': 'lmdb'}, hflip_prob=1.0))
    lm = ds[0]
    _check_sample(lm)
    assert lm['gt_path'] == '00000000'
    for key in ('lq', 'gt', 'loc_left_eye', 'loc_right_eye', 'loc_mouth'):
        assert torch.equal(lm[key], disk[key]), key
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=1)  # the env opens in the worker
    batch = next(iter(loader))
    assert torch.equal(batch['gt'][0], disk['gt'])


def test_component_file_loads_safely_and_json_form(ffhq, tmp_path):
    table = load_components(ffhq / 'eye_mouth_landmarks.pth')
    assert table == {'00000000': {'left_eye': LEFT, 'right_eye': RIGHT, 'mouth': MOUTH}}
    path = tmp_path / 'comp.json'
    path.write_text(json.dumps({k: {p: list(v) for p, v in parts.items()} for k, parts in table.items()}))
    assert load_components(path) == table
    bad = tmp_path / 'bad.pth'
    torch.save({'00000000': {'left_eye': [1, 2, 3]}}, bad)
    with pytest.raises(ValueError, match='bad.pth'):
        load_components(bad)
    other = tmp_path / 'faces'
    other.mkdir()
    shutil.copy(ffhq / '00000000.png', other / 'face_a.png')
    with pytest.raises(KeyError, match="'face_a'.*face_a.png"):
        FFHQDegradationDataset(_opt(ffhq, dataroot_gt=str(other)))[0]
    by_index = FFHQDegradationDataset(_opt(ffhq, dataroot_gt=str(other), component_key='index'))[0]
    torch.testing.assert_close(by_index['loc_mouth'], torch.tensor(_box(MOUTH, MOUTH[2])))


def _pair_folders(tmp_path, n=3, size=64, scale=4):
    rng = np.random.default_rng(0)
    gt_dir, lq_dir = tmp_path / 'gt', tmp_path / 'lq'
    gt_dir.mkdir()
    lq_dir.mkdir()
    for i in range(n):
        gt = (rng.random((size, size, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(gt_dir / f'{i:03d}.png'), gt)
        cv2.imwrite(str(lq_dir / f'{i:03d}x{scale}.png'),
                    cv2.resize(gt, (size // scale, size // scale), interpolation=cv2.INTER_AREA))
    return gt_dir, lq_dir


@pytest.mark.parametrize('backend', ['disk', 'lmdb'])
def test_paired_dataset_crops_stay_aligned(tmp_path, backend):
    gt_dir, lq_dir = _pair_folders(tmp_path)
    if backend == 'lmdb':
        for d in (gt_dir, lq_dir):
            make_lmdb_from_folder(d, d.with_suffix('.lmdb'), progress=False, log=lambda m: None)
        gt_dir, lq_dir = gt_dir.with_suffix('.lmdb'), lq_dir.with_suffix('.lmdb')
    opt = dict(type='PairedImageDataset', dataroot_gt=str(gt_dir), dataroot_lq=str(lq_dir),
               io_backend={'type': backend}, filename_tmpl='{}x4', scale=4, gt_size=32, use_hflip=True, use_rot=True,
               phase='train', seed=1)
    ds = build_dataset(opt)
    assert len(ds) == 3
    for i in range(3):
        s = ds[i]
        assert s['gt'].shape == (3, 32, 32) and s['lq'].shape == (3, 8, 8)
        # lq was made by 4x4 area averaging: the crops must still correspond block by block
        pooled = torch.nn.functional.avg_pool2d(s['gt'][None], 4)[0]
        assert (pooled - s['lq']).abs().max() < 1 / 255 + 1e-6
    val = build_dataset(dict(opt, phase='val', mean=[0.5] * 3, std=[0.5] * 3))[0]
    assert val['gt'].shape == (3, 64, 64) and val['lq'].shape == (3, 16, 16) and val['gt'].min() < -0.9
    assert val['lq_path'].endswith('000x4.png') or val['lq_path'] == '000x4'


def test_paired_dataset_reports_missing_partner(tmp_path):
    gt_dir, lq_dir = _pair_folders(tmp_path)
    (lq_dir / '001x4.png').unlink()
    with pytest.raises(FileNotFoundError, match=r"001x4.*filename_tmpl"):
        build_dataset(dict(type='PairedImageDataset', dataroot_gt=str(gt_dir), dataroot_lq=str(lq_dir),
                           filename_tmpl='{}x4', scale=4, phase='val'))


def test_single_image_dataset(tmp_path):
    _, lq_dir = _pair_folders(tmp_path, n=2)
    ds = build_dataset(dict(type='SingleImageDataset', dataroot_lq=str(lq_dir), phase='val'))
    s = ds[1]
    assert s['lq_path'].endswith('001x4.png') and s['lq'].shape == (3, 16, 16)
    ref = imread(lq_dir / '001x4.png', float32=True)[:, :, ::-1].transpose(2, 0, 1)
    np.testing.assert_array_equal(s['lq'].numpy(), ref)


def test_image_folder_dataset_recursive_formats_and_channels(tmp_path):
    root = tmp_path / 'imgs'
    (root / 'sub').mkdir(parents=True)
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, :30] = (255, 0, 0)  # blue left half (BGR)
    cv2.imwrite(str(root / 'a.png'), rgb)
    cv2.imwrite(str(root / 'sub' / 'b.jpg'), rgb)
    bgra = np.dstack([rgb, np.full((40, 60), 128, np.uint8)])
    cv2.imwrite(str(root / 'sub' / 'c.png'), bgra)
    (root / 'readme.txt').write_text('not an image')
    opt = dict(type='ImageFolderDataset', dataroot=str(root), image_size=32, mean=[0.5] * 3, std=[0.5] * 3)
    ds = build_dataset(opt)
    assert [p.split('imgs/')[1] for p in ds.paths] == ['a.png', 'sub/b.jpg', 'sub/c.png']
    s = ds[0]
    assert s['gt'].shape == (3, 32, 32) and s['gt'].min() == -1 and s['gt'].max() == 1
    assert s['gt'][2, 16, 2] == 1 and s['gt'][0, 16, 2] == -1  # RGB order: blue is channel 2
    assert ds[1]['gt'].shape == (3, 32, 32)
    four = build_dataset(dict(type='ImageFolderDataset', dataroot=str(root), channels=4, recursive=True))
    c = four[2]['gt']
    assert c.shape == (4, 40, 60)
    torch.testing.assert_close(c[3], torch.full((40, 60), 128 / 255))
    assert c[2, 0, 0] == 1 and c[0, 0, 0] == 0  # RGBA: blue kept, alpha separate
    assert four[0]['gt'][3].min() == 1  # no alpha in the file: opaque
    one = build_dataset(dict(type='ImageFolderDataset', dataroot=str(root), channels=1, recursive=False))
    assert len(one) == 1 and one[0]['gt'].shape == (1, 40, 60)
    flips = build_dataset(dict(opt, use_hflip=True, seed=None, mean=None, std=None))
    np.random.seed(0)
    sides = {float(flips[0]['gt'][2, 16, 2]) for _ in range(10)}
    assert sides == {0.0, 1.0}


def test_bad_image_raises_naming_file_or_skips(tmp_path):
    root = tmp_path / 'imgs'
    root.mkdir()
    cv2.imwrite(str(root / 'a.png'), np.full((8, 8, 3), 200, np.uint8))
    (root / 'b.png').write_bytes(b'')
    cv2.imwrite(str(root / 'c.png'), np.full((8, 8, 3), 50, np.uint8))
    ds = build_dataset(dict(type='ImageFolderDataset', dataroot=str(root)))
    with pytest.raises(ImageReadError, match=r'b\.png.*skip_bad_images'):
        ds[1]
    skipping = build_dataset(dict(type='ImageFolderDataset', dataroot=str(root), skip_bad_images=True))
    with pytest.warns(UserWarning, match=r'b\.png'):
        s = skipping[1]
    assert s['gt_path'].endswith('c.png') and s['gt'].max().item() == pytest.approx(50 / 255)
    (root / 'c.png').unlink()  # vanished after listing: skipped too, wrapping round to the first file
    with pytest.warns(UserWarning, match=r'c\.png: cannot open'):
        assert skipping[2]['gt_path'].endswith('a.png')


def test_ffhq_degrade_on_device_hands_gt_to_the_batch_degrader(ffhq):
    from gfpgan.data.degradations_torch import GPUFFHQDegrader

    opt = _opt(ffhq, degrade_on='device', out_size=64, blur_kernel_size=11)
    s = FFHQDegradationDataset(opt)[0]
    assert set(s) == {'gt', 'gt_path', 'loc_left_eye', 'loc_right_eye', 'loc_mouth'}
    assert s['gt'].shape == (3, 64, 64) and s['gt'].min() >= 0 and s['gt'].max() <= 1  # not normalised yet
    out = GPUFFHQDegrader(opt)(s['gt'][None], seed=0)
    assert out['lq'].shape == (1, 3, 64, 64) and out['gt'].min() < -0.5  # mean/std applied by the degrader
    assert torch.equal(out['lq'][0, 0], out['lq'][0, 1])  # gray_prob 1


def test_ffhq_under_seeded_sampler_is_reproducible(ffhq):
    """Without a `seed` option the draws follow numpy's global RNG, which the sampler seeds per sample."""
    from gfpgan.data import build_dataloader
    from gfpgan.data.sampler import EnlargedSampler

    opt = _opt(ffhq, seed=None, out_size=32, blur_kernel_size=7, hflip_prob=0.5, phase='train',
               batch_size_per_gpu=2, num_worker_per_gpu=0)
    ds = build_dataset(opt)

    def first_batches(seed):
        loader = build_dataloader(ds, opt, num_gpu=0, sampler=EnlargedSampler(ds, 1, 0, ratio=4, seed=seed), seed=seed)
        it = iter(loader)
        return [next(it) for _ in range(2)]

    a, b, c = first_batches(3), first_batches(3), first_batches(4)
    for x, y in zip(a, b):
        assert torch.equal(x['lq'], y['lq']) and torch.equal(x['loc_left_eye'], y['loc_left_eye'])
    assert not torch.equal(a[0]['lq'], c[0]['lq'])
    assert not torch.equal(a[0]['lq'][0], a[0]['lq'][1])  # same image, different draws per sample


def test_image_folder_upscaling_stays_in_range(tmp_path):
    root = tmp_path / 'small'
    root.mkdir()
    img = np.zeros((10, 12, 3), np.uint8)
    img[:, 6:] = 255  # a hard edge: cubic interpolation overshoots it
    cv2.imwrite(str(root / 'x.png'), img)
    s = build_dataset(dict(type='ImageFolderDataset', dataroot=str(root), image_size=33))[0]
    assert s['gt'].shape == (3, 33, 33) and s['gt'].min() == 0 and s['gt'].max() == 1


def test_paired_scale_mismatch_names_the_file(tmp_path):
    gt_dir, lq_dir = _pair_folders(tmp_path, n=1)
    ds = build_dataset(dict(type='PairedImageDataset', dataroot_gt=str(gt_dir), dataroot_lq=str(lq_dir),
                            filename_tmpl='{}x4', scale=2, gt_size=16, phase='train'))
    with pytest.raises(ValueError, match=r'000\.png: gt size \(64, 64\) is not 2x the lq size \(16, 16\)'):
        ds[0]


def test_single_image_dataset_meta_info_and_lmdb(tmp_path):
    _, lq_dir = _pair_folders(tmp_path, n=3)
    meta = tmp_path / 'meta.txt'
    meta.write_text('002x4.png (16,16,3) 1\n000x4.png (16,16,3) 1\n')
    ds = build_dataset(dict(type='SingleImageDataset', dataroot_lq=str(lq_dir), meta_info_file=str(meta)))
    assert [p.rsplit('/', 1)[1] for p in ds.paths] == ['002x4.png', '000x4.png']
    db = tmp_path / 'lq.lmdb'
    make_lmdb_from_folder(lq_dir, db, progress=False, log=lambda m: None)
    lm = build_dataset(dict(type='SingleImageDataset', dataroot_lq=str(db), io_backend={'type': 'lmdb'}))
    assert lm[2]['lq_path'] == '002x4' and torch.equal(lm[2]['lq'], ds[0]['lq'])
