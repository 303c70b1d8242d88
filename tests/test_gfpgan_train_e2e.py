"""GFPGAN end to end through the command lines: 2-process torchrun training (sharded validation,
checkpoints) matched by a 1-process gfpgan/test.py evaluation, a clear error when FFHQ is missing, and
(slow) training that beats the degraded input."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import torch
import yaml
from launch import REPO, run_script, run_train, torchrun

from gfpgan.utils.checkpoint_io import load_checkpoint
from gfpgan.utils.options import yaml_load

TINY = REPO / 'options' / 'train_gfpgan_tiny.yml'


def write_tiny(tmp_path: Path, data_dir: Path, name: str, iters: int, val_freq: int, **extra) -> Path:
    """options/train_gfpgan_tiny.yml with absolute data paths, a tmp experiments root and fewer iterations."""
    opt = yaml_load(TINY)
    opt['name'] = name
    for ds in opt['datasets'].values():
        ds['dataroot_gt'] = str(data_dir / Path(ds['dataroot_gt']).name)
        if ds.get('component_path'):
            ds['component_path'] = str(data_dir / 'ffhq_512' / 'eye_mouth_landmarks.pth')
    opt['path']['experiments_root'] = str(tmp_path / 'experiments' / name)
    opt['train']['total_iter'] = iters
    opt['val']['val_freq'] = val_freq
    opt['logger'].update(print_freq=max(1, iters // 2), save_checkpoint_freq=iters)
    for key, value in extra.items():
        section, _, sub = key.partition('__')
        if sub:
            opt[section][sub] = value
        else:
            opt[section] = value
    path = tmp_path / f'{name}.yml'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def logged_metrics(log: str) -> dict[str, dict[str, float]]:
    """The last validation block of each dataset in a training log: {dataset: {metric: value}}."""
    out: dict[str, dict[str, float]] = {}
    for block in re.finditer(r'Validation (\S+) \((\d+) images[^\n]*\n((?:\t # .*\n?)+)', log):
        values = dict(re.findall(r'# (\w+): ([-\d.naif]+)', block.group(3)))
        out[block.group(1)] = {k: float(v) for k, v in values.items()}
        out[block.group(1)]['_count'] = int(block.group(2))
    return out


def test_torchrun_two_processes_matches_one_process_evaluation(tmp_path, data_dir):
    opt_path = write_tiny(tmp_path, data_dir, 'ddp', iters=4, val_freq=4)
    proc = run_train(['-opt', str(opt_path)], tmp_path, launcher=torchrun(), timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    exp = tmp_path / 'experiments' / 'ddp'
    log = next(exp.glob('train_ddp_*.log')).read_text()
    assert 'World size (gpu number): 2' in log
    assert 'l_d_r1: ' in log and 'l_g_comp_style_loss: ' in log and 'l_identity: ' in log
    names = sorted(p.name for p in (exp / 'models').iterdir())
    for label in ('net_g', 'net_d', 'net_d_left_eye', 'net_d_right_eye', 'net_d_mouth'):
        assert f'{label}_4.pth' in names and f'{label}_latest.pth' in names
    assert 'net_g_best.pth' in names  # val.keep_best: {metric: psnr}
    assert (exp / 'training_states' / '4.state').is_file()
    ddp = logged_metrics(log)
    assert ddp['cropped_faces_val']['_count'] == 4  # 2 per rank, reduced to all 4
    assert len(list((exp / 'visualization').rglob('*_4.png'))) == 5  # both ranks saved their share

    # one process evaluates the same checkpoint with gfpgan/test.py
    train_opt = yaml_load(opt_path)
    test_opt = {
        'name': 'eval_ddp',
        'model_type': 'GFPGANModel',
        'num_gpu': 0,
        'datasets': {k.replace('val', 'test'): v for k, v in train_opt['datasets'].items() if k.startswith('val')},
        'network_g': train_opt['network_g'],
        'path': {'pretrain_network_g': str(exp / 'models' / 'net_g_latest.pth'), 'param_key_g': 'params_ema',
                 'results_root': str(tmp_path / 'results' / 'eval_ddp')},
        'val': {'save_img': True, 'metrics': train_opt['val']['metrics']},
    }
    (tmp_path / 'eval.yml').write_text(yaml.safe_dump(test_opt, sort_keys=False))
    proc = run_script(REPO / 'gfpgan' / 'test.py', ['-opt', str(tmp_path / 'eval.yml')], tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(tmp_path / 'results' / 'eval_ddp' / 'metrics.csv') as f:
        table = {row['dataset']: row for row in csv.DictReader(f)}
    for dataset in ('ffhq_sample_val', 'cropped_faces_val'):
        assert int(table[dataset]['images']) == ddp[dataset]['_count']
        metrics = ('psnr', 'ssim', 'deg') + (('fid',) if dataset == 'cropped_faces_val' else ())
        for metric in metrics:
            # the log prints 4 decimals; the table 6
            assert float(table[dataset][metric]) == pytest.approx(ddp[dataset][metric], abs=6e-5), (dataset, metric)
    assert ddp['cropped_faces_val']['fid'] > 0 and ddp['cropped_faces_val']['deg'] > 0
    ckpt = load_checkpoint(exp / 'models' / 'net_g_latest.pth')
    assert set(ckpt) == {'params', 'params_ema'}


def test_missing_ffhq_is_a_clear_error(tmp_path, data_dir):
    opt_path = write_tiny(tmp_path, data_dir, 'noffhq', iters=2, val_freq=2)
    opt = yaml_load(opt_path)
    opt['datasets']['train']['dataroot_gt'] = str(tmp_path / 'datasets' / 'ffhq' / 'ffhq_512')
    opt_path.write_text(yaml.safe_dump(opt, sort_keys=False))
    proc = run_train(['-opt', str(opt_path)], tmp_path, timeout=120)
    assert proc.returncode == 2
    assert 'datasets/ffhq/ffhq_512' in proc.stderr and 'Traceback' not in proc.stderr


@pytest.mark.slow
def test_tiny_training_beats_the_degraded_input(tmp_path, data_dir):
    """Training the tiny config must restore the validation face better than its degraded input."""
    from gfpgan.data import build_dataset
    from gfpgan.metrics import calculate_metric
    from gfpgan.utils.image_io import tensor2img

    iters = 200
    opt_path = write_tiny(tmp_path, data_dir, 'fit', iters=iters, val_freq=iters)
    val_opt = dict(yaml_load(opt_path)['datasets']['val'], phase='val')
    sample = build_dataset(val_opt)[0]
    pair = {'img': tensor2img(sample['lq'], min_max=(-1, 1)), 'img2': tensor2img(sample['gt'], min_max=(-1, 1))}
    input_psnr = calculate_metric(pair, {'type': 'calculate_psnr'})
    proc = run_train(['-opt', str(opt_path)], tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = next((tmp_path / 'experiments' / 'fit').glob('train_fit_*.log')).read_text()
    restored = logged_metrics(log)['ffhq_sample_val']['psnr']
    assert restored > input_psnr + 0.5, (restored, input_psnr)


@pytest.mark.slow
def test_auto_resume_is_bit_exact(tmp_path, data_dir):
    """2 iterations + --auto_resume to 3 gives the weights of 3 straight iterations (every network)."""
    runs = {}
    for name, steps in (('straight', [3]), ('resumed', [2, 3])):
        opt_path = write_tiny(tmp_path, data_dir, name, iters=3, val_freq=100)
        for i, iters in enumerate(steps):
            args = ['-opt', str(opt_path), '--force_yml', f'train:total_iter={iters}', 'logger:save_checkpoint_freq=2']
            proc = run_train(args + (['--auto_resume'] if i else []), tmp_path, timeout=300)
            assert proc.returncode == 0, proc.stderr[-4000:]
        runs[name] = tmp_path / 'experiments' / name / 'models'
    for label in ('net_g', 'net_d', 'net_d_left_eye', 'net_d_mouth'):
        a = load_checkpoint(runs['straight'] / f'{label}_latest.pth')
        b = load_checkpoint(runs['resumed'] / f'{label}_latest.pth')
        for key in a:
            assert all(torch.equal(a[key][n], b[key][n]) for n in a[key]), (label, key)
