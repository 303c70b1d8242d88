"""End-to-end training pipeline: experiment layout, logs, checkpoints, exact resume after SIGKILL, torchrun DDP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from launch import TRAIN, run_train, subprocess_env, torchrun

from gfpgan.utils.checkpoint_io import load_checkpoint
from gfpgan.utils.options import yaml_load

TINY = """\
name: {name}
model_type: RestorationModel
num_gpu: 0
manual_seed: 7
datasets:
  train:
    name: photos
    type: SamplePhotosDataset
    num_samples: 24
    gt_size: 32
    batch_size_per_gpu: 4
    num_worker_per_gpu: {workers}
  val:
    name: photos_val
    type: SamplePhotosDataset
    num_samples: 6
    gt_size: 32
network_g: {{type: ResidualCNN, num_feat: 8, num_block: 2}}
path:
  experiments_root: {root}
train:
  optim_g: {{type: Adam, lr: !!float 2e-3}}
  scheduler: {{type: MultiStepLR, milestones: [15, 60], gamma: 0.5}}
  total_iter: {iters}
  warmup_iter: 5
  ema_decay: 0.9
  pixel_opt: {{type: L1Loss, loss_weight: 1.0}}
val:
  val_freq: {val_freq}
  save_img: true
  metrics:
    psnr: {{type: calculate_psnr, crop_border: 0}}
logger:
  print_freq: 5
  save_checkpoint_freq: {save_freq}
  use_tb_logger: true
"""


def write_opt(
    tmp_path: Path, name: str, iters: int = 20, workers: int = 0, save_freq: int = 10, val_freq: int = 10
) -> Path:
    path = tmp_path / f'{name}.yml'
    path.write_text(
        TINY.format(
            name=name,
            root=tmp_path / 'experiments' / name,
            iters=iters,
            workers=workers,
            save_freq=save_freq,
            val_freq=val_freq,
        )
    )
    return path


def test_single_process_run_layout_logs_and_checkpoints(tmp_path):
    opt = write_opt(tmp_path, 'tiny', iters=20)
    proc = run_train(['-opt', str(opt)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / 'experiments' / 'tiny'
    assert sorted(p.name for p in (exp / 'models').iterdir()) == ['net_g_10.pth', 'net_g_20.pth', 'net_g_latest.pth']
    assert sorted(p.name for p in (exp / 'training_states').iterdir()) == ['10.state', '20.state']
    assert (exp / 'tiny.yml').is_file()
    log = next(exp.glob('train_tiny_*.log')).read_text()
    assert '[tiny..][epoch:  3, iter:      20, lr:(' in log and 'l_pix: ' in log and '[eta: ' in log
    assert '# psnr: ' in log
    assert len(list((exp / 'visualization').rglob('*_20.png'))) == 6
    assert list((tmp_path / 'tb_logger' / 'tiny').glob('events.out.tfevents.*'))
    ckpt = load_checkpoint(exp / 'models' / 'net_g_20.pth')
    assert set(ckpt) == {'params', 'params_ema'}
    assert not any(k.startswith('module.') for k in ckpt['params'])
    state = load_checkpoint(exp / 'training_states' / '20.state')
    assert state['iter'] == 20 and state['epoch'] == 3 and len(state['optimizers']) == 1
    assert {'python', 'numpy', 'torch'} <= set(state['rng'])
    # warm-up then milestone: lr at iter 20 is halved once
    assert abs(state['optimizers'][0]['param_groups'][0]['lr'] - 1e-3) < 1e-12
    # a second run with the same name archives the first
    proc = run_train(['-opt', str(opt), '--force_yml', 'train:total_iter=2'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((tmp_path / 'experiments').glob('tiny_archived_*'))) == 1


def _same_weights(a: Path, b: Path) -> None:
    ca, cb = load_checkpoint(a), load_checkpoint(b)
    for key in ('params', 'params_ema'):
        for name in ca[key]:
            assert torch.equal(ca[key][name], cb[key][name]), f'{key}.{name} differs'


def test_sigkill_then_auto_resume_is_bit_exact(tmp_path):
    iters = 120
    ref = write_opt(tmp_path, 'ref', iters=iters, workers=1, save_freq=10, val_freq=1000)
    proc = run_train(['-opt', str(ref)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    opt = write_opt(tmp_path, 'killed', iters=iters, workers=1, save_freq=10, val_freq=1000)
    victim = subprocess.Popen(
        [sys.executable, str(TRAIN), '-opt', str(opt)],
        cwd=tmp_path,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    states = tmp_path / 'experiments' / 'killed' / 'training_states'
    deadline = time.time() + 120
    while not (states / '30.state').exists():
        assert victim.poll() is None, 'training ended before it could be killed'
        assert time.time() < deadline
        time.sleep(0.01)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    models = tmp_path / 'experiments' / 'killed' / 'models'
    assert not (models / 'net_g_latest.pth').exists(), 'the run finished before the kill; the test proves nothing'
    done = max(int(p.stem) for p in states.glob('*.state'))
    assert done < iters

    proc = run_train(['-opt', str(opt), '--auto_resume'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Resuming training from epoch' in proc.stderr + proc.stdout
    _same_weights(models / 'net_g_latest.pth', tmp_path / 'experiments' / 'ref' / 'models' / 'net_g_latest.pth')


@pytest.mark.slow
def test_torchrun_two_processes_train_validate_checkpoint(tmp_path):
    opt = write_opt(tmp_path, 'ddp', iters=12, save_freq=6, val_freq=6)
    proc = run_train(['-opt', str(opt)], tmp_path, launcher=torchrun())
    assert proc.returncode == 0, proc.stderr[-4000:]
    exp = tmp_path / 'experiments' / 'ddp'
    log = next(exp.glob('train_ddp_*.log')).read_text()
    assert 'World size (gpu number): 2' in log
    assert 'Validation photos_val (6 images' in log  # 3 per rank, reduced to all 6
    assert (exp / 'models' / 'net_g_12.pth').is_file() and (exp / 'training_states' / '12.state').is_file()
    state = load_checkpoint(exp / 'training_states' / '12.state')
    assert set(state['rng_per_rank']) == {0, 1}
    # the DDP-trained replicas stayed in sync: rank 0 saved, and a 1-process validation agrees with the log
    psnr_logged = float(log.split('# psnr: ')[-1].split()[0])
    train_opt = yaml_load(str(opt))  # evaluate the same network on the same validation set
    test_opt = tmp_path / 'test.yml'
    test_opt.write_text(yaml.safe_dump({
        'name': 'ddp_eval', 'model_type': 'RestorationModel', 'num_gpu': 0,
        'datasets': {'test': train_opt['datasets']['val']},
        'network_g': train_opt['network_g'],
        'path': {'pretrain_network_g': str(exp / 'models' / 'net_g_latest.pth'), 'param_key_g': 'params_ema'},
        'val': {'metrics': train_opt['val']['metrics']},
    }, sort_keys=False))
    from gfpgan.test import test_pipeline

    results = test_pipeline(str(tmp_path), ['-opt', str(test_opt)])
    assert results['photos_val']['_count'] == 6
    assert abs(results['photos_val']['psnr'] - psnr_logged) < 1e-3
    assert (tmp_path / 'results' / 'ddp_eval' / 'metrics.csv').read_text().startswith('dataset,images,psnr')
