"""`datasets.train.degrade_on: device`: the model degrades gt batches in feed_data, seeded, resumable."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from launch import run_train

from gfpgan.data import build_dataset
from gfpgan.models import build_model
from gfpgan.utils.checkpoint_io import load_checkpoint

RECIPE = {  # the FFHQ degradation at 32 px, as a dataset block
    'type': 'FFHQDegradationDataset', 'name': 'ffhq', 'io_backend': {'type': 'disk'}, 'use_hflip': True,
    'mean': [0.5, 0.5, 0.5], 'std': [0.5, 0.5, 0.5], 'out_size': 32, 'blur_kernel_size': 7,
    'kernel_list': ['iso', 'aniso'], 'kernel_prob': [0.5, 0.5], 'blur_sigma': [0.1, 3], 'downsample_range': [1, 4],
    'noise_range': [0, 10], 'jpeg_range': [60, 100], 'degrade_on': 'device',
    'batch_size_per_gpu': 2, 'num_worker_per_gpu': 0, 'dataset_enlarge_ratio': 8,
}


def gfpgan_options(data_dir: Path, root: Path, name: str, iters: int) -> dict:
    return {
        'name': name, 'model_type': 'GFPGANModel', 'num_gpu': 0, 'manual_seed': 3,
        'datasets': {'train': {**RECIPE, 'dataroot_gt': str(data_dir / 'ffhq_512')}},
        'network_g': {'type': 'GFPGANv1Clean', 'out_size': 32, 'num_style_feat': 32, 'channel_multiplier': 1,
                      'num_mlp': 1, 'narrow': 0.0625, 'different_w': True},
        'network_d': {'type': 'StyleGAN2Discriminator', 'out_size': 32, 'channel_multiplier': 1, 'narrow': 0.125},
        'path': {'experiments_root': str(root / 'experiments' / name)},
        'train': {'optim_g': {'type': 'Adam', 'lr': 2e-3}, 'optim_d': {'type': 'Adam', 'lr': 2e-3},
                  'total_iter': iters, 'ema_decay': 0.9, 'pixel_opt': {'type': 'L1Loss'},
                  'gan_opt': {'type': 'GANLoss', 'gan_type': 'wgan_softplus', 'loss_weight': 0.1},
                  'r1_reg_weight': 1, 'net_d_reg_every': 2},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False},
    }


def test_feed_data_degrades_gt_batches_seeded_from_the_training_rng(data_dir, tmp_path):
    opt = gfpgan_options(data_dir, tmp_path, 'unit', 4)
    opt.update(is_train=True, dist=False, rank=0, world_size=1)
    model = build_model(opt)
    sample = build_dataset(dict(opt['datasets']['train'], phase='train'))[0]
    assert 'lq' not in sample and float(sample['gt'].min()) >= 0  # gt only, in [0, 1]
    data = {'gt': torch.stack([sample['gt']] * 2), 'gt_path': [sample['gt_path']] * 2}
    torch.manual_seed(11)
    model.feed_data(data)
    first = model.lq.clone()
    assert first.shape == (2, 3, 32, 32) and not torch.equal(first[0], first[1])  # per-sample degradations
    assert torch.allclose(model.gt, data['gt'] * 2 - 1)  # normalised with the dataset's mean/std
    torch.manual_seed(11)
    model.feed_data(data)
    assert torch.equal(model.lq, first)  # the same RNG state: the same degradation (exact resume)
    model.feed_data(data)
    assert not torch.equal(model.lq, first)
    given = {'lq': torch.zeros(1, 3, 32, 32), 'gt': torch.zeros(1, 3, 32, 32)}
    model.feed_data(given)  # a batch that has lq (validation sets) is left as it is
    assert torch.equal(model.lq, given['lq'])


def test_train_py_with_device_degradation_resumes_exactly(data_dir, tmp_path):
    """Through train.py: 4 iterations in one go equal 2 + auto-resume to 4; a stale save temporary is removed."""
    def write(name: str, iters: int) -> Path:
        path = tmp_path / f'{name}.yml'
        path.write_text(yaml.safe_dump(gfpgan_options(data_dir, tmp_path, name, iters), sort_keys=False))
        return path

    proc = run_train(['-opt', str(write('whole', 4))], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cut = write('cut', 2)
    proc = run_train(['-opt', str(cut)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    models = tmp_path / 'experiments' / 'cut' / 'models'
    stale = models / '.net_g_4.pth.k3x9a_1.tmp'  # as a run killed while saving leaves it (atomic_write's name)
    stale.write_bytes(b'half a checkpoint')
    (models / 'net_g_latest.pth').unlink()
    proc = run_train(['-opt', str(cut), '--auto_resume', '--force_yml', 'train:total_iter=4'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Resuming training from epoch' in proc.stderr + proc.stdout
    assert not stale.exists() and 'temporary file(s) left by an interrupted save' in proc.stderr + proc.stdout
    a = load_checkpoint(models / 'net_g_latest.pth')
    b = load_checkpoint(tmp_path / 'experiments' / 'whole' / 'models' / 'net_g_latest.pth')
    for key in ('params', 'params_ema'):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), f'{key}.{name} differs after resume'
    other = load_checkpoint(tmp_path / 'experiments' / 'whole' / 'models' / 'net_g_2.pth')['params']
    assert any(not torch.equal(v, other[k]) for k, v in b['params'].items())  # it trained in between


@pytest.mark.parametrize('phase', ['val', 'val_2'])
def test_device_degradation_is_for_train_sets_only(data_dir, tmp_path, phase):
    opt = gfpgan_options(data_dir, tmp_path, 'refused', 2)
    opt.update(is_train=True, dist=False, rank=0, world_size=1)
    opt['datasets'][phase] = dict(opt['datasets']['train'])
    with pytest.raises(ValueError, match=f"datasets.{phase}.degrade_on: 'device' is for train sets"):
        build_model(opt)
