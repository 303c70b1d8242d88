"""BasicSR's and Real-ESRGAN's SR option files (train_MSRResNet_x4, train_ESRGAN_x4, train_realesrnet_x4plus,
train_realesrgan_x4plus), as their users have them, validate and build unchanged: their data folders and
weight files are made here (small images, random weights of the release layouts, VGG19 under torchvision's
file name in a temporary torch hub), relative to the working directory as the files name them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from test_options_upstream import _torchvision_vgg19_layout

from gfpgan.utils.options import OptionError, parse_options, yaml_load

UPSTREAM = Path(__file__).resolve().parent / 'data' / 'upstream_options'
FILES = {'train_MSRResNet_x4.yml': 'SRModel', 'train_ESRGAN_x4.yml': 'ESRGANModel',
         'train_realesrnet_x4plus.yml': 'RealESRNetModel', 'train_realesrgan_x4plus.yml': 'RealESRGANModel'}


def _images(folder: Path, size: tuple[int, int], names: list[str], rng: np.random.Generator) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        cv2.imwrite(str(folder / name), (rng.random((*size, 3)) * 255).astype(np.uint8))


def _upstream_files(root: Path) -> None:
    """The data and weight files the four recipes name (small images, random weights)."""
    from gfpgan.archs.rrdbnet_arch import RRDBNet
    from gfpgan.archs.vgg_arch import VGGFeatureExtractor

    rng = np.random.default_rng(0)
    names = ['0001_s001.png', '0002_s001.png']
    for hr, lr in (('DIV2K/DIV2K_train_HR_sub', 'DIV2K/DIV2K_train_LR_bicubic_X4_sub'),
                   ('DF2K/DIV2K_train_HR_sub', 'DF2K/DIV2K_train_LR_bicubic_X4_sub'),
                   ('Set14/GTmod12', 'Set14/LRbicx4'), ('Set5/GTmod12', 'Set5/LRbicx4')):
        _images(root / 'datasets' / hr, (160, 144), names, rng)
        _images(root / 'datasets' / lr, (40, 36), names, rng)
    meta = root / 'basicsr' / 'data' / 'meta_info'
    meta.mkdir(parents=True)
    (meta / 'meta_info_DIV2K800sub_GT.txt').write_text(''.join(f'{n} (160,144,3)\n' for n in names))
    _images(root / 'datasets' / 'DF2K' / 'DF2K_HR_sub', (300, 280), names, rng)
    (root / 'datasets' / 'DF2K' / 'meta_info').mkdir()
    (root / 'datasets' / 'DF2K' / 'meta_info' / 'meta_info_DF2Kmultiscale+OST_sub.txt').write_text(
        ''.join(f'DF2K_HR_sub/{n}\n' for n in names))
    models = root / 'experiments' / 'pretrained_models'
    models.mkdir(parents=True)
    torch.manual_seed(0)
    rrdb = RRDBNet(3, 3, num_feat=64, num_block=23, num_grow_ch=32).state_dict()
    torch.save({'params': rrdb}, models / 'RRDB_PSNR_x4.pth')
    torch.save({'params': rrdb}, models / 'ESRGAN_SRx4_DF2KOST_official-ff704c30.pth')  # params_ema falls back
    torch.save({'params_ema': rrdb}, models / 'RealESRNet_x4plus.pth')
    vgg = VGGFeatureExtractor(['conv5_4'], vgg_type='vgg19')
    hub = root / 'torch_home' / 'hub' / 'checkpoints'
    hub.mkdir(parents=True)
    torch.save(_torchvision_vgg19_layout(vgg), hub / 'vgg19-dcbb9e9d.pth')


@pytest.fixture(scope='module')
def upstream_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('sr_upstream')
    _upstream_files(root)
    return root


def _parse(root: Path, name: str, monkeypatch) -> dict:
    monkeypatch.chdir(root)
    monkeypatch.setenv('TORCH_HOME', str(root / 'torch_home'))
    monkeypatch.delenv('WORLD_SIZE', raising=False)
    opt, _ = parse_options(root, True, ['-opt', str(UPSTREAM / name), '--force_yml', 'num_gpu=0'])  # CPU here
    return opt


@pytest.mark.parametrize('name', list(FILES))
def test_upstream_sr_file_validates_loads_data_and_builds_the_model(name, upstream_root, monkeypatch):
    from gfpgan.data import build_dataset
    from gfpgan.models import build_model

    opt = _parse(upstream_root, name, monkeypatch)
    for phase, block in opt['datasets'].items():
        block['phase'] = phase.split('_')[0]
        sample = build_dataset(block, f'datasets.{phase}')[0]
        if block['type'] == 'RealESRGANDataset':
            assert sample['gt'].shape == (3, 400, 400) and sample['kernel1'].shape == (21, 21)
        elif phase == 'train':
            assert sample['gt'].shape == (3, 128, 128) and sample['lq'].shape == (3, 32, 32)
        else:
            assert sample['gt'].shape == (3, 160, 144) and sample['lq'].shape == (3, 40, 36)
    model = build_model(opt)
    assert type(model).__name__ == FILES[name]
    assert hasattr(model, 'net_g_ema') and hasattr(model, 'net_d') == ('GAN' in FILES[name])
    if 'realesr' in name:  # the top-level degradation keys reached the degrader
        assert model.sr_degrader.opt['noise_range2'] == [1, 25] and model.top.gt_size == 256
        assert model.pair_pool.queue_size == 180
    if name != 'train_MSRResNet_x4.yml':  # the pretrained generator was loaded strictly
        saved = torch.load(upstream_root / opt['path']['pretrain_network_g'])
        weights = saved.get('params_ema', saved.get('params'))
        loaded = model.get_bare_model(model.net_g).state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in weights.items())


def test_metric_direction_must_agree_with_the_metric(upstream_root, monkeypatch, tmp_path):
    text = (UPSTREAM / 'train_MSRResNet_x4.yml').read_text().replace('better: lower', 'better: higher')
    wrong = tmp_path / 'wrong_direction.yml'
    wrong.write_text(text)
    with pytest.raises(OptionError, match=r"val\.metrics\.niqe\.better: 'higher' contradicts metric calculate_niqe, "
                                          'for which lower is better'):
        _parse(upstream_root, str(wrong), monkeypatch)


def test_top_level_degradation_keys_are_checked_with_the_model(upstream_root, monkeypatch, tmp_path):
    opt = yaml_load(UPSTREAM / 'train_realesrgan_x4plus.yml')
    assert 'gt_usm' not in opt and opt['gan_gt_usm'] is False
    text = (UPSTREAM / 'train_realesrgan_x4plus.yml').read_text()
    bad = tmp_path / 'bad.yml'
    bad.write_text(text.replace('resize_prob2: [0.3, 0.4, 0.3]', 'resize_prob2: [0.3, 0.7]'))
    with pytest.raises(OptionError, match='resize_prob2'):
        _parse(upstream_root, str(bad), monkeypatch)
    bad.write_text(text.replace('gan_gt_usm: False', 'gan_gt_usm: False\ngt_usm: True'))  # RealESRNetModel's key
    with pytest.raises(OptionError, match='gt_usm: unknown key'):
        _parse(upstream_root, str(bad), monkeypatch)
