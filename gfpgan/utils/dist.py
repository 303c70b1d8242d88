"""Distributed helpers that also work (as no-ops) in a single process."""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import torch
import torch.distributed as dist


def get_dist_info() -> tuple[int, int]:
    """(rank, world_size); (0, 1) when torch.distributed is not initialized."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return get_dist_info()[0] == 0


def master_only(func: Callable) -> Callable:
    """Run `func` on rank 0 only (other ranks get None)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if is_main_process():
            return func(*args, **kwargs)
        return None

    return wrapper


def barrier() -> None:
    if get_dist_info()[1] > 1:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks in place (float64 stays float64) and return it."""
    if get_dist_info()[1] > 1:
        if dist.get_backend() == 'nccl' and tensor.device.type != 'cuda':
            moved = tensor.cuda()
            dist.all_reduce(moved)
            tensor.copy_(moved.cpu())
        else:
            dist.all_reduce(tensor)
    return tensor


def init_dist(backend: str | None = None) -> None:
    """Initialise the default process group from torchrun's environment variables.

    nccl on CUDA, gloo on CPU; each process takes the GPU of its LOCAL_RANK.
    """
    if dist.is_initialized():
        return
    if backend is None or (backend == 'nccl' and not torch.cuda.is_available()):
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'  # upstream files say nccl; CPU needs gloo
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count())
    dist.init_process_group(backend=backend)


def shutdown_dist(synchronize: bool = True) -> None:
    """Synchronise all ranks and tear the process group down.

    Exiting a gloo job without this aborts now and then in the C++ destructor ("terminate called
    without an active exception"), which fails otherwise good runs. After an error, pass
    `synchronize=False`: the other ranks may never reach the barrier.
    """
    if dist.is_available() and dist.is_initialized():
        try:
            if synchronize:
                dist.barrier()
        finally:
            dist.destroy_process_group()
