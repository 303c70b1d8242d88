"""scripts/inference_sr.py and the SR background upsamplers of inference_gfpgan.py, with random weights."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gfpgan.archs import build_network
from gfpgan.bg_upsampler import SR_MODELS, BackgroundUpsampler

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / 'shared' / 'data' / 'whole_imgs' / 'Blake_Lively.jpg'
TINY = {'type': 'SRVGGNetCompact', 'num_feat': 8, 'num_conv': 2, 'upscale': 4, 'act_type': 'prelu'}
sys.path.insert(0, str(REPO / 'scripts'))
import inference_sr  # noqa: E402


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    net = build_network(TINY)
    path = tmp_path_factory.mktemp('w') / 'tiny_srvgg.pth'
    torch.save({'params': net.state_dict()}, path)
    return path


@pytest.fixture(scope='module')
def photo_dir(tmp_path_factory):
    if not PHOTO.is_file():
        pytest.skip(f'shared photo {PHOTO} is absent')
    folder = tmp_path_factory.mktemp('in')
    cv2.imwrite(str(folder / 'photo.png'), cv2.imread(str(PHOTO))[:200, :260])
    return folder


def run(args):
    return inference_sr.main([str(a) for a in args])


def test_tiled_equals_untiled_and_size_is_scale_times_input(tmp_path, tiny_model, photo_dir):
    common = ['-i', photo_dir, '--model_path', tiny_model, '--net_opt', str(TINY), '--param_key', 'params',
              '--device', 'cpu', '-s', 4]
    assert run([*common, '-o', tmp_path / 'whole', '--tile', 0]) == 0
    assert run([*common, '-o', tmp_path / 'tiled', '--tile', 64]) == 0
    whole = cv2.imread(str(tmp_path / 'whole' / 'photo_out.png'))
    tiled = cv2.imread(str(tmp_path / 'tiled' / 'photo_out.png'))
    assert whole.shape == (800, 1040, 3)
    assert np.abs(whole.astype(int) - tiled).max() <= 1
    net = build_network(TINY).eval()
    net.load_state_dict(torch.load(tiny_model)['params'])
    x = torch.from_numpy(cv2.imread(str(photo_dir / 'photo.png'))[:, :, ::-1].copy()).permute(2, 0, 1)[None] / 255.0
    with torch.no_grad():
        ref = (net(x.float())[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()[:, :, ::-1]
    assert np.abs(whole.astype(int) - ref).max() <= 1  # the script's output is the network's


def test_other_outscale_and_extension(tmp_path, tiny_model, photo_dir):
    out = tmp_path / 'o'
    assert run(['-i', photo_dir / 'photo.png', '-o', out, '--model_path', tiny_model, '--net_opt', str(TINY),
                '-s', 2, '--ext', 'jpg', '--suffix', 'x2', '--device', 'cpu']) == 0
    assert cv2.imread(str(out / 'photo_x2.jpg')).shape == (400, 520, 3)


def test_failures_are_reported(tmp_path, tiny_model, photo_dir, capsys):
    bad = tmp_path / 'in'
    bad.mkdir()
    (bad / 'broken.png').write_bytes(b'not an image')
    cv2.imwrite(str(bad / 'ok.png'), np.zeros((8, 8, 3), np.uint8))
    assert run(['-i', bad, '-o', tmp_path / 'o', '--model_path', tiny_model, '--net_opt', str(TINY),
                '--device', 'cpu']) == 1
    assert 'broken.png' in capsys.readouterr().err and (tmp_path / 'o' / 'ok_out.png').is_file()
    assert run(['-i', bad, '-n', 'MSRResNet_x4', '--device', 'cpu']) == 2
    assert 'no release download' in capsys.readouterr().err
    wrong = {**TINY, 'num_conv': 3}
    assert run(['-i', bad, '--model_path', tiny_model, '--net_opt', str(wrong), '--device', 'cpu']) == 2
    assert 'body.6.weight' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        inference_sr.parse_args(['--net_opt', str(TINY)])


def test_runs_as_a_script(tmp_path, tiny_model):
    cv2.imwrite(str(tmp_path / 'a.png'), np.full((12, 10, 3), 128, np.uint8))
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / 'scripts' / 'inference_sr.py'), '-i', str(tmp_path / 'a.png'),
                           '-o', str(tmp_path / 'o'), '--model_path', str(tiny_model), '--net_opt', str(TINY),
                           '--tile', '8', '--device', 'cpu'], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert cv2.imread(str(tmp_path / 'o' / 'a_out.png')).shape == (48, 40, 3)


def test_gfpgan_cli_takes_every_sr_model(tmp_path):
    from inference_gfpgan import build_bg_upsampler, parse_args

    for name in ['realesrgan', *SR_MODELS]:
        assert parse_args(['--bg_upsampler', name]).bg_upsampler == name
    # the released realesr-general-x4v3 layout at full size, random weights, loaded strictly
    torch.manual_seed(0)
    full = build_network(SR_MODELS['realesr-general-x4v3'].net_opt)
    path = tmp_path / 'realesr-general-x4v3.pth'
    torch.save({'params': full.state_dict()}, path)
    args = parse_args(['--bg_upsampler', 'realesr-general-x4v3', '--bg_model_path', str(path), '--bg_tile', '0',
                       '-s', '2', '--device', 'cpu'])
    bg = build_bg_upsampler(args)
    assert bg.scale == 4 and type(bg.net).__name__ == 'SRVGGNetCompact'
    out, _ = bg.enhance(np.zeros((10, 12, 3), np.uint8), outscale=2)
    assert out.shape == (20, 24, 3)
    assert build_bg_upsampler(parse_args(['--bg_upsampler', 'none'])) is None


def test_release_table_and_scale():
    for name, model in SR_MODELS.items():
        with torch.device('meta'):
            net = build_network(model.net_opt)
        assert type(net).__name__ in ('RRDBNet', 'SRVGGNetCompact', 'MSRResNet'), name
    up = BackgroundUpsampler(None, net_opt={'type': 'MSRResNet', 'num_feat': 4, 'num_block': 1, 'upscale': 3},
                             device='cpu', tile=0)
    assert up.scale == 3 and up.enhance(np.zeros((5, 6, 3), np.uint8))[0].shape == (15, 18, 3)
    with pytest.raises(KeyError, match='Unknown SR model'):
        BackgroundUpsampler.from_release('RealESRGAN_x8')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('dtype', ['fp16', 'bf16'])
def test_reduced_precision_on_gpu(tiny_model, dtype):
    full = BackgroundUpsampler(tiny_model, net_opt=TINY, device='cuda', dtype='fp32', tile=32)
    low = BackgroundUpsampler(tiny_model, net_opt=TINY, device='cuda', dtype=dtype, tile=32)
    assert next(low.net.parameters()).dtype == {'fp16': torch.float16, 'bf16': torch.bfloat16}[dtype]
    img = np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    a, b = full.enhance(img)[0], low.enhance(img)[0]
    assert a.shape == b.shape == (280, 360, 3) and np.abs(a.astype(int) - b).mean() < 2
