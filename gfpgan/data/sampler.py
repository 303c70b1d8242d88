"""Samplers: the training sampler (enlarged, sharded, resumable mid-epoch, per-sample seeds) and the
validation sharder (every sample exactly once over all ranks)."""

from __future__ import annotations

import math
from typing import Iterator

import torch
from torch.utils.data import Dataset, Sampler

from gfpgan.utils.rng_state import sample_seed


class EnlargedSampler(Sampler):
    """Shuffled, rank-sharded sampler over a dataset virtually enlarged `ratio` times (as BasicSR's).

    Each item is `(index, seed)`: `seed` depends only on (base seed, epoch, position), so a
    `SeededDataset` draws the same augmentation for it whichever worker or process reads it,
    and a resumed run (`set_epoch(epoch, start=k)`) replays the rest of the epoch exactly.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, ratio: int = 1, seed: int = 0) -> None:
        self.dataset, self.num_replicas, self.rank, self.seed = dataset, num_replicas, rank, seed
        self.epoch, self.start = 0, 0
        self.num_samples = math.ceil(len(dataset) * ratio / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.total_size, generator=g).tolist()
        n = len(self.dataset)
        mine = order[self.rank : self.total_size : self.num_replicas]
        for pos in range(self.start, len(mine)):
            yield mine[pos] % n, sample_seed(self.seed, self.epoch, self.rank, pos)

    def __len__(self) -> int:
        return self.num_samples - self.start

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Start `epoch`, skipping its first `start` samples (those a resumed run already consumed)."""
        self.epoch, self.start = epoch, start


class ShardSampler(Sampler):
    """Rank `r` of `w` gets indices r, r+w, r+2w...: no padding, so a sharded validation counts each
    sample once and its reduced metrics equal a single-process run."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int) -> None:
        self.indices = list(range(rank, len(dataset), num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class SeededDataset(Dataset):
    """Wraps a dataset so that item `(index, seed)` is drawn with python/numpy/torch seeded by `seed`.

    Datasets written BasicSR-style use the global RNGs for augmentation; seeding them per sample makes
    a sample's augmentation independent of worker count and process history (exact resume). In the
    main process (num_workers 0) the training RNG states are saved and restored around the call.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        if name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, item):
        if not isinstance(item, tuple):
            return self.dataset[item]
        index, seed = item
        import random

        import numpy as np
        from torch.utils.data import get_worker_info

        def seed_cpu_rngs() -> None:  # not CUDA's: data is made on the CPU, and CUDA's state is the model's
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.default_generator.manual_seed(seed)

        if get_worker_info() is not None:  # a worker process: its RNGs belong to data loading alone
            seed_cpu_rngs()
            return self.dataset[index]
        saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
        seed_cpu_rngs()
        try:
            return self.dataset[index]
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])
