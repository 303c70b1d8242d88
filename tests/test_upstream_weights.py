"""Weights where upstream users keep them, and checkpoints that upstream's tools load.

- `inference_gfpgan.py -v X` / `--model_path <release URL>` and `GFPGANer(model_path=<release URL>)` find
  release files in upstream's `experiments/pretrained_models/` and `gfpgan/weights/` (after --weights_dir and
  $GFPGAN_WEIGHTS_DIR, before the cache and a download), and say where they took them.
  Tiny fake files, never a download.
- `net_g_<iter>.pth` written by training has the release layout (`params` / `params_ema`, the release
  key names; at full size exactly the manifest's keys and shapes) and loads strictly into a network
  built from the release arguments and into `GFPGANer`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import pytest
import torch

from gfpgan.face.weights import find_weights, load_file_from_url, search_folders

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from test_restorer import save_tiny_generator  # noqa: E402

import inference_gfpgan  # noqa: E402

V14_URL = 'https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.4.pth'
EXP, GW = 'experiments/pretrained_models', 'gfpgan/weights'


@pytest.fixture
def user_dir(no_weights_anywhere, monkeypatch) -> Path:
    """An upstream user's working directory, offline, with no weights anywhere else (see conftest)."""
    monkeypatch.setenv('GFPGAN_OFFLINE', '1')
    return no_weights_anywhere


def put(folder: Path, name: str = 'GFPGANv1.4.pth', data: bytes = b'fake') -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def test_lookup_order_weights_dir_env_upstream_folders_install_cache(user_dir, tmp_path, monkeypatch):
    explicit, env, install, cache = (tmp_path / 'explicit', tmp_path / 'env', tmp_path / 'site-packages',
                                     tmp_path / 'cache' / 'gfpgan')
    monkeypatch.setenv('GFPGAN_WEIGHTS_DIR', str(env))
    order = [explicit, env, user_dir / EXP, user_dir / GW, install / EXP, install / GW, cache]
    assert [f for f, _ in search_folders(explicit)] == order
    assert find_weights('GFPGANv1.4.pth', explicit) is None
    for folder in reversed(order):  # each new copy sits earlier in the order, so it must win
        path = put(folder)
        assert find_weights('GFPGANv1.4.pth', explicit)[0] == str(path)
    assert find_weights('GFPGANv1.4.pth', explicit)[1] == 'the weights folder given'
    (explicit / 'GFPGANv1.4.pth').unlink()
    (env / 'GFPGANv1.4.pth').unlink()
    assert find_weights('GFPGANv1.4.pth', explicit) == (
        str(user_dir / EXP / 'GFPGANv1.4.pth'), "upstream's experiments/pretrained_models/ under the working directory")


