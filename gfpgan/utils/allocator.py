"""Keep freed CPU memory in the process, so that large tensors stop paying for fresh pages on every call.

glibc serves every allocation above its mmap threshold (at most 32 MB) with newly mapped pages and unmaps
them on free. A 512 px face makes activations of up to 134 MB (540 MB at batch 4), so each layer's output
is page-faulted and zero-filled by the kernel again on every forward: on the 2-core CPU of BENCHMARKS.md
that was 0.2 M page faults per face at batch 1 and 1.7 M per call at batch 4. Serving them from the heap and
keeping what is freed makes the next call reuse the same pages (1.4x faster per face at batch 1, 1.8x at
batch 4 there). All threads share the main heap (one arena): a worker thread's arena holds at most 64 MB,
so without that a thread (the web app's, the video pipeline's) would still map and fault its large tensors.

Training is the same story: one GFPGAN iteration at 256 px, batch 4, went from 11.3 s to 7.0 s (1.6x), a
lightweight-GAN step at 256 px, batch 8, 1.1-1.2x faster.

The setting is process-wide, so the library never applies it by itself: the command lines do
(`inference_gfpgan.py`, `gfpgan-app`, `gfpgan/train.py`, `gfpgan/test.py`, `gfpgan-gan`), and Python callers
may. `GFPGAN_KEEP_FREED_MEMORY=0` turns it off. The cost: the process keeps its peak memory until it exits
instead of returning it between calls (+10 % peak in training, +60 % for inference at batch 4 after batch 1).
"""
from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8  # mallopt parameters (malloc.h)
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes a C int: return free heap tops above 2 GB only
ENV = 'GFPGAN_KEEP_FREED_MEMORY'


def keep_freed_memory() -> bool:
    """Ask glibc to serve large allocations from the heap and keep freed memory; True when it took effect.

    A no-op (False) off glibc (macOS, Windows, musl), or with `GFPGAN_KEEP_FREED_MEMORY=0`. Call it before
    starting threads: one that already has its own arena keeps it.
    """
    if os.environ.get(ENV, '1').strip().lower() in ('0', 'false', 'no', 'off'):
        return False
    if not sys.platform.startswith('linux'):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_ARENA_MAX, 1))
    return all([bool(mallopt(param, value)) for param, value in settings])
