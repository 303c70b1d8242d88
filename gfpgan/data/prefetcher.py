"""Prefetchers that hide data-loading latency: CPU (next batch ready) and CUDA (copy on a side stream)."""

from __future__ import annotations

from typing import Any, Iterable

import torch


class CPUPrefetcher:
    """Iterates a dataloader with `next()` returning None at the end of the epoch."""

    def __init__(self, loader: Iterable) -> None:
        self.ori_loader = loader
        self.loader = iter(loader)

    def next(self) -> Any:
        try:
            return next(self.loader)
        except StopIteration:
            return None

    def reset(self) -> None:
        self.loader = iter(self.ori_loader)


class CUDAPrefetcher:
    """Copies the next batch to the GPU on a side stream while the current one is being used."""

    def __init__(self, loader: Iterable, device: torch.device) -> None:
        self.ori_loader = loader
        self.device = device
        self.stream = torch.cuda.Stream(device=device)
        self.batch = None
        self.reset()

    def _preload(self) -> None:
        try:
            batch = next(self.loader)
        except StopIteration:
            self.batch = None
            return
        with torch.cuda.stream(self.stream):
            self.batch = {
                k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
            }

    def next(self) -> Any:
        torch.cuda.current_stream(self.device).wait_stream(self.stream)
        batch = self.batch
        if batch is not None:
            for v in batch.values():
                if torch.is_tensor(v):
                    v.record_stream(torch.cuda.current_stream(self.device))
        self._preload()
        return batch

    def reset(self) -> None:
        self.loader = iter(self.ori_loader)
        self._preload()
