"""SR networks (MSRResNet, SRVGGNetCompact, VGGStyleDiscriminator, UNetDiscriminatorSN, RRDBNet): the
release key layouts load strictly, and WeightedTVLoss matches its formula.

The manifests below are written from the published BasicSR / Real-ESRGAN architecture definitions
(module names and constructor arithmetic), for small configurations, not from running this package.
"""
from __future__ import annotations

import pytest
import torch

from gfpgan.archs import build_network
from gfpgan.losses import build_loss
from gfpgan.utils.checkpoint_io import load_weights


def conv(prefix: str, cout: int, cin: int, k: int = 3, bias: bool = True) -> dict:
    out = {f'{prefix}.weight': (cout, cin, k, k)}
    if bias:
        out[f'{prefix}.bias'] = (cout,)
    return out


def bn(prefix: str, c: int) -> dict:
    return {f'{prefix}.weight': (c,), f'{prefix}.bias': (c,), f'{prefix}.running_mean': (c,),
            f'{prefix}.running_var': (c,), f'{prefix}.num_batches_tracked': ()}


def sn_conv(prefix: str, cout: int, cin: int, k: int) -> dict:
    return {f'{prefix}.weight_orig': (cout, cin, k, k), f'{prefix}.weight_u': (cout,),
            f'{prefix}.weight_v': (cin * k * k,)}


MSRRESNET_X4 = {**conv('conv_first', 8, 3), **conv('body.0.conv1', 8, 8), **conv('body.0.conv2', 8, 8),
                **conv('body.1.conv1', 8, 8), **conv('body.1.conv2', 8, 8), **conv('upconv1', 32, 8),
                **conv('upconv2', 32, 8), **conv('conv_hr', 8, 8), **conv('conv_last', 3, 8)}
MSRRESNET_X3 = {**conv('conv_first', 8, 3), **conv('body.0.conv1', 8, 8), **conv('body.0.conv2', 8, 8),
                **conv('upconv1', 72, 8), **conv('conv_hr', 8, 8), **conv('conv_last', 3, 8)}
SRVGG_PRELU = {**conv('body.0', 8, 3), 'body.1.weight': (8,), **conv('body.2', 8, 8), 'body.3.weight': (8,),
               **conv('body.4', 8, 8), 'body.5.weight': (8,), **conv('body.6', 48, 8)}
SRVGG_RELU_X2 = {**conv('body.0', 8, 3), **conv('body.2', 8, 8), **conv('body.4', 12, 8)}
VGG_D_128 = {**conv('conv0_0', 4, 3), **conv('conv0_1', 4, 4, 4, False), **bn('bn0_1', 4),
             **conv('conv1_0', 8, 4, 3, False), **bn('bn1_0', 8), **conv('conv1_1', 8, 8, 4, False), **bn('bn1_1', 8),
             **conv('conv2_0', 16, 8, 3, False), **bn('bn2_0', 16), **conv('conv2_1', 16, 16, 4, False),
             **bn('bn2_1', 16), **conv('conv3_0', 32, 16, 3, False), **bn('bn3_0', 32),
             **conv('conv3_1', 32, 32, 4, False), **bn('bn3_1', 32), **conv('conv4_0', 32, 32, 3, False),
             **bn('bn4_0', 32), **conv('conv4_1', 32, 32, 4, False), **bn('bn4_1', 32),
             'linear1.weight': (100, 32 * 4 * 4), 'linear1.bias': (100,), 'linear2.weight': (1, 100),
             'linear2.bias': (1,)}
VGG_D_256 = {**VGG_D_128, **conv('conv5_0', 32, 32, 3, False), **bn('bn5_0', 32),
             **conv('conv5_1', 32, 32, 4, False), **bn('bn5_1', 32)}
UNET_D = {**conv('conv0', 4, 3), **sn_conv('conv1', 8, 4, 4), **sn_conv('conv2', 16, 8, 4),
          **sn_conv('conv3', 32, 16, 4), **sn_conv('conv4', 16, 32, 3), **sn_conv('conv5', 8, 16, 3),
          **sn_conv('conv6', 4, 8, 3), **sn_conv('conv7', 4, 4, 3), **sn_conv('conv8', 4, 4, 3),
          **conv('conv9', 1, 4)}
