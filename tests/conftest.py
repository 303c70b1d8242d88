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


@pytest.fixture
def no_weights_anywhere(tmp_path: Path, monkeypatch) -> Path:
    """No weight file can be found by accident: an empty cache, no $GFPGAN_WEIGHTS_DIR, and the working
    directory and the package's parent (upstream's weight folders live under both) moved to empty folders
    under tmp_path. Downloads stay as they were (set GFPGAN_OFFLINE=1 to forbid them). Returns the new
    working directory."""
    from gfpgan.face import weights

    cwd = tmp_path / 'work'
    cwd.mkdir(exist_ok=True)
    monkeypatch.chdir(cwd)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    monkeypatch.delenv('GFPGAN_WEIGHTS_DIR', raising=False)
    monkeypatch.setattr(weights, 'PACKAGE_PARENT', tmp_path / 'site-packages')
    return cwd
