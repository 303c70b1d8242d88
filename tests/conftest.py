"""Shared pytest fixtures: paths to ../shared data, skipped cleanly when it is absent."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared'


@pytest.fixture(autouse=True)
def _few_threads():
    """One thread per test: tiny networks gain nothing from more, and on 2 shared cores they lose a lot."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope='session')
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f'{SHARED} is absent (compat fixtures and sample faces live there)')
    return SHARED


@pytest.fixture(scope='session')
def compat_dir(shared_dir: Path) -> Path:
    path = shared_dir / 'compat'
    if not path.is_dir():
        pytest.skip(f'{path} is absent')
    return path


@pytest.fixture(scope='session')
def data_dir(shared_dir: Path) -> Path:
    path = shared_dir / 'data'
    if not path.is_dir():
        pytest.skip(f'{path} is absent')
    return path
