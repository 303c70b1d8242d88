"""Sampling helpers and scripts/generate.py: grids, interpolation, GIF, checkpoint loading, montage."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from gfpgan.archs import build_network
from gfpgan.models.gan_sampling import (
    generate,
    interpolate_latents,
    list_generator_checkpoints,
    load_generator,
    make_grid,
    slerp,
)
from gfpgan.utils.checkpoint_io import save_checkpoint
from gfpgan.utils.image_io import imread

REPO = Path(__file__).resolve().parents[1]
NET = {'type': 'DCGANGenerator', 'latent_dim': 8, 'image_size': 16, 'base_channels': 4}


def test_make_grid_places_images_and_maps_range():
    imgs = torch.stack([torch.full((3, 4, 4), v) for v in (-1.0, 0.0, 1.0)])
    imgs[2, 0] = -1  # third image: no red -> cyan (BGR 255, 255, 0)
    grid = make_grid(imgs, nrow=2, padding=1, pad_value=1.0)
    assert grid.shape == (2 * 5 + 1, 2 * 5 + 1, 3) and grid.dtype == np.uint8
    assert (grid[1:5, 1:5] == 0).all()  # -1 -> black
    assert (grid[1:5, 6:10] == 128).all()  # 0 -> mid gray (127.5 rounds to 128)
    assert (grid[6:10, 1:5] == [255, 255, 0]).all()  # BGR order
    assert (grid[0] == 255).all() and (grid[6:10, 6:10] == 255).all()  # padding and the empty slot


def test_slerp_ends_and_norm():
    a, b = torch.randn(3, 8), torch.randn(3, 8)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    unit_a, unit_b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    torch.testing.assert_close(slerp(unit_a, unit_b, 0.3).norm(dim=1), torch.ones(3))  # stays on the sphere
    zs = interpolate_latents(a[:1], b[:1], 5, 'lerp')
    assert zs.shape == (5, 1, 8)
    torch.testing.assert_close(zs[2], (a[:1] + b[:1]) / 2)
    with pytest.raises(ValueError, match='at least 2'):
        interpolate_latents(a, b, 1)


def _save_ckpts(folder: Path, iters=(10, 200, 30)):
    nets = {}
    for it in iters:
        torch.manual_seed(it)
        g, ema = build_network(NET), build_network(NET)
        save_checkpoint({'params': g.state_dict(), 'params_ema': ema.state_dict()}, folder / f'net_g_{it}.pth')
        nets[it] = (g, ema)
    return nets


def test_load_generator_picks_raw_or_ema(tmp_path):
    nets = _save_ckpts(tmp_path, (10,))
    z = torch.randn(2, 8)
    raw, ema = nets[10]
    torch.testing.assert_close(generate(load_generator(NET, tmp_path / 'net_g_10.pth', use_ema=False), z),
                               generate(raw, z))
    torch.testing.assert_close(generate(load_generator(NET, tmp_path / 'net_g_10.pth'), z), generate(ema, z))
    save_checkpoint({'params': raw.state_dict()}, tmp_path / 'raw_only.pth')
    with pytest.raises(KeyError, match='params_ema'):
        load_generator(NET, tmp_path / 'raw_only.pth')
    assert [it for it, _ in list_generator_checkpoints(tmp_path)] == [10]
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='No net_g'):
        list_generator_checkpoints(tmp_path / 'empty')
    with pytest.raises(FileNotFoundError, match='Models folder not found'):
        list_generator_checkpoints(tmp_path / 'missing')


def test_generate_script_sample_interp_gif_montage(tmp_path, monkeypatch):
    models = tmp_path / 'models'
    _save_ckpts(models)
    opt_file = tmp_path / 'opt.yml'
    opt_file.write_text(yaml.safe_dump({'name': 'x', 'network_g': NET}))
    monkeypatch.syspath_prepend(str(REPO / 'scripts'))
    sys.modules.pop('generate', None)
    import generate as script

    out = tmp_path / 'out'
    common = ['-opt', str(opt_file), '-o', str(out)]
    assert script.main(['sample', *common, '--ckpt', str(models / 'net_g_30.pth'), '-n', '4', '--separate']) == 0
    assert imread(out / 'samples.png').shape == (2 * 18 + 2, 2 * 18 + 2, 3)
    assert imread(out / 'sample_00003.png').shape == (16, 16, 3)
    assert script.main(['interp', *common, '--ckpt', str(models / 'net_g_30.pth'), '--steps', '5', '--gif']) == 0
    assert imread(out / 'interpolation.png').shape == (20, 5 * 18 + 2, 3)
    from PIL import Image
    with Image.open(out / 'interpolation.gif') as gif:
        assert gif.n_frames == 5 + 3  # there and back
    assert script.main(['montage', *common, '--models', str(models), '-n', '3']) == 0
    montage = imread(out / 'progress_montage.png')
    assert montage.shape[0] == 3 * 20  # one row per checkpoint (10, 30, 200)
    rows = [montage[i * 20:(i + 1) * 20, 72:] for i in range(3)]
    assert not np.array_equal(rows[0], rows[1])  # different checkpoints, different images
    assert script.main(['sample', *common]) == 2  # no --ckpt
