"""LPIPS against lpips 0.1.4's numbers (compat fixture), the network cache, the batched twin, the errors."""
from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest
import torch

from gfpgan.metrics import METRIC_REGISTRY, calculate_metric
from gfpgan.metrics import lpips_metric as lm


def _lpips_installed() -> bool:
    from gfpgan.archs.lpips_arch import lpips_linear_weights_path

    try:
        lpips_linear_weights_path('alex')
    except (ImportError, FileNotFoundError):
        return False
    return True


needs_lpips = pytest.mark.skipif(not _lpips_installed(), reason='pip install --no-deps lpips==0.1.4')


@pytest.fixture(scope='module')
def parity(compat_dir):
    return json.loads((compat_dir / 'lpips_niqe_parity.json').read_text())['lpips']


@pytest.fixture(scope='module')
def backbones(compat_dir, tmp_path_factory):
    """{net: torchvision-format random trunk file}: alexnet is stored, vgg16 (59 MB) is recreated in tmp."""
    sys.path.insert(0, str(compat_dir))
    try:
        from make_lpips_random_backbones import make_backbone
    finally:
        sys.path.remove(str(compat_dir))
    vgg = tmp_path_factory.mktemp('lpips') / 'lpips_backbone_vgg16_random.pth'
    torch.save(make_backbone('vgg16'), vgg)
    return {'vgg': str(vgg), 'alex': str(compat_dir / 'lpips_backbone_alexnet_random.pth')}


@needs_lpips
@pytest.mark.parametrize('net', ['vgg', 'alex'])
@pytest.mark.parametrize('version', ['0.1', '0.0'])
def test_matches_reference_lpips(parity, backbones, shared_dir, net, version):
    case = next(c for c in parity['values'] if c['net'] == net and c['version'] == version)
    img, img2 = cv2.imread(str(shared_dir / case['img'])), cv2.imread(str(shared_dir / case['img2']))
    tol = json.loads((shared_dir / 'compat' / 'lpips_niqe_parity.json').read_text())['tolerance']['lpips_abs']
    # called as the validation loop calls per-image metrics: metric(img=..., img2=..., **options)
    opt = {'type': 'calculate_lpips', 'net': net, 'version': version, 'backbone_weights': backbones[net]}
    assert calculate_metric({'img': img, 'img2': img2}, opt) == pytest.approx(case['lpips'], abs=tol)
    if net == 'alex':  # the five per-layer terms too (cheap with AlexNet; VGG16 at 512 px costs seconds a pass)
        model = lm.build_lpips(net, version, backbones[net], 'cpu')
        x, y = lm._bgr_to_lpips_input(img, 'HWC', 0), lm._bgr_to_lpips_input(img2, 'HWC', 0)
        np.testing.assert_allclose(model.layer_distances(x, y)[0].numpy(), case['per_layer'], atol=tol)


@needs_lpips
def test_network_is_cached_and_batched_twin_agrees(backbones, shared_dir):
    alex = backbones['alex']
    assert lm.build_lpips('alex', '0.1', alex, 'cpu') is lm.build_lpips('alex', '0.1', alex, 'cpu')
    assert lm.build_lpips('alex', '0.0', alex, 'cpu') is not lm.build_lpips('alex', '0.1', alex, 'cpu')
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 64, 80, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 30, a.shape), 0, 255).astype(np.uint8)
    singles = [lm.calculate_lpips(a[i], b[i], crop_border=3, net='alex', backbone_weights=alex) for i in range(2)]

    def rgb(x):
        return torch.from_numpy(np.ascontiguousarray(x[..., ::-1].transpose(0, 3, 1, 2))).float() / 255

    batched = lm.calculate_lpips_pt(rgb(a), rgb(b), crop_border=3, net='alex', backbone_weights=alex)
    np.testing.assert_allclose(batched.numpy(), singles, rtol=1e-5)
    assert lm.calculate_lpips(a[0], a[0], net='alex', backbone_weights=alex) == 0.0
    assert singles[0] > 0


def test_registered_with_direction():
    assert METRIC_REGISTRY.meta('calculate_lpips') == {'better': 'lower'}
    assert METRIC_REGISTRY.meta('calculate_lpips_pt') == {'better': 'lower'}


@needs_lpips
def test_clear_errors(tmp_path, monkeypatch, backbones):
    img = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="net must be one of vgg, alex, got 'squeeze'"):
        lm.calculate_lpips(img, img, net='squeeze')
    with pytest.raises(ValueError, match='shapes differ'):
        lm.calculate_lpips(img, img[:16], net='alex', backbone_weights=backbones['alex'])
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        lm.calculate_lpips(img, img, net='alex', backbone_weights=tmp_path / 'missing.pth')
    # no file given, none in the hub cache, offline: the error names torchvision's file and URL
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setenv('GFPGAN_OFFLINE', '1')
    with pytest.raises(FileNotFoundError, match=r'alexnet-owt-7be5be79\.pth.*download\.pytorch\.org'):
        lm.calculate_lpips(img, img, net='alex')
    with pytest.raises(FileNotFoundError, match=r'vgg16-397923af\.pth'):
        lm.calculate_lpips(img, img, net='vgg')
    # a VGG file where an AlexNet one belongs
    with pytest.raises(ValueError, match='does not look like a torchvision alexnet checkpoint'):
        lm.calculate_lpips(img, img, net='alex', backbone_weights=backbones['vgg'])
