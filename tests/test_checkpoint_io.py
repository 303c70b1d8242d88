"""Checkpoint I/O: atomic writes, safe loading, param keys, prefix stripping, readable mismatches."""
from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from gfpgan.utils.checkpoint_io import atomic_write, load_checkpoint, load_weights, save_checkpoint


def _net(width: int = 4) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.BatchNorm2d(width))


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / 'ckpt.pth'
    save_checkpoint({'a': torch.ones(2)}, target)

    def broken(tmp):
        with open(tmp, 'wb') as f:
            f.write(b'half')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, broken)
    assert os.listdir(tmp_path) == ['ckpt.pth']
    assert torch.equal(load_checkpoint(target)['a'], torch.ones(2))


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
def test_round_trip_with_params_ema_and_module_prefix(tmp_path, suffix):
    src, dst = _net(), _net()
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    sd = {f'module.{k}': v for k, v in src.state_dict().items()}
    if suffix == '.pth':
        save_checkpoint({'params': {k: v * 0 for k, v in sd.items()}, 'params_ema': sd}, tmp_path / f'w{suffix}')
    else:
        save_checkpoint(sd, tmp_path / f'w{suffix}')
    load_weights(dst, tmp_path / f'w{suffix}', param_key='params_ema')
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        assert torch.equal(a, b), k


def test_strict_mismatch_lists_missing_unexpected_and_shapes(tmp_path):
    save_checkpoint({'params': _net(4).state_dict()}, tmp_path / 'w.pth')
    with pytest.raises(RuntimeError) as err:
        load_weights(_net(8), tmp_path / 'w.pth', param_key='params')
    msg = str(err.value)
    assert 'wrong shape' in msg and '0.weight: checkpoint (4, 3, 3, 3) vs network (8, 3, 3, 3)' in msg
    extra = nn.Sequential(nn.Conv2d(3, 4, 3))
    with pytest.raises(RuntimeError, match=r'missing: 1\.weight'):
        load_weights(_net(4), {'params': extra.state_dict()}, param_key='params')


def test_missing_param_key_and_file_errors(tmp_path):
    save_checkpoint({'params': _net().state_dict(), 'other': 1}, tmp_path / 'w.pth')
    with pytest.raises(KeyError, match="no 'weights' entry"):
        load_weights(_net(), tmp_path / 'w.pth', param_key='weights')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint(tmp_path / 'nope.pth')
    (tmp_path / 'bad.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(RuntimeError, match='bad.pth'):
        load_checkpoint(tmp_path / 'bad.pth')


def test_pickled_code_is_refused(tmp_path):
    torch.save({'params': _net().state_dict(), 'obj': _net()}, tmp_path / 'evil.pth')
    with pytest.raises(RuntimeError, match='weights_only'):
        load_checkpoint(tmp_path / 'evil.pth')