RRDB_BLOCK = {f'body.0.rdb{r}.conv{i}.{p}': shape for r in (1, 2, 3) for i in range(1, 6)
              for p, shape in (('weight', (4 if i < 5 else 8, 8 + (i - 1) * 4, 3, 3)), ('bias', (4 if i < 5 else 8,)))}
RRDBNET_X4 = {**conv('conv_first', 8, 3), **RRDB_BLOCK, **conv('conv_body', 8, 8), **conv('conv_up1', 8, 8),
              **conv('conv_up2', 8, 8), **conv('conv_hr', 8, 8), **conv('conv_last', 3, 8)}

CASES = [
    (dict(type='MSRResNet', num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=4), MSRRESNET_X4, 'params'),
    (dict(type='MSRResNet', num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=3), MSRRESNET_X3, 'params'),
    (dict(type='SRVGGNetCompact', num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4, act_type='prelu'),
     SRVGG_PRELU, 'params'),
    (dict(type='SRVGGNetCompact', num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=1, upscale=2, act_type='relu'),
     SRVGG_RELU_X2, 'params'),
    (dict(type='VGGStyleDiscriminator', num_in_ch=3, num_feat=4, input_size=128), VGG_D_128, 'params'),
    (dict(type='VGGStyleDiscriminator', num_in_ch=3, num_feat=4, input_size=256), VGG_D_256, 'params'),
    (dict(type='UNetDiscriminatorSN', num_in_ch=3, num_feat=4, skip_connection=True), UNET_D, 'params'),
    (dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, num_grow_ch=4, scale=4), RRDBNET_X4,
     'params_ema'),
]


def random_state_dict(manifest: dict) -> dict:
    g = torch.Generator().manual_seed(0)
    return {k: torch.tensor(7) if shape == () else torch.randn(shape, generator=g) for k, shape in manifest.items()}


@pytest.mark.parametrize('opt, manifest, key', CASES, ids=[f"{c[0]['type']}-{i}" for i, c in enumerate(CASES)])
def test_release_layout_loads_strictly(tmp_path, opt, manifest, key):
    net = build_network(opt)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == manifest
    sd = random_state_dict(manifest)
    torch.save({key: sd}, tmp_path / 'w.pth')
    load_weights(net, tmp_path / 'w.pth', param_key=key, strict=True)
    for k, v in net.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_a_wrong_layout_is_refused(tmp_path):
    net = build_network(CASES[2][0])
    sd = random_state_dict({**SRVGG_PRELU, 'body.7.weight': (8,)})
    with pytest.raises(RuntimeError, match='body.7.weight'):
        load_weights(net, {'params': sd}, param_key='params', strict=True)


@pytest.mark.parametrize('opt, n_keys', [
    # RealESRGAN_x4plus / ESRGAN_SRx4_DF2KOST_official: 23 RRDBs x 3 dense blocks x 5 convs + 6 convs, (w, b) each
    (dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=4), 702),
    # realesr-general-x4v3: 34 convs (w, b) + 33 PReLUs (w)
    (dict(type='SRVGGNetCompact', num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=32, upscale=4, act_type='prelu'),
     34 * 2 + 33),
    # MSRResNet_x4: conv_first, 16 blocks x 2 convs, upconv1, upconv2, conv_hr, conv_last, (w, b) each
    (dict(type='MSRResNet', num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4), (1 + 32 + 4) * 2),
])
def test_official_configurations(opt, n_keys):
    with torch.device('meta'):
        net = build_network(opt)
    sd = net.state_dict()
    assert len(sd) == n_keys
    if opt['type'] == 'SRVGGNetCompact':
        assert sd['body.66.weight'].shape == (48, 64, 3, 3) and sd['body.65.weight'].shape == (64,)
    if opt['type'] == 'MSRResNet':
        assert sd['upconv2.weight'].shape == (256, 64, 3, 3) and 'body.15.conv2.bias' in sd


@pytest.mark.parametrize('opt, out_shape', [
    (dict(type='MSRResNet', num_feat=8, num_block=1, upscale=2), (2, 3, 20, 24)),
    (dict(type='SRVGGNetCompact', num_feat=8, num_conv=1, upscale=4, act_type='leakyrelu'), (2, 3, 40, 48)),
    (dict(type='UNetDiscriminatorSN', num_in_ch=3, num_feat=4, skip_connection=False), (2, 1, 10, 12)),
])
def test_output_shapes(opt, out_shape):
    net = build_network(opt).eval()
    x = torch.rand(2, 3, 16, 16) if 'Disc' in opt['type'] else torch.rand(2, 3, 10, 12)
    with torch.no_grad():
        assert net(x).shape == ((2, 1, 16, 16) if 'Disc' in opt['type'] else out_shape)


