"""Datasets (every `*_dataset.py` module here registers in DATASET_REGISTRY) and dataloader builders."""

from __future__ import annotations

import copy
import functools

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from gfpgan.utils.registry import DATASET_REGISTRY

__all__ = ['DATASET_REGISTRY', 'build_dataset', 'build_dataloader']


def build_dataset(dataset_opt: dict, what: str = 'datasets') -> Dataset:
    """Build a dataset; upstream style, the dataset receives its whole option dict."""
    if not isinstance(dataset_opt, dict) or 'type' not in dataset_opt:
        raise KeyError(f"Option block '{what}' needs a 'type' naming a registered dataset.")
    dataset = DATASET_REGISTRY.get(dataset_opt['type'])(copy.deepcopy(dataset_opt))
    from gfpgan.utils.logger import get_root_logger

    get_root_logger().info(f'Dataset [{type(dataset).__name__}] - {dataset_opt.get("name", "")} is built.')
    return dataset


def _worker_init(worker_id: int, num_workers: int, rank: int, seed: int) -> None:
    s = num_workers * rank + worker_id + seed
    np.random.seed(s % 2**32)
    import random

    random.seed(s)
    torch.manual_seed(s)


def build_dataloader(
    dataset: Dataset,
    dataset_opt: dict,
    num_gpu: int = 1,
    dist: bool = False,
    sampler: Sampler | None = None,
    seed: int | None = None,
) -> DataLoader:
    """Dataloader for a phase (`dataset_opt['phase']`): train (per-GPU batch, workers, drop_last), else batch 1.

    A train sampler yielding `(index, seed)` pairs (EnlargedSampler) makes the dataset seeded per sample.
    """
    from gfpgan.data.sampler import EnlargedSampler, SeededDataset
    from gfpgan.utils.dist import get_dist_info

    phase = dataset_opt.get('phase', 'train')
    rank, _ = get_dist_info()
    if phase == 'train':
        multiplier = 1 if dist else max(num_gpu, 1)
        kwargs = dict(
            batch_size=dataset_opt['batch_size_per_gpu'] * multiplier,
            num_workers=dataset_opt.get('num_worker_per_gpu', 0) * multiplier,
            sampler=sampler,
            shuffle=sampler is None,
            drop_last=True,
        )
        if isinstance(sampler, EnlargedSampler):
            dataset = SeededDataset(dataset)
        if seed is not None:
            kwargs['worker_init_fn'] = functools.partial(
                _worker_init, num_workers=kwargs['num_workers'], rank=rank, seed=seed
            )
    else:
        kwargs = dict(
            batch_size=dataset_opt.get('batch_size_per_gpu', 1),
            num_workers=dataset_opt.get('num_worker_per_gpu', 0),
            sampler=sampler,
            shuffle=False,
        )
    # A private generator: creating a loader's iterator must not draw from the global torch RNG, or a
    # resumed run (which creates it at a different moment, or validates at a different time) would see a
    # shifted random stream.
    kwargs['generator'] = torch.Generator().manual_seed(seed or 0)
    kwargs['pin_memory'] = dataset_opt.get('pin_memory', torch.cuda.is_available())
    if kwargs['num_workers'] > 0:
        kwargs['persistent_workers'] = dataset_opt.get('persistent_workers', False)
        kwargs['prefetch_factor'] = dataset_opt.get('prefetch_factor', 2)
    return DataLoader(dataset, **kwargs)
