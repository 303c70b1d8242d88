"""Choosing the state to resume from, and pruning old checkpoints."""

from __future__ import annotations

import torch

from gfpgan.train import load_resume_state, prune_checkpoints, remove_stale_temporaries
from gfpgan.utils.checkpoint_io import save_checkpoint


def _layout(tmp_path, iters):
    path = {'models': str(tmp_path / 'models'), 'training_states': str(tmp_path / 'states')}
    for it in iters:
        save_checkpoint({'iter': it, 'epoch': 0}, tmp_path / 'states' / f'{it}.state')
        for net in ('net_g', 'net_d'):
            save_checkpoint({'params': {'w': torch.zeros(1)}}, tmp_path / 'models' / f'{net}_{it}.pth')
    return path


def test_auto_resume_takes_newest_readable_state_and_points_networks_at_it(tmp_path):
    path = _layout(tmp_path, [10, 20])
    (tmp_path / 'states' / '30.state').write_bytes(b'cut short')  # a non-atomic copy, say
    (tmp_path / 'states' / '.40.state.abc.tmp').write_bytes(b'')  # an interrupted atomic save
    opt = {
        'auto_resume': True,
        'path': dict(path, ignore_resume_networks=['network_d']),
        'network_g': {},
        'network_d': {},
    }
    state = load_resume_state(opt)
    assert state['iter'] == 20
    assert opt['path']['resume_state'] == str(tmp_path / 'states' / '20.state')
    assert opt['path']['pretrain_network_g'] == str(tmp_path / 'models' / 'net_g_20.pth')
    assert 'pretrain_network_d' not in opt['path']


def test_no_state_means_fresh_start(tmp_path):
    opt = {'auto_resume': True, 'path': {'models': str(tmp_path / 'm'), 'training_states': str(tmp_path / 's')}}
    assert load_resume_state(opt) is None


def test_prune_keeps_newest_iterations_and_latest(tmp_path):
    path = _layout(tmp_path, [5, 10, 15])
    save_checkpoint({'params': {}}, tmp_path / 'models' / 'net_g_latest.pth')
    prune_checkpoints(path, keep=2)
    assert sorted(p.name for p in (tmp_path / 'states').iterdir()) == ['10.state', '15.state']
    assert sorted(p.name for p in (tmp_path / 'models').iterdir()) == [
        'net_d_10.pth',
        'net_d_15.pth',
        'net_g_10.pth',
        'net_g_15.pth',
        'net_g_latest.pth',
    ]


def test_resumed_run_removes_only_the_temporaries_of_interrupted_saves(tmp_path):
    """What a SIGKILL inside `atomic_write` leaves (`.<name>.<random>.tmp`) goes; nothing else does."""
    root = tmp_path / 'exp'
    (root / 'models').mkdir(parents=True)
    (root / 'visualization' / 'face').mkdir(parents=True)
    stale = [root / 'models' / '.net_g_30.pth.x1y2.tmp', root / '.1.state.abc.tmp',
             root / 'visualization' / 'face' / '.face_30.png.q.tmp']
    keep = [root / 'models' / 'net_g_20.pth', root / 'models' / 'notes.tmp', root / 'models' / '.hidden']
    for p in stale + keep:
        p.write_bytes(b'x')
    removed = remove_stale_temporaries(str(root))
    assert sorted(removed) == sorted(str(p) for p in stale)
    assert all(not p.exists() for p in stale) and all(p.exists() for p in keep)