def test_generators_learn_a_residual_over_a_plain_upsampling():
    """Zeroing the last conv leaves exactly the bilinear (MSRResNet) / nearest (SRVGG) upsampling."""
    x = torch.rand(1, 3, 6, 5)
    msr = build_network(dict(type='MSRResNet', num_feat=8, num_block=1, upscale=4)).eval()
    vgg = build_network(dict(type='SRVGGNetCompact', num_feat=8, num_conv=1, upscale=2)).eval()
    with torch.no_grad():
        for w in (msr.conv_last.weight, msr.conv_last.bias, vgg.body[-1].weight, vgg.body[-1].bias):
            w.zero_()
        torch.testing.assert_close(msr(x), torch.nn.functional.interpolate(x, scale_factor=4, mode='bilinear'))
        torch.testing.assert_close(vgg(x), x.repeat_interleave(2, -2).repeat_interleave(2, -1))


def test_discriminators_refuse_wrong_sizes():
    with pytest.raises(ValueError, match='input_size=128'):
        build_network(dict(type='VGGStyleDiscriminator', num_in_ch=3, num_feat=4))(torch.rand(1, 3, 96, 96))
    with pytest.raises(ValueError, match='divisible by 8'):
        build_network(dict(type='UNetDiscriminatorSN', num_in_ch=3, num_feat=4))(torch.rand(1, 3, 12, 16))
    with pytest.raises(ValueError, match='input_size must be one of'):
        build_network(dict(type='VGGStyleDiscriminator', num_in_ch=3, num_feat=4, input_size=64))
    with pytest.raises(ValueError, match='act_type'):
        build_network(dict(type='SRVGGNetCompact', act_type='gelu'))


def test_weighted_tv_loss_formula():
    pred = torch.rand(2, 3, 5, 7)
    dy = (pred[:, :, 1:] - pred[:, :, :-1]).abs()
    dx = (pred[:, :, :, 1:] - pred[:, :, :, :-1]).abs()
    loss = build_loss({'type': 'WeightedTVLoss', 'loss_weight': 0.5})
    torch.testing.assert_close(loss(pred), 0.5 * (dy.mean() + dx.mean()))
    total = build_loss({'type': 'WeightedTVLoss', 'reduction': 'sum'})(pred)
    torch.testing.assert_close(total, dy.sum() + dx.sum())
    mask = torch.zeros(2, 1, 5, 7)
    mask[:, :, :2] = 1  # rows 0-1: vertical differences of row 0 and 1, horizontal ones of rows 0 and 1
    masked = build_loss({'type': 'WeightedTVLoss'})(pred, weight=mask)
    expected = dy[:, :, :2].mean() + dx[:, :, :2].mean()
    torch.testing.assert_close(masked, expected)
    with pytest.raises(ValueError, match='WeightedTVLoss'):
        build_loss({'type': 'WeightedTVLoss', 'reduction': 'none'})


def test_srvgg_upsample_base_is_the_interpolation_the_body_adds_to():
    """Zero body output: nearest (default, the release behaviour) or bicubic upsampling of the input; both
    bases have the same parameters, so one state dict serves either; an unknown base names the choices."""
    x = torch.rand(1, 3, 6, 5)
    nets = {base: build_network(dict(CASES[2][0], upsample_base=base)) for base in ('nearest', 'bicubic')}
    for net in nets.values():
        torch.nn.init.zeros_(net.body[-1].weight)
        torch.nn.init.zeros_(net.body[-1].bias)
    with torch.no_grad():
        assert torch.equal(nets['nearest'](x), torch.nn.functional.interpolate(x, scale_factor=4, mode='nearest'))
        assert torch.allclose(nets['bicubic'](x), torch.nn.functional.interpolate(x, scale_factor=4, mode='bicubic'))
    assert not torch.allclose(nets['nearest'](x), nets['bicubic'](x))
    default = build_network(CASES[2][0])
    assert default.upsample_base == 'nearest'
    default.load_state_dict(nets['bicubic'].state_dict(), strict=True)
    with pytest.raises(ValueError, match="upsample_base must be one of .*'lanczos'"):
        build_network(dict(CASES[2][0], upsample_base='lanczos'))
