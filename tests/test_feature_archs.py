"""ResNetArcFace (identity loss) and VGGFeatureExtractor (perceptual loss): release-checkpoint layout,
parity with the original implementation, torchvision-format loading."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from gfpgan.archs import build_network
from gfpgan.archs.arcface_arch import ResNetArcFace
from gfpgan.archs.vgg_arch import VGGFeatureExtractor, vgg_layer_names

# ---------------------------------------------------------------- ArcFace


def test_arcface_matches_release_manifest(compat_dir):
    manifest = json.loads((compat_dir / 'state_dict_manifests.json').read_text())
    expected = next(v for k, v in manifest.items() if k.startswith('ResNetArcFace_IRBlock_2222_noSE'))
    with torch.device('meta'):
        net = ResNetArcFace(block='IRBlock', layers=[2, 2, 2, 2], use_se=False)
    got = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert list(got) == list(expected)
    assert got == expected


def test_arcface_reproduces_original_outputs(compat_dir):
    case = torch.load(compat_dir / 'arch_parity_cases.pth', weights_only=True)['arcface_irblock_1111_128']
    net = build_network({'type': case['arch'], **case['ctor']}).eval()
    sd = {k: v.float() if v.is_floating_point() else v for k, v in case['state_dict'].items()}
    sd.update({k: a.float() @ b.float() for k, (a, b) in case['factored'].items()})
    net.load_state_dict(sd, strict=True)
    with torch.no_grad():
        out = net(*case['inputs'], **case['forward_kwargs'])
    assert out.shape == case['outputs'][0].shape == (2, 512)
    torch.testing.assert_close(out, case['outputs'][0], atol=1e-4, rtol=0)


@pytest.mark.parametrize('block, width', [('BasicBlock', 512), ('Bottleneck', 2048)])
def test_arcface_other_blocks_size_the_head_by_expansion(block, width):
    with torch.device('meta'):
        net = ResNetArcFace(block=block, layers=[1, 1, 1, 1], use_se=True)
    sd = net.state_dict()
    assert sd['bn4.weight'].shape == (width,)
    assert sd['fc5.weight'].shape == (512, width * 8 * 8)
    assert sd['layer1.0.se.fc.0.weight'].shape == (width // 8 // 16, width // 8)


def test_arcface_se_block_forward_and_input_check():
    torch.manual_seed(0)
    net = ResNetArcFace(block='IRBlock', layers=[1, 1, 1, 1], use_se=True).eval()
    assert net.state_dict()['layer2.0.se.fc.0.weight'].shape == (8, 128)
    x = torch.randn(2, 1, 128, 128)
    with torch.no_grad():
        out = net(x)
        alone = net(x[1:])
    assert out.shape == (2, 512) and torch.isfinite(out).all()
    torch.testing.assert_close(out[1:], alone, atol=1e-5, rtol=1e-5)  # eval mode: no batch coupling
    with pytest.raises(ValueError, match=r'\(N, 1, 128, 128\)'):
        net(torch.randn(1, 3, 128, 128))
    with pytest.raises(ValueError, match='unknown block'):
        ResNetArcFace(block='IRBlok', layers=[1, 1, 1, 1])


# ---------------------------------------------------------------- VGG

# torchvision's layout, written out independently: widths, 'M' = max-pool.
TV_CFG = {
    'vgg16': [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
    'vgg19': [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'],
}


def torchvision_like_features(cfg: list, bn: bool) -> nn.Sequential:
    layers, cin = [], 3
    for v in cfg:
        if v == 'M':
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1)] + ([nn.BatchNorm2d(v)] if bn else []) + [nn.ReLU()]
            cin = v
    return nn.Sequential(*layers)


def random_torchvision_checkpoint(vgg_type: str, path, drop_num_batches: bool = True) -> nn.Sequential:
    """Save a torchvision-format VGG state dict with random weights; return the matching reference net."""
    arch, _, bn = vgg_type.partition('_')
    torch.manual_seed(1)
    ref = torchvision_like_features(TV_CFG[arch], bool(bn)).eval()
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            for t in (m.weight, m.bias, m.running_mean):
                t.data.normal_(0, 0.5)
            m.running_var.data.uniform_(0.5, 2.0)
    sd = {f'features.{k}': v for k, v in ref.state_dict().items()}
    if drop_num_batches:  # torchvision's released *_bn files predate num_batches_tracked
        sd = {k: v for k, v in sd.items() if not k.endswith('num_batches_tracked')}
    sd['classifier.0.weight'] = torch.randn(16, 8)  # must be ignored
    sd['classifier.0.bias'] = torch.randn(16)
    torch.save(sd, path)
    return ref


def test_vgg_layer_names_index_like_torchvision():
    names19 = vgg_layer_names('vgg19')
    assert len(names19) == len(torchvision_like_features(TV_CFG['vgg19'], False)) == 37
    assert [names19.index(n) for n in ('conv1_1', 'relu1_1', 'pool1', 'conv3_4', 'relu3_4', 'conv5_4', 'pool5')] == \
        [0, 1, 4, 16, 17, 34, 36]
    names16bn = vgg_layer_names('vgg16_bn')
    assert len(names16bn) == len(torchvision_like_features(TV_CFG['vgg16'], True)) == 44
    assert [names16bn.index(n) for n in ('conv1_1', 'bn1_1', 'relu1_1', 'pool1', 'conv2_1', 'relu5_3')] == \
        [0, 1, 2, 6, 7, 42]
    assert len(vgg_layer_names('vgg11')) == 21 and len(vgg_layer_names('vgg13_bn')) == 10 * 3 + 5
    with pytest.raises(ValueError, match='vgg18'):
        vgg_layer_names('vgg18')


@pytest.mark.parametrize('vgg_type, layers', [
    ('vgg19', ['conv1_2', 'relu2_1', 'relu3_4', 'pool3']),
    ('vgg16_bn', ['bn1_1', 'relu2_2', 'conv3_3']),
])
@pytest.mark.parametrize('use_input_norm, range_norm', [(True, False), (True, True), (False, False)])
def test_vgg_loads_torchvision_checkpoint(tmp_path, vgg_type, layers, use_input_norm, range_norm):
    path = tmp_path / f'{vgg_type}.pth'
    ref = random_torchvision_checkpoint(vgg_type, path)
    net = VGGFeatureExtractor(layers, vgg_type=vgg_type, use_input_norm=use_input_norm, range_norm=range_norm,
                              weights_path=str(path))
    names = vgg_layer_names(vgg_type)
    deepest = max(names.index(n) for n in layers)
    assert len(net.vgg_net) == deepest + 1  # built only as deep as needed

    x = torch.rand(2, 3, 24, 24) * 2 - 1 if range_norm else torch.rand(2, 3, 24, 24)
    y = (x + 1) / 2 if range_norm else x
    if use_input_norm:
        y = (y - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
            1, 3, 1, 1)
    expected = {}
    with torch.no_grad():
        for i, layer in enumerate(ref[: deepest + 1]):
            y = layer(y)
            if names[i] in layers:
                expected[names[i]] = y.clone()
        feats = net(x)
    assert list(feats) == [n for n in names if n in layers]
    for name in layers:
        torch.testing.assert_close(feats[name], expected[name], atol=1e-5, rtol=1e-5)


def test_vgg_errors_name_the_problem(tmp_path):
    missing = tmp_path / 'nowhere' / 'vgg19-dcbb9e9d.pth'
    with pytest.raises(FileNotFoundError, match=str(missing)):
        VGGFeatureExtractor(['relu1_1'], weights_path=str(missing))
    path16 = tmp_path / 'vgg16.pth'
    random_torchvision_checkpoint('vgg16', path16)
    with pytest.raises(ValueError, match='vgg19'):  # right file format, wrong variant
        VGGFeatureExtractor(['relu1_1'], vgg_type='vgg19', weights_path=str(path16))
    with pytest.raises(ValueError, match='relu6_1'):
        VGGFeatureExtractor(['relu6_1'])


def test_vgg_frozen_stays_eval_but_passes_input_gradients():
    net = VGGFeatureExtractor(['relu2_1'], vgg_type='vgg11_bn')
    net.train()
    assert not net.training and not any(m.training for m in net.modules())
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    net(x)['relu2_1'].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0

    trainable = build_network({'type': 'VGGFeatureExtractor', 'layer_name_list': ['conv1_1'], 'requires_grad': True})
    assert trainable.training and all(p.requires_grad for p in trainable.parameters())


def test_vgg_pooling_options():
    x = torch.rand(1, 3, 32, 32)
    kept = VGGFeatureExtractor(['relu3_1'], vgg_type='vgg13', use_input_norm=False)
    assert kept(x)['relu3_1'].shape == (1, 256, 8, 8)
    removed = VGGFeatureExtractor(['relu3_1'], vgg_type='vgg13', remove_pooling=True)
    assert 'pool1' not in dict(removed.vgg_net.named_children())
    assert removed(x)['relu3_1'].shape == (1, 256, 32, 32)
    stride4 = VGGFeatureExtractor(['relu2_1'], vgg_type='vgg13', pooling_stride=4)
    assert stride4(x)['relu2_1'].shape == (1, 128, 8, 8)
