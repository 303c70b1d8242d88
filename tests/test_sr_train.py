"""The SR recipes end to end: the tiny ESRGAN / Real-ESRNet / Real-ESRGAN option files train on CPU through
gfpgan/train.py (validation, release checkpoint layout, logged losses); RealESRGANModel resumes exactly
(degradation generator, training-pair pool and networks)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from launch import REPO, run_train
from test_gfpgan_train_e2e import logged_metrics

from gfpgan.utils.options import yaml_load


def write_tiny(tmp_path: Path, data_dir: Path, recipe: str, name: str, iters: int, **top) -> Path:
    """options/train_<recipe>_tiny.yml with absolute data paths, a tmp experiments root and `iters` iterations."""
    opt = yaml_load(REPO / 'options' / f'train_{recipe}_tiny.yml')
    opt['name'] = name
    for ds in opt['datasets'].values():
        ds['dataroot_gt'] = str(data_dir / Path(ds['dataroot_gt']).name)
    opt['path']['experiments_root'] = str(tmp_path / 'experiments' / name)
    opt['train']['total_iter'] = iters
    opt['val']['val_freq'] = iters
    opt['logger'].update(print_freq=max(1, iters // 2), save_checkpoint_freq=iters)
    opt.update(top)
    path = tmp_path / f'{name}.yml'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def test_tiny_recipes_train_through_train_py(tmp_path, data_dir):
    """Two iterations of each tiny recipe: validation runs, the release checkpoint layout is written."""
    from gfpgan.utils.checkpoint_io import load_checkpoint

    for recipe in ('esrgan', 'realesrnet', 'realesrgan'):
        opt_path = write_tiny(tmp_path, data_dir, recipe, f'smoke_{recipe}', iters=2)
        proc = run_train(['-opt', str(opt_path)], tmp_path, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
        exp = tmp_path / 'experiments' / f'smoke_{recipe}'
        log = next(exp.glob('train_*.log')).read_text()
        assert logged_metrics(log)['faces_val']['_count'] == 4
        assert set(load_checkpoint(exp / 'models' / 'net_g_latest.pth')) == {'params', 'params_ema'}
        assert (exp / 'models' / 'net_d_latest.pth').is_file() == (recipe != 'realesrnet')
        logged = ('l_g_pix', 'l_g_gan', 'l_d_real', 'l_d_fake', 'out_d_real') if recipe != 'realesrnet' else ('l_pix',)
        for key in logged:
            assert f'{key}: ' in log, key


def _tiny_model(tmp_path: Path, data_dir: Path, name: str, pretrained: dict | None = None):
    from gfpgan.models import build_model
    from gfpgan.utils.experiment import make_exp_dirs
    from gfpgan.utils.options import parse_options

    opt_path = write_tiny(tmp_path, data_dir, 'realesrgan', name, iters=10, queue_size=8, l1_gt_usm=True)
    args = ['-opt', str(opt_path), '--force_yml', 'datasets:train:batch_size_per_gpu=4']
    opt, _ = parse_options(tmp_path, True, args)
    opt['path'].update(pretrained or {})
    make_exp_dirs(opt, resumed=False)
    return build_model(opt)


def test_realesrgan_resume_is_exact(tmp_path, data_dir, monkeypatch):
    """Iterations 1-2, save, resume in a new model: iteration 3 sees the same pooled pair and gives the
    same weights as the uninterrupted model (the pool is full after 2 batches of 4, so 3 draws from it)."""
    from torch.utils.data import default_collate

    from gfpgan.data import build_dataset
    from gfpgan.utils.checkpoint_io import load_checkpoint

    monkeypatch.delenv('WORLD_SIZE', raising=False)
    torch.manual_seed(0)
    straight = _tiny_model(tmp_path, data_dir, 'straight')
    ds = build_dataset(dict(straight.opt['datasets']['train'], seed=3))
    batches = [default_collate([ds[(4 * b + i) % len(ds)] for i in range(4)]) for b in range(3)]
    for it in (1, 2):
        straight.feed_data(batches[it - 1])
        straight.optimize_parameters(it)
    straight.save(0, 2)
    state_path = straight.save_training_state(0, 2)
    straight.feed_data(batches[2])
    lq, gt = straight.lq.clone(), straight.gt.clone()
    straight.optimize_parameters(3)

    models = Path(straight.opt['path']['models'])
    resumed = _tiny_model(tmp_path, data_dir, 'resumed', {'pretrain_network_g': str(models / 'net_g_2.pth'),
                                                          'pretrain_network_d': str(models / 'net_d_2.pth')})
    resumed.resume_training(load_checkpoint(state_path))
    resumed.feed_data(batches[2])
    assert torch.equal(resumed.lq, lq) and torch.equal(resumed.gt, gt)
    assert not torch.equal(lq, batches[2]['gt'][:, :, ::4, ::4])  # a pooled, degraded pair
    resumed.optimize_parameters(3)
    for net in ('net_g', 'net_g_ema', 'net_d'):
        a = resumed.get_bare_model(getattr(straight, net)).state_dict()
        b = resumed.get_bare_model(getattr(resumed, net)).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), net


def bicubic_psnr(val_opt: dict, crop_border: int) -> float:
    """Mean PSNR of plain bicubic upsampling on the validation set: the dataset's lq (MATLAB-style bicubic
    downscale) upscaled by MATLAB-style bicubic, scored like validation (uint8 images, calculate_psnr)."""
    import numpy as np

    from gfpgan.data import build_dataset
    from gfpgan.metrics.niqe_metric import imresize_matlab
    from gfpgan.metrics.psnr_ssim_metric import calculate_psnr
    from gfpgan.utils.image_io import tensor2img

    ds = build_dataset(dict(val_opt, phase='val', scale=4))
    scores = []
    for i in range(len(ds)):
        item = ds[i]
        lq = item['lq'].numpy().transpose(1, 2, 0)
        up = np.clip(np.stack([imresize_matlab(lq[..., c], 4.0) for c in range(3)], axis=2), 0, 1)
        up = torch.from_numpy(np.ascontiguousarray(up.transpose(2, 0, 1)))[None]
        scores.append(calculate_psnr(tensor2img(up), tensor2img(item['gt'][None]), crop_border=crop_border))
    return float(np.mean(scores))


@pytest.mark.slow
@pytest.mark.parametrize('recipe', ['esrgan', 'realesrnet'])
def test_tiny_recipe_beats_bicubic(tmp_path, data_dir, recipe):
    """The tiny recipe, as its option file has it (iterations, cosine lr, EMA), trained through train.py:
    the final EMA generator's validation PSNR beats bicubic upsampling of the same validation images.

    Honest scope: validation is on the 4 training faces (../shared/data/cropped_faces, whole images, not
    the 64/128 px training crops), because the shared data holds no other face crops; this checks that the
    recipe learns, not that it generalises."""
    opt = yaml_load(REPO / 'options' / f'train_{recipe}_tiny.yml')
    iters = opt['train']['total_iter']
    opt_path = write_tiny(tmp_path, data_dir, recipe, f'psnr_{recipe}', iters=iters)
    proc = run_train(['-opt', str(opt_path)], tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = next((tmp_path / 'experiments' / f'psnr_{recipe}').glob('train_*.log')).read_text()
    final = logged_metrics(log)['faces_val']['psnr']  # the last validation: the EMA net at total_iter
    written = yaml_load(opt_path)
    baseline = bicubic_psnr(written['datasets']['val'], written['val']['metrics']['psnr']['crop_border'])
    assert final > baseline + 0.1, f'{recipe}: {final:.2f} dB after {iters} iterations, bicubic {baseline:.2f} dB'
