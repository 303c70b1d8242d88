"""FID for unconditional generators, sharded over ranks: real statistics once (cached), fakes per call.

Feature networks and statistics come from `gfpgan.metrics.fid_metric` (Inception by default). For tests
and tiny CPU runs, `source: random` gives a small fixed-seed random conv net: not comparable to
published FIDs, but a consistent distance that still drops as samples approach the data.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from gfpgan.metrics.fid_metric import (
    PYTORCH_FID_RANGE,
    FeatureStats,
    FIDFeatureExtractor,
    build_fid_extractor,
    stats_cache_key,
)
from gfpgan.utils.checkpoint_io import atomic_write
from gfpgan.utils.dist import get_dist_info, is_main_process


def random_feature_net(seed: int = 0, width: int = 64) -> nn.Module:
    """A fixed random conv net (same weights for the same seed on every rank and run)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(
            nn.Conv2d(3, width // 2, 3, 2, 1), nn.ReLU(), nn.Conv2d(width // 2, width, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(width, width, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
                nn.init.normal_(m.bias, std=0.1)
    return net.eval()


def build_gan_fid_extractor(fid_opt: dict, device: torch.device) -> FIDFeatureExtractor:
    """`val.fid.source`: 'random' (see module doc; `seed`, `width`, `input_size`) or any source of
    `build_fid_extractor` ('auto', 'fid_helper', 'pytorch_fid' with `weights_path`)."""
    source = fid_opt.get('source', 'auto')
    if source == 'random':
        seed, width = int(fid_opt.get('seed', 0)), int(fid_opt.get('width', 64))
        size = int(fid_opt.get('input_size', 64))
        net = random_feature_net(seed, width)
        return FIDFeatureExtractor(net, f'random-conv:seed={seed},width={width}', size, PYTORCH_FID_RANGE).to(device)
    return build_fid_extractor(source, fid_opt.get('weights_path'), device)


def _feature_dim(extractor: FIDFeatureExtractor) -> int:
    device = next(iter(extractor.net.state_dict().values())).device
    return extractor(torch.zeros(1, 3, extractor.input_size, extractor.input_size, device=device)).shape[1]


@torch.no_grad()
def real_feature_stats(batches: Iterable[torch.Tensor], extractor: FIDFeatureExtractor) -> FeatureStats:
    """Statistics of real RGB [0, 1] batches; each rank passes its shard, the sums are all-reduced."""
    stats = FeatureStats(_feature_dim(extractor))
    for imgs in batches:
        stats.update(extractor(imgs))
    return stats.all_reduce()


@torch.no_grad()
def fake_feature_stats(net_g: nn.Module, extractor: FIDFeatureExtractor, num_samples: int, latent_dim: int,
                       seed: int = 0, batch_size: int = 64) -> FeatureStats:
    """Statistics of `num_samples` generated images, sharded over ranks.

    The latents are one seeded draw shared by all ranks, each taking every world_size-th one, so the
    result does not depend on the number of processes (up to float64 summation order) and repeated
    calls compare checkpoints on the same latents.
    """
    rank, world = get_dist_info()
    z = torch.randn(num_samples, latent_dim, generator=torch.Generator().manual_seed(seed))[rank::world]
    stats = FeatureStats(_feature_dim(extractor))
    was_training = net_g.training
    net_g.eval()
    device = next(net_g.parameters()).device
    try:
        for chunk in z.split(batch_size):
            stats.update(extractor((net_g(chunk.to(device)).float().clamp(-1, 1) + 1) / 2))
    finally:
        net_g.train(was_training)
    return stats.all_reduce()


def real_stats_cache_file(cache_dir: str | os.PathLike, dataset: Any, extractor: FIDFeatureExtractor) -> Path:
    """Cache file named by a hash of the dataset's options, its length and files (when it lists them),
    and the extractor id: a different dataset, image set or network misses the cache."""
    opt = {k: v for k, v in (getattr(dataset, 'opt', None) or {}).items()
           if k not in ('batch_size_per_gpu', 'num_worker_per_gpu', 'phase', 'pin_memory', 'prefetch_factor')}
    paths = getattr(dataset, 'paths', None)
    files_key = ''
    if isinstance(paths, (list, tuple)) and paths and all(isinstance(p, str) and os.path.isfile(p) for p in paths):
        files_key = stats_cache_key(paths, extractor.extractor_id)
    blob = json.dumps({'opt': opt, 'len': len(dataset), 'type': type(dataset).__name__, 'files': files_key,
                       'extractor': extractor.extractor_id}, sort_keys=True, default=str).encode()
    name = str(opt.get('name', type(dataset).__name__)).replace(os.sep, '_')
    return Path(cache_dir) / f'fid_real_{name}_{hashlib.sha256(blob).hexdigest()[:20]}.npz'


def load_cached_stats(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return data['mu'], data['sigma']


def save_cached_stats(path: Path, mu: np.ndarray, sigma: np.ndarray, count: int) -> None:
    if not is_main_process():
        return

    def write(tmp: str) -> None:
        buf = io.BytesIO()
        np.savez(buf, mu=mu, sigma=sigma, count=np.array(count))
        Path(tmp).write_bytes(buf.getvalue())

    atomic_write(path, write)
