"""Run this checkout's command-line scripts (train.py, test.py; plain or under torchrun) from tests.

Imported as `from launch import ...`: pytest puts `tests/` on sys.path (rootdir-relative, no __init__.py).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / 'gfpgan' / 'train.py'


def free_port() -> int:
    """A TCP port that is free right now (for torchrun's rendezvous)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def subprocess_env() -> dict[str, str]:
    """The environment of a child: imports this checkout, one OpenMP thread per process, unbuffered output."""
    return {
        **os.environ,
        'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')]),
        'OMP_NUM_THREADS': '1',  # many small ops: one thread per process is fastest on 2 shared cores
        'PYTHONUNBUFFERED': '1',
    }


def torchrun(nproc: int = 2) -> list[str]:
    """The launcher prefix of an `nproc`-process run on a fresh port."""
    return [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}', f'--master_port={free_port()}']


def run_script(
    script: Path | str, args: list[str], cwd: Path, launcher: list[str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess:
    """Run `script args` (under `launcher`, default plain python) in `cwd`; output is captured as text."""
    cmd = [*(launcher or [sys.executable]), str(script), *args]
    return subprocess.run(cmd, cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)


def run_train(
    args: list[str], cwd: Path, launcher: list[str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess:
    """`gfpgan/train.py args` in `cwd` (under `launcher`, e.g. `torchrun()`)."""
    return run_script(TRAIN, args, cwd, launcher, timeout)
