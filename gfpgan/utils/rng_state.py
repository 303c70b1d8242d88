"""Seeding and capture/restore of every random number generator, for reproducible and exactly resumable runs."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def set_random_seed(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def get_rng_state() -> dict[str, Any]:
    """All global RNG states, in a form `torch.load(weights_only=True)` can read back."""
    np_state = np.random.get_state()
    state = {
        'python': _py_state_to_tensor(random.getstate()),
        'numpy': {
            'keys': torch.from_numpy(np_state[1].astype(np.int64)),
            'pos': int(np_state[2]),
            'has_gauss': int(np_state[3]),
            'gauss': float(np_state[4]),
        },
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_tensor_to_py_state(state['python']))
    np_state = state['numpy']
    np.random.set_state(
        (
            'MT19937',
            np_state['keys'].numpy().astype(np.uint32),
            np_state['pos'],
            np_state['has_gauss'],
            np_state['gauss'],
        )
    )
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def _py_state_to_tensor(py_state: tuple) -> dict[str, Any]:
    version, internal, gauss = py_state
    return {
        'version': version,
        'internal': torch.tensor(internal, dtype=torch.int64),
        'gauss': gauss if gauss is None else float(gauss),
    }


def _tensor_to_py_state(d: dict[str, Any]) -> tuple:
    return d['version'], tuple(int(x) for x in d['internal'].tolist()), d['gauss']


def sample_seed(base_seed: int, *keys: int) -> int:
    """A 63-bit seed that depends on `base_seed` and `keys` (epoch, index...) and nothing else."""
    seq = np.random.SeedSequence([base_seed % 2**63, *[k % 2**63 for k in keys]])
    return int(seq.generate_state(2, np.uint32).astype(np.uint64).view(np.uint64)[0] >> np.uint64(1))
