"""2-process gloo run of options/train_lightweight_gan_tiny.yml: trains, logs, writes grids, computes FID,
keeps the best checkpoint, and resumes exactly; its FID equals a 1-process evaluation of the checkpoint."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import torch
from launch import REPO, run_train, torchrun

from gfpgan.utils.checkpoint_io import load_checkpoint

OPT = REPO / 'options' / 'train_lightweight_gan_tiny.yml'


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run_train(['-opt', str(OPT), *args], cwd, launcher=torchrun(), timeout=300)


@pytest.mark.slow
def test_two_process_lightweight_gan_trains_validates_and_resumes(tmp_path):
    first = _torchrun(['--force_yml', 'name=ddp_gan', 'train:total_iter=20'], tmp_path)
    assert first.returncode == 0, first.stderr[-4000:]
    exp = tmp_path / 'experiments' / 'ddp_gan'
    second = _torchrun(['--force_yml', 'name=ddp_gan', '--auto_resume'], tmp_path)
    assert second.returncode == 0, second.stderr[-4000:]
    assert 'Resuming training from epoch: 0, iter: 20' in second.stderr + second.stdout

    log = '\n'.join(p.read_text() for p in sorted(exp.glob('train_ddp_gan_*.log')))
    assert 'World size (gpu number): 2' in log
    for key in ('l_d:', 'l_g:', 'D(x):', 'D(G(z))_pre_g:', 'D(G(z))_post_g:', 'l_d_recon:'):
        assert key in log, key
    assert 'Validation shapes_fid (128 images' in log  # 64 reals per rank, reduced
    fids = [float(v) for v in re.findall(r'# fid: ([0-9.]+)', log)]
    assert len(fids) == 2 and all(v > 0 for v in fids)
    vis = exp / 'visualization'
    for it in (10, 20, 30, 40):
        assert (vis / f'samples_{it:08d}.png').is_file() and (vis / f'samples_ema_{it:08d}.png').is_file()
    assert (vis / 'loss_curve.png').is_file()
    models = exp / 'models'
    assert {'net_g_20.pth', 'net_g_40.pth', 'net_d_40.pth', 'net_g_best.pth', 'net_g_latest.pth'} <= {
        p.name for p in models.iterdir()}
    state = load_checkpoint(exp / 'training_states' / '40.state')
    assert [h['iter'] for h in state['gan_model']['history']][:4] == [5.0, 10.0, 15.0, 20.0]  # kept over resume

    # the FID logged by the 2-rank run equals a single-process FID of the saved generator
    from gfpgan.data import build_dataloader, build_dataset
    from gfpgan.models import build_model
    from gfpgan.utils.options import yaml_load
    opt = yaml_load(str(OPT))
    opt.update({'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1})
    opt['path'] = {'experiments_root': str(tmp_path / 'eval'), 'models': str(tmp_path / 'eval' / 'models'),
                   'visualization': str(tmp_path / 'eval' / 'vis'), 'pretrain_network_g': str(models / 'net_g_40.pth')}
    opt['val']['keep_best'] = False
    torch.manual_seed(0)
    model = build_model(opt)
    val_opt = dict(opt['datasets']['val'], phase='val')
    result = model.validation(build_dataloader(build_dataset(val_opt), val_opt), 40, None)
    assert result['fid'] == pytest.approx(fids[-1], abs=2e-4)  # the log prints 4 decimals
