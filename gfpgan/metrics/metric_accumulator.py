"""Per-sample metric accumulation that reduces across ranks, so N-rank validation equals one process.

Each rank adds the values of the samples it evaluated; `reduce()` all-reduces (sum, count) per name
in float64 and returns the means. Ranks may have seen different metric names (e.g. one rank got no
sample of a dataset): names are gathered first, so every rank joins the same reduction.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.distributed as dist

from gfpgan.utils.dist import all_reduce_sum, get_dist_info


class MetricAccumulator:
    """`update(name, value)` per sample (or a batch of values), `reduce() -> {name: mean}` on every rank."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._sums: dict[str, float] = {n: 0.0 for n in names}
        self._counts: dict[str, int] = {n: 0 for n in names}

    def update(self, name: str, value: float | torch.Tensor, count: int | None = None) -> None:
        """Add one value, or a tensor of per-sample values (each counts once).

        `count` > 1 declares `value` to be the mean of that many samples.
        """
        if isinstance(value, torch.Tensor) and value.numel() != 1:
            values = value.detach().double().flatten()
            total, n = values.sum().item(), values.numel()
        else:
            n = 1 if count is None else int(count)
            total = float(value) * n
        if math.isnan(total):
            raise ValueError(f"Metric '{name}' got a NaN value.")
        self._sums[name] = self._sums.get(name, 0.0) + total
        self._counts[name] = self._counts.get(name, 0) + n

    def reset(self) -> None:
        self._sums = {n: 0.0 for n in self._sums}
        self._counts = {n: 0 for n in self._counts}

    def _all_names(self) -> list[str]:
        names = set(self._sums)
        _, world = get_dist_info()
        if world > 1:
            gathered: list = [None] * world
            dist.all_gather_object(gathered, sorted(names))
            names = set().union(*gathered)
        return sorted(names)

    def reduce(self) -> dict[str, float]:
        """Means over all ranks' samples (NaN for a name nobody updated). Every rank must call it."""
        names = self._all_names()
        if not names:
            return {}
        stats = torch.tensor([[self._sums.get(n, 0.0), float(self._counts.get(n, 0))] for n in names],
                             dtype=torch.float64)
        all_reduce_sum(stats)
        return {n: (s / c if c > 0 else float('nan')) for n, (s, c) in zip(names, stats.tolist())}
