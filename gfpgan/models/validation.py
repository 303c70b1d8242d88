"""The one validation loop of every model: metrics, sharded and reduced; best values; best checkpoint; images.

`validation(loader, iter, tb_logger, save_img)` asks the model for its metric values
(`compute_validation_metrics`; the paired loop here restores every sample of this rank's shard), then, the
same for every model: `metric_results` is set (BasicSR's attribute), values are logged (and to
tensorboard), the best value of each metric is tracked in the direction its registered metric declares
(`METRIC_REGISTRY.meta(type)['better']`, never guessed from the name the user gave it), and with
`val.keep_best` a new best writes `models/net_g_best.pth`.

Paired metrics: per image on the uint8 images that are saved (PSNR, SSIM, ...; `no_reference` metrics get
the restored image alone), and over the whole set on tensors (identity distance, FID). Sums and counts are
all-reduced, so N ranks give the one-process result.

Saved images follow one rule: `visualization/<stem>/<stem>_<tag>.png` in training, and
`visualization/<dataset>/<stem>_<tag>.png` in evaluation, where `tag` is `val.suffix` if given, else the
iteration (training) or the experiment name (evaluation).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import torch
from torch import nn

from gfpgan.utils.dist import all_reduce_sum, get_dist_info

IDENTITY_METRIC, FID_METRIC = 'calculate_identity_distance', 'calculate_fid'
SET_METRICS = (IDENTITY_METRIC, FID_METRIC)  # computed on tensors over the whole set, not per saved image


def dataset_name_of(dataloader: Any) -> str:
    return (getattr(dataloader.dataset, 'opt', None) or {}).get('name', 'val')


def quantize_like_saved(img: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """`img` in [low, high] rounded to 8 bit as it is saved, as 0..255 floats: metrics measure what users get."""
    return ((img.float().clamp(low, high) - low) * (255.0 / (high - low))).round()


class ValidationMixin:
    """Validation of BaseModel; expects `opt`, `device`, `is_train`, `logger`, `feed_data`, `test`,
    `get_current_visuals`, `output_range` and NetworkMixin."""

    output_range: tuple[float, float] = (0.0, 1.0)

    # ------------------------------------------------------------------ the loop every model shares
    def validation(self, dataloader: Any, current_iter: int, tb_logger: Any, save_img: bool = False) -> dict:
        """Validate on this rank's shard of the loader; every rank returns the reduced results."""
        name = dataset_name_of(dataloader)
        start = time.time()
        results = self.compute_validation_metrics(dataloader, name, current_iter, save_img)
        self.metric_results = {k: v for k, v in results.items() if not k.startswith('_')}
        self._log_validation_metric_values(current_iter, name, results, tb_logger, time.time() - start)
        self._keep_best(name, current_iter)
        self.after_validation(results)
        return results

    def dist_validation(self, dataloader: Any, current_iter: int, tb_logger: Any, save_img: bool) -> dict:
        """BasicSR's name; the same sharded loop."""
        return self.validation(dataloader, current_iter, tb_logger, save_img)

    def nondist_validation(self, dataloader: Any, current_iter: int, tb_logger: Any, save_img: bool) -> dict:
        """BasicSR's name; the same loop (one process holds the whole set)."""
        return self.validation(dataloader, current_iter, tb_logger, save_img)

    def after_validation(self, results: dict) -> None:
        """Hook (e.g. GANModel steps ReduceLROnPlateau on a validation metric)."""

    def validation_metric_types(self) -> dict[str, str]:
        """{name the results use: registered metric type}, for directions and `keep_best`."""
        return {n: m['type'] for n, m in ((self.opt.get('val') or {}).get('metrics') or {}).items()}

    def validation_progress(self, dataloader: Any, dataset_name: str) -> Any:
        """The loader, wrapped in a tqdm bar on rank 0 when `val.pbar` is on (upstream's option)."""
        if not (self.opt.get('val') or {}).get('pbar') or get_dist_info()[0] != 0:
            return dataloader
        from tqdm import tqdm

        return tqdm(dataloader, desc=f'Validate {dataset_name}', unit='batch', leave=False)

    # ------------------------------------------------------------------ paired restoration metrics
    def compute_validation_metrics(self, dataloader: Any, dataset_name: str, current_iter: int,
                                   save_img: bool) -> dict:
        """Restore this rank's shard; per-image and whole-set metrics, reduced over ranks; `_count` images."""
        from gfpgan.metrics import calculate_metric
        from gfpgan.metrics.metric_accumulator import MetricAccumulator
        from gfpgan.utils.image_io import tensor2img
        from gfpgan.utils.registry import METRIC_REGISTRY

        metrics_opt = dict((self.opt.get('val') or {}).get('metrics') or {})
        kinds = {n: m['type'] for n, m in metrics_opt.items()}
        per_image = {n: m for n, m in metrics_opt.items() if kinds[n] not in SET_METRICS}
        no_ref = {n for n in per_image if METRIC_REGISTRY.meta(kinds[n]).get('no_reference')}
        identity = {n: self._identity_metric_network(n, m) for n, m in metrics_opt.items()
                    if kinds[n] == IDENTITY_METRIC}
        fid = {n: self._fid_extractor(n, m) for n, m in metrics_opt.items() if kinds[n] == FID_METRIC}
        fid_stats: dict[str, tuple[Any, Any]] = {}
        acc = MetricAccumulator(per_image.keys() | identity.keys())
        count = torch.zeros(1, dtype=torch.float64)
        low, high = self.output_range
        for data in self.validation_progress(dataloader, dataset_name):
            self.feed_data(data)
            self.test()
            visuals = self.get_current_visuals()
            result, gt = visuals['result'], visuals.get('gt')
            if gt is None and (set(metrics_opt) - no_ref):
                raise KeyError(f"Validation set '{dataset_name}' gives no 'gt': val.metrics "
                               f"{sorted(set(metrics_opt) - no_ref)} need paired data.")
            if identity or fid:
                saved = [quantize_like_saved(x, low, high) / 255.0 for x in (result, gt)]  # [0, 1]
            for name, net in identity.items():
                from gfpgan.metrics.identity_metric import identity_distance_pt

                acc.update(name, identity_distance_pt(saved[0] * 2 - 1, saved[1] * 2 - 1, net).cpu())
            for name, extractor in fid.items():  # restored vs ground-truth sets; sums of features reduce exactly
                from gfpgan.metrics.fid_metric import FeatureStats

                feats = [extractor(x) for x in saved]
                if name not in fid_stats:
                    fid_stats[name] = (FeatureStats(feats[0].shape[1]), FeatureStats(feats[0].shape[1]))
                for stats, f in zip(fid_stats[name], feats):
                    stats.update(f)
            for i in range(result.shape[0]):
                sr_img = tensor2img(result[i : i + 1], min_max=self.output_range)
                if per_image:
                    pair = {'img': sr_img}
                    if gt is not None:
                        pair['img2'] = tensor2img(gt[i : i + 1], min_max=self.output_range)
                    for name, opt in per_image.items():
                        args = {'img': sr_img} if name in no_ref else pair
                        acc.update(name, float(calculate_metric(args, opt)))
                if save_img:
                    self.save_visual(sr_img, self._sample_stem(data, i), dataset_name, current_iter)
            count += result.shape[0]
        results = acc.reduce()
        for name in fid:
            results[name] = self._reduce_fid(fid_stats.get(name), metrics_opt[name])
        results['_count'] = int(all_reduce_sum(count).item())
        return results

    def _identity_metric_network(self, name: str, metric_opt: dict) -> nn.Module:
        """ArcFace for an identity-distance metric: its own `network` (+ `weights_path`), else the model's
        identity network. Random weights are drawn from a fixed seed so that every rank has the same."""
        if not metric_opt.get('network'):
            if getattr(self, 'network_identity', None) is None:
                raise KeyError(f'val.metrics.{name}: give network (and weights_path) of the embedding network.')
            return self.network_identity
        cache = self.__dict__.setdefault('_identity_metric_nets', {})
        if name not in cache:
            from gfpgan.archs.identity_embedding import build_embedding_network

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                cache[name] = build_embedding_network(
                    metric_opt['network'], metric_opt.get('weights_path'), metric_opt.get('param_key', 'params_ema')
                ).to(self.device)
        return cache[name]

    def _fid_extractor(self, name: str, metric_opt: dict) -> nn.Module:
        """The Inception network of an FID metric (`source`, `weights_path` as `build_fid_extractor`), built once."""
        cache = self.__dict__.setdefault('_fid_extractors', {})
        if name not in cache:
            from gfpgan.metrics.fid_metric import build_fid_extractor

            cache[name] = build_fid_extractor(
                metric_opt.get('source', 'auto'), metric_opt.get('weights_path'), device=self.device
            )
        return cache[name]

    @staticmethod
    def _reduce_fid(stats: tuple[Any, Any] | None, metric_opt: dict) -> float:
        """All-reduce both sets' feature sums (every rank, even one with an empty shard) and compute FID."""
        from gfpgan.metrics.fid_metric import FeatureStats, calculate_fid

        # a rank without samples has no dimension yet: agree on it first (one tiny all-reduce)
        dim_has = torch.tensor([0.0, 0.0] if stats is None else [stats[0].sum.numel(), 1.0], dtype=torch.float64)
        total_dim, ranks_with_data = all_reduce_sum(dim_has).tolist()
        if ranks_with_data == 0:
            return float('nan')
        if stats is None:
            dim = int(total_dim / ranks_with_data)
            stats = (FeatureStats(dim), FeatureStats(dim))
        restored, reference = (s.all_reduce() for s in stats)
        if float(restored.count) < 2:
            return float('nan')
        mu1, sigma1 = restored.mean_cov()
        mu2, sigma2 = reference.mean_cov()
        return calculate_fid(mu1, sigma1, mu2, sigma2, eps=float(metric_opt.get('eps', 0.0)))

    # ------------------------------------------------------------------ images
    @staticmethod
    def _sample_stem(data: dict, i: int) -> str:
        paths = data.get('lq_path') or data.get('gt_path')
        path = paths[i] if paths is not None else f'{get_dist_info()[0]}_{i}'
        return os.path.splitext(os.path.basename(str(path)))[0]

    def visual_path(self, stem: str, dataset_name: str, current_iter: int) -> str:
        """The one naming rule of saved validation images (module docstring)."""
        suffix = (self.opt.get('val') or {}).get('suffix')
        folder = self.opt['path']['visualization']
        if self.is_train:
            return os.path.join(folder, stem, f'{stem}_{suffix or current_iter}.png')
        return os.path.join(folder, dataset_name, f'{stem}_{suffix or self.opt["name"]}.png')

    def save_visual(self, img: Any, stem: str, dataset_name: str, current_iter: int) -> str:
        from gfpgan.utils.image_io import imwrite

        path = self.visual_path(stem, dataset_name, current_iter)
        imwrite(img, path)
        return path

    # ------------------------------------------------------------------ best values and checkpoint
    def metric_better(self, metric: str) -> str:
        """'higher' or 'lower': declared by the registered metric that `metric` names (its `type`)."""
        from gfpgan.utils.registry import METRIC_REGISTRY

        kind = self.validation_metric_types().get(metric)
        if kind is None:
            raise KeyError(f'{metric!r} is not a validation metric of this model; '
                           f'its metrics: {", ".join(self.validation_metric_types()) or "none"}.')
        better = METRIC_REGISTRY.meta(kind).get('better')
        if better not in ('higher', 'lower'):
            raise ValueError(f"Metric {kind} declares no direction: register it with better='higher' or 'lower'.")
        return better

    def _update_best_metric_result(self, dataset_name: str, metric: str, value: float, current_iter: int) -> bool:
        """Record `value` if it is the best so far in the metric's declared direction; True if it improved."""
        best = self.best_metric_results.setdefault(dataset_name, {}).get(metric)
        if math.isnan(value):
            return False
        lower = self.metric_better(metric) == 'lower'
        if best is None or (value < best['val'] if lower else value > best['val']):
            self.best_metric_results[dataset_name][metric] = {'val': value, 'iter': current_iter}
            return True
        return False

    def _log_validation_metric_values(self, current_iter: int, dataset_name: str, results: dict, tb_logger: Any,
                                      seconds: float) -> None:
        self.improved_metrics = set()
        lines = [f'Validation {dataset_name} ({results.get("_count", 0)} images, {seconds:.1f}s)']
        for name, value in results.items():
            if name.startswith('_'):
                continue
            if self._update_best_metric_result(dataset_name, name, value, current_iter):
                self.improved_metrics.add(name)
            best = self.best_metric_results[dataset_name].get(name)
            best_txt = f'\tBest: {best["val"]:.4f} @ {best["iter"]} iter' if best else ''
            lines.append(f'\t # {name}: {value:.4f}{best_txt}')
            if tb_logger is not None:
                tb_logger.add_scalar(f'metrics/{dataset_name}/{name}', value, current_iter)
        self.logger.info('\n'.join(lines))

    def keep_best_target(self) -> tuple[str, str | None] | None:
        """`val.keep_best` as (metric, dataset or None = the first validation set), checked; None when off.

        `true` names the first metric the validation reports; a string names a metric; a dict gives
        `metric` and `dataset`."""
        keep = (self.opt.get('val') or {}).get('keep_best')
        if not keep:
            return None
        keep = keep if isinstance(keep, dict) else {'metric': None if keep is True else keep}
        names = list(self.validation_metric_types())
        metric = keep.get('metric') or (names[0] if names else None)
        if metric not in names:
            raise KeyError(f'val.keep_best: metric {metric!r} is not one this model validates; '
                           f'choose one of: {", ".join(names) or "(none: add val.metrics)"}.')
        return metric, keep.get('dataset')

    def _keep_best(self, dataset_name: str, current_iter: int) -> None:
        """Write models/net_g_best.pth (atomically) when the kept metric improved on the kept dataset."""
        target = self.keep_best_target() if self.is_train else None
        if target is None:
            return
        metric, dataset = target
        val_sets = [d.get('name', k) for k, d in (self.opt.get('datasets') or {}).items() if k.startswith('val')]
        if dataset_name != (dataset or (val_sets[0] if val_sets else dataset_name)):
            return
        if metric in getattr(self, 'improved_metrics', ()):
            self.save_generator('best')
            value = self.best_metric_results[dataset_name][metric]['val']
            self.logger.info(f'New best {metric} on {dataset_name}: {value:.4f} @ iter {current_iter}: net_g_best.pth')