def test_missing_everywhere_names_the_download_target_and_every_folder(user_dir, tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_file_from_url(V14_URL)
    message = str(err.value)
    assert V14_URL in message and str(tmp_path / 'cache' / 'gfpgan' / 'GFPGANv1.4.pth') in message
    assert str(user_dir / EXP) in message and str(user_dir / GW) in message
    assert not (user_dir / 'gfpgan').exists()  # upstream's folders are read, never created


def test_inference_v14_takes_weights_from_experiments_pretrained_models(user_dir, data_dir, capsys):
    save_tiny_generator(user_dir / EXP / 'GFPGANv1.4.pth')
    put(user_dir / GW, data=b'not a checkpoint: must not be read')  # later in the order
    code = inference_gfpgan.main(['-i', str(data_dir / 'cropped_faces' / 'Adele_crop.png'), '-o', 'results',
                                  '-v', '1.4', '--aligned', '--device', 'cpu'])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (f"weights: {user_dir / EXP / 'GFPGANv1.4.pth'} (upstream's experiments/pretrained_models/ under the "
            'working directory)') in err
    assert '1 faces restored' in out
    assert cv2.imread(str(user_dir / 'results' / 'restored_faces' / 'Adele_crop_00.png')).shape == (512, 512, 3)


def test_inference_weights_dir_wins_over_upstream_folders(user_dir, tmp_path, data_dir, capsys):
    save_tiny_generator(tmp_path / 'mine' / 'GFPGANv1.3.pth')
    put(user_dir / GW, 'GFPGANv1.3.pth', b'not a checkpoint: must not be read')
    code = inference_gfpgan.main(['-i', str(data_dir / 'cropped_faces' / 'Adele_crop.png'), '-o', 'results',
                                  '-v', '1.3', '--aligned', '--device', 'cpu', '--weights_dir', str(tmp_path / 'mine')])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"weights: {tmp_path / 'mine' / 'GFPGANv1.3.pth'} (the weights folder given)" in err


def test_inference_model_path_url_is_looked_up_like_v(user_dir, data_dir, capsys):
    """README: `--model_path` takes a release URL, found where -v's files are (not read as a local path)."""
    url = 'https://example.com/releases/my_finetune.pth'
    save_tiny_generator(user_dir / GW / 'my_finetune.pth')
    code = inference_gfpgan.main(['-i', str(data_dir / 'cropped_faces' / 'Adele_crop.png'), '-o', 'results',
                                  '--model_path', url, '--aligned', '--device', 'cpu'])
    out, err = capsys.readouterr()
    assert code == 0, err
    where = "upstream's gfpgan/weights/ under the working directory"
    assert f"weights: {user_dir / GW / 'my_finetune.pth'} ({where})" in err
    assert '1 faces restored' in out
    (user_dir / GW / 'my_finetune.pth').unlink()  # offline and found nowhere: the lookup's error, naming the URL
    code = inference_gfpgan.main(['-i', str(data_dir / 'cropped_faces' / 'Adele_crop.png'), '-o', 'results2',
                                  '--model_path', url, '--aligned', '--device', 'cpu'])
    err = capsys.readouterr().err
    assert code == 2 and url in err and str(user_dir.parent / 'cache' / 'gfpgan' / 'my_finetune.pth') in err
    assert 'does not exist' not in err


def test_gfpganer_release_url_found_in_gfpgan_weights(user_dir, data_dir):
    """Upstream's README call: GFPGANer(model_path=<release URL>) with the file already in gfpgan/weights."""
    from gfpgan.utils import GFPGANer

    save_tiny_generator(user_dir / GW / 'GFPGANv1.4.pth', seed=3)
    restorer = GFPGANer(model_path=V14_URL, upscale=2, arch='clean', channel_multiplier=2, bg_upsampler=None,
                        device='cpu')
    saved = torch.load(user_dir / GW / 'GFPGANv1.4.pth', weights_only=True)['params_ema']
    assert all(torch.equal(saved[k], v) for k, v in restorer.gfpgan.state_dict().items())
    img = cv2.imread(str(data_dir / 'cropped_faces' / 'Adele_crop.png'))
    _, restored, _ = restorer.enhance(img, has_aligned=True)
    assert restored[0].shape == (512, 512, 3)


# ---------------------------------------------------------------- checkpoints written by training
@pytest.fixture(scope='module')
def trained_checkpoint(data_dir, tmp_path_factory) -> tuple[Path, dict]:
    """One iteration of the tiny GFPGANv1Clean recipe (every loss on), saved by the model as training saves it."""
    from test_gfpgan_model import make_batch, tiny_options

    from gfpgan.models import build_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    opt = tiny_options(data_dir, tmp_path_factory.mktemp('train'))
    model = build_model(opt)
    batch = make_batch(opt)
    model.feed_data(batch)
    model.optimize_parameters(1)
    model.save(0, 1)
    return Path(opt['path']['models']) / 'net_g_1.pth', opt


def release_manifest(compat_dir: Path) -> dict[str, list[int]]:
    manifest = json.loads((compat_dir / 'state_dict_manifests.json').read_text())
    return next(v for k, v in manifest.items() if k.startswith('GFPGANv1Clean_512_cm2'))


@pytest.mark.slow  # building the whole recipe is the cost (~10 s)
def test_trained_net_g_has_release_layout_and_loads_strictly(trained_checkpoint, compat_dir, data_dir):
    from gfpgan.archs import build_network
    from gfpgan.utils import GFPGANer

    path, opt = trained_checkpoint
    ckpt = torch.load(path, map_location='cpu', weights_only=True)  # what other tools do with it
    assert sorted(ckpt) == ['params', 'params_ema']
    release_keys = set(release_manifest(compat_dir))
    for key in ('params', 'params_ema'):
        sd = ckpt[key]
        assert all(v.device.type == 'cpu' for v in sd.values())
        assert not any(k.startswith('module.') for k in sd)
        assert set(sd) <= release_keys  # release names; a 64 px network simply has fewer levels
        net = build_network(opt['network_g'])
        net.load_state_dict(sd, strict=True)
    assert not all(torch.equal(ckpt['params'][k], ckpt['params_ema'][k]) for k in ckpt['params'])  # EMA lags

    restorer = GFPGANer(model_path=str(path), upscale=1, arch='clean', channel_multiplier=1, device='cpu')
    assert all(torch.equal(ckpt['params_ema'][k], v) for k, v in restorer.gfpgan.state_dict().items())
    face = cv2.imread(str(data_dir / 'cropped_faces' / 'Adele_crop.png'))
    _, restored, _ = restorer.enhance(face, has_aligned=True)
    assert restored[0].shape == (512, 512, 3) and restored[0].std() > 0


@pytest.mark.slow  # a 700 MB checkpoint (~10 s)
def test_full_size_checkpoint_from_the_writer_matches_the_release_manifest(compat_dir, tmp_path):
    """The release-argument generator saved by BaseModel.save_network (the training writer): the manifest's
    keys and shapes, a strict load into a fresh release-argument network and into GFPGANer."""
    from gfpgan.archs import build_network
    from gfpgan.models.base_model import BaseModel
    from gfpgan.restorer import GFPGANer, arch_options

    torch.manual_seed(0)
    net_g = build_network(arch_options('clean', channel_multiplier=2))
    writer = BaseModel({'num_gpu': 0, 'path': {'models': str(tmp_path)}})
    path = writer.save_network([net_g, net_g], 'net_g', 800000, ['params', 'params_ema'])
    assert Path(path).name == 'net_g_800000.pth'
    del net_g
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    expected = release_manifest(compat_dir)
    for key in ('params', 'params_ema'):
        assert {k: list(v.shape) for k, v in ckpt[key].items()} == expected
    with torch.device('meta'):  # no random init: every tensor comes from the file (shapes are still checked)
        fresh = build_network(arch_options('clean', channel_multiplier=2))
    fresh.load_state_dict(ckpt['params_ema'], strict=True, assign=True)
    assert not any(t.is_meta for t in fresh.state_dict().values())
    restorer = GFPGANer(model_path=path, upscale=1, arch='clean', channel_multiplier=2, device='cpu')
    probe = 'stylegan_decoder.style_convs.0.modulated_conv.weight'
    assert torch.equal(restorer.gfpgan.state_dict()[probe], ckpt['params_ema'][probe])
    assert restorer.out_size == 512
