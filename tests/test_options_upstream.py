"""Upstream GFPGAN / BasicSR option files run unchanged: with their data and weight files in place (random
stand-ins made here, VGG19 in torch's hub cache under torchvision's file name), each validates, its
datasets give samples and its model builds, through the same parse_options as gfpgan/train.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from gfpgan.utils.options import parse_options

REPO = Path(__file__).resolve().parents[1]
UPSTREAM = REPO / 'tests' / 'data' / 'upstream_options'
FACE = REPO.parent / 'shared' / 'data' / 'ffhq_512'


def _save(state_dict: dict, path: Path, key: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({key: state_dict} if key else state_dict, path)


def _upstream_files(root: Path) -> None:
    """The files upstream's recipes expect, relative to the working directory (random weights)."""
    from gfpgan.archs.arcface_arch import ResNetArcFace
    from gfpgan.archs.stylegan2_arch import StyleGAN2Generator
    from gfpgan.archs.vgg_arch import VGGFeatureExtractor

    faces = root / 'datasets' / 'ffhq' / 'ffhq_512'
    faces.mkdir(parents=True)
    shutil.copy(FACE / '00000000.png', faces / '00000000.png')
    models = root / 'experiments' / 'pretrained_models'
    models.mkdir(parents=True)
    shutil.copy(FACE / 'eye_mouth_landmarks.pth', models / 'FFHQ_eye_mouth_landmarks_512.pth')
    for sub in ('input', 'reference'):
        folder = root / 'datasets' / 'faces' / 'validation' / sub
        folder.mkdir(parents=True)
        shutil.copy(FACE / '00000000.png', folder / '00000000.png')
    torch.manual_seed(0)
    decoder = StyleGAN2Generator(out_size=512, num_style_feat=512, num_mlp=8, channel_multiplier=1,
                                 resample_kernel=(1, 3, 3, 1), lr_mlp=0.01)
    _save(decoder.state_dict(), models / 'StyleGAN2_512_Cmul1_FFHQ_B12G4_scratch_800k.pth', 'params_ema')
    arcface = ResNetArcFace(block='IRBlock', layers=[2, 2, 2, 2], use_se=False)
    _save(arcface.state_dict(), models / 'arcface_resnet18.pth', None)  # the release file is a bare state dict
    vgg = VGGFeatureExtractor(['conv5_4'], vgg_type='vgg19')  # random: only the file's layout matters here
    _save(_torchvision_vgg19_layout(vgg), root / 'torch_home' / 'hub' / 'checkpoints' / 'vgg19-dcbb9e9d.pth', None)


def _torchvision_vgg19_layout(vgg: torch.nn.Module) -> dict:
    """`features.<index>.weight/bias` of torchvision's VGG19, with random values of the right shapes."""
    convs = [m for m in vgg.modules() if isinstance(m, torch.nn.Conv2d)]
    indices = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]  # torchvision's vgg19 conv positions
    out = {}
    for idx, conv in zip(indices, convs):
        out[f'features.{idx}.weight'] = torch.randn_like(conv.weight) * 0.01
        out[f'features.{idx}.bias'] = torch.zeros_like(conv.bias)
    return out


@pytest.mark.slow
@pytest.mark.parametrize('name', ['train_gfpgan_v1.yml', 'train_gfpgan_v1_simple.yml'])
def test_upstream_training_file_validates_loads_data_and_builds_the_model(name, tmp_path, monkeypatch, capsys):
    if not FACE.is_dir():
        pytest.skip('../shared/data/ffhq_512 is absent')
    from gfpgan.data import build_dataset
    from gfpgan.models import build_model

    _upstream_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.delenv('WORLD_SIZE', raising=False)
    opt, _ = parse_options(tmp_path, True, ['-opt', str(UPSTREAM / name)])
    notices = [line for line in capsys.readouterr().err.splitlines() if line.startswith('gfpgan: notice: ')]
    assert len(notices) == 2  # use_shuffle and dist_params.port: accepted, without effect
    for phase, block in opt['datasets'].items():
        block['phase'] = phase.split('_')[0]
        sample = build_dataset(block, f'datasets.{phase}')[0]
        assert sample['gt'].shape == (3, 512, 512) and sample['lq'].shape == (3, 512, 512)
        if block.get('crop_components'):
            assert {'loc_left_eye', 'loc_right_eye', 'loc_mouth'} <= set(sample)
    model = build_model(opt)
    assert type(model).__name__ == 'GFPGANModel'
    assert hasattr(model, 'net_d') and hasattr(model, 'net_g_ema')
    assert hasattr(model, 'net_d_left_eye') == (name == 'train_gfpgan_v1.yml')


@pytest.mark.slow
def test_basicsr_style_test_file_builds_and_loads_the_release_layout(tmp_path, monkeypatch):
    from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
    from gfpgan.models import build_model

    torch.manual_seed(0)
    release = dict(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None,
                   fix_decoder=False, num_mlp=8, input_is_latent=True, different_w=True, narrow=1, sft_half=True)
    weights = GFPGANv1Clean(**release).state_dict()
    _save(weights, tmp_path / 'experiments' / 'pretrained_models' / 'GFPGANv1.4.pth', 'params_ema')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('WORLD_SIZE', raising=False)
    opt, _ = parse_options(tmp_path, False, ['-opt', str(UPSTREAM / 'test_gfpgan_basicsr_style.yml'), '--force_yml',
                                             'num_gpu=0'])
    assert opt['datasets']['test_1']['scale'] == 1  # upstream's top-level scale reaches the dataset
    model = build_model(opt)
    loaded = model.get_bare_model(model.net_g).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in weights.items())
