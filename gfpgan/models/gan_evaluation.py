"""FID for unconditional generators, sharded over ranks: real statistics once (cached), fakes per call.

`FIDValidationMixin` is GANModel's validation (fid / fid_ema, best checkpoint, plateau on FID); the
functions below it are usable on their own (e.g. to score any generator against a dataloader).

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
from typing import Any, Callable, Iterable, Sequence, Union

import numpy as np
import torch
from pydantic import Field
from torch import nn

from gfpgan.metrics.fid_metric import (
    PYTORCH_FID_RANGE,
    FeatureStats,
    FIDFeatureExtractor,
    build_fid_extractor,
    calculate_fid,
    stats_cache_key,
)
from gfpgan.models.gan_sampling import sample_inputs, to_rgb
from gfpgan.utils.checkpoint_io import atomic_write
from gfpgan.utils.dist import all_reduce_sum, get_dist_info, is_main_process
from gfpgan.utils.option_schema import GANValOptions, OptionsModel


class InceptionScoreOptions(OptionsModel):
    weights_path: str = Field(description="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (has the classifier)")
    splits: int = Field(10, ge=1, description='the score is the mean over this many splits of the samples')
    use_bias: bool = Field(False, description="add the classifier's bias (the reference IS code does not)")


class GANModelValOptions(GANValOptions):
    """`val:` of GANModel: GANValOptions plus the Inception Score of the FID samples."""

    inception_score: Union[InceptionScoreOptions, None] = Field(
        None, description='Inception Score (is, is_ema) of the same samples as FID; needs weights_path')


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
                       seed: int = 0, batch_size: int = 64, num_classes: int = 0,
                       info_dims: tuple[Sequence[int], int] | None = None,
                       on_images: Callable[[torch.Tensor, torch.Tensor], None] | None = None) -> FeatureStats:
    """Statistics of `num_samples` generated images, sharded over ranks.

    The inputs (latents, labels cycling through `num_classes`, InfoGAN codes) are one seeded draw shared by
    all ranks, each taking every world_size-th one, so the result does not depend on the number of processes
    (up to float64 summation order) and repeated calls compare checkpoints on the same inputs. `on_images`
    sees every batch (RGB in [0, 1]) with its global sample indices (the Inception Score's splits).
    """
    rank, world = get_dist_info()
    z, labels, _ = sample_inputs(num_samples, latent_dim, num_classes, info_dims, torch.Generator().manual_seed(seed))
    index = torch.arange(num_samples)[rank::world]
    z, labels = z[rank::world], labels[rank::world] if labels is not None else None
    stats = FeatureStats(_feature_dim(extractor))
    was_training = net_g.training
    net_g.eval()
    device = next(net_g.parameters()).device
    try:
        for i, idx in enumerate(index.split(batch_size)):
            part = slice(i * batch_size, (i + 1) * batch_size)
            out = net_g(z[part].to(device)) if labels is None else net_g(z[part].to(device), labels[part].to(device))
            images = to_rgb((out.float().clamp(-1, 1) + 1) / 2)
            stats.update(extractor(images))
            if on_images is not None:
                on_images(images, idx)
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


class FIDValidationMixin:
    """GANModel's validation metrics: FID of the raw (`fid`) and EMA (`fid_ema`) generators.

    BaseModel's `validation` does the rest (logging, best values, best checkpoint, plateau). Expects the
    model attributes `net_g`, `latent_dim`, `data_range`, `device` and NetworkMixin.
    """

    def validation_metric_types(self) -> dict[str, str]:
        ema = hasattr(self, 'net_g_ema') or not self.is_train
        types = {name: 'calculate_fid' for name in (('fid', 'fid_ema') if ema else ('fid',))}
        if (self.opt.get('val') or {}).get('inception_score'):
            types.update({name: 'calculate_inception_score' for name in (('is', 'is_ema') if ema else ('is',))})
        return types

    def sync_buffers(self) -> None:
        """Give every rank rank 0's generator buffers (BatchNorm statistics).

        Each rank updates its running statistics from its own batches, so without this the ranks'
        eval-mode generators differ, and a sharded FID would not be the FID of the saved checkpoint.
        """
        if get_dist_info()[1] < 2:
            return
        import torch.distributed as dist

        for net in (self.get_bare_model(self.net_g), getattr(self, 'net_g_ema', None)):
            for buf in (net.buffers() if net is not None else ()):
                dist.broadcast(buf, src=0)

    def fid_options(self) -> dict:
        """`val.fid`: source (auto|fid_helper|pytorch_fid|random), weights_path, num_samples (default: the
        size of the real set), batch_size (64), seed (latents), cache_dir (default experiments/<name>/fid_cache)."""
        return dict((self.opt.get('val') or {}).get('fid') or {})

    def compute_validation_metrics(self, dataloader: Any, dataset_name: str, current_iter: int,
                                   save_img: bool) -> dict:
        """FID of the raw (`fid`) and EMA (`fid_ema`) generators against the loader's real images, and with
        `val.inception_score` the Inception Score of the same samples (`is`, `is_ema`).

        Every rank takes part (its shard of reals, its share of fakes). The global RNG is left untouched,
        so a run that validates and one resumed from the checkpoint before it stay identical. With
        `save_img` the sample grid of the evaluated generator is saved as `samples` (the one naming rule).
        """
        fid_opt = self.fid_options()
        self.sync_buffers()
        devices = [self.device] if self.device.type == 'cuda' else []
        with torch.random.fork_rng(devices=devices):
            if getattr(self, '_gan_fid_extractor', None) is None:
                self._gan_fid_extractor = build_gan_fid_extractor(fid_opt, self.device)
            real = self._real_fid_stats(dataloader, fid_opt)
            num = int(fid_opt.get('num_samples') or real[2])
            is_opt = (self.opt.get('val') or {}).get('inception_score')
            results: dict[str, float] = {}
            for tag, ema in (('', False), ('_ema', True)):
                if ema and not hasattr(self, 'net_g_ema'):
                    continue
                net = self.eval_generator() if ema else self.get_bare_model(self.net_g)
                is_stats, on_images = self._inception_score_hook(is_opt)
                stats = fake_feature_stats(net, self._gan_fid_extractor, num, self.latent_dim,
                                           int(fid_opt.get('seed', 0)), int(fid_opt.get('batch_size', 64)),
                                           self.num_classes, self.info_dims(), on_images)
                results['fid' + tag] = calculate_fid(*stats.mean_cov(), real[0], real[1])
                if is_stats is not None:
                    results['is' + tag] = is_stats.all_reduce().score()[0]
        if save_img and get_dist_info()[0] == 0:
            from gfpgan.models.gan_sampling import make_grid

            self.test()
            self.save_visual(make_grid(self.output), 'samples', dataset_name, current_iter)
        results['_count'] = num
        return results

    def _inception_score_hook(self, is_opt: dict | None) -> tuple:
        """(InceptionScoreStats, callback adding each sample batch to split `index % splits`), or (None, None)."""
        if not is_opt:
            return None, None
        from gfpgan.metrics.inception_score_metric import (
            InceptionScoreStats,
            build_inception_classifier,
            update_with_images,
        )

        if getattr(self, '_is_classifier', None) is None:
            self._is_classifier = build_inception_classifier(is_opt['weights_path'], bool(is_opt.get('use_bias')),
                                                             self.device)
        splits = int(is_opt.get('splits', 10))
        stats = InceptionScoreStats(self._is_classifier.weight.shape[0], splits)
        return stats, lambda images, index: update_with_images(stats, images, self._is_classifier, index % splits)

    def _real_fid_stats(self, dataloader: Any, fid_opt: dict) -> tuple:
        """(mu, sigma, count) of the real images: from memory, the cache file, or one sharded pass."""
        key = id(dataloader.dataset)
        cached = getattr(self, '_real_stats', {})
        if key in cached:
            return cached[key]
        path = self.opt.get('path') or {}
        root = path.get('experiments_root') or path.get('results_root') or '.'
        cache_file = real_stats_cache_file(fid_opt.get('cache_dir') or os.path.join(root, 'fid_cache'),
                                           dataloader.dataset, self._gan_fid_extractor)
        hit = load_cached_stats(cache_file)
        everyone = all_reduce_sum(torch.tensor([float(hit is not None), 1.0], dtype=torch.float64))
        if hit is not None and everyone[0] == everyone[1]:
            stats = (hit[0], hit[1], len(dataloader.dataset))
        else:
            low, high = self.data_range
            batches = (to_rgb(((d['gt'].float() - low) / (high - low)).clamp(0, 1)) for d in dataloader)
            feats = real_feature_stats(batches, self._gan_fid_extractor)
            mu, sigma = feats.mean_cov()
            stats = (mu, sigma, int(feats.count))
            save_cached_stats(cache_file, mu, sigma, stats[2])
            self.logger.info(f'FID statistics of {stats[2]} real images cached in {cache_file}.')
        self._real_stats = {**cached, key: stats}
        return stats

