"""RRDBNet (Real-ESRGAN background upsampler): release key layout, pixel-unshuffle order, tiling."""
from __future__ import annotations

import pytest
import torch

from gfpgan.archs import build_network
from gfpgan.archs.rrdbnet_arch import RRDBNet
from gfpgan.archs.tiled_upsample import tile_upsample

TINY = dict(num_feat=8, num_block=1, num_grow_ch=4)


@pytest.mark.parametrize('scale, in_ch', [(4, 3), (2, 12)])
def test_release_key_layout(scale, in_ch):
    with torch.device('meta'):
        net = RRDBNet(num_in_ch=3, num_out_ch=3, scale=scale, num_feat=64, num_block=23, num_grow_ch=32)
    sd = net.state_dict()
    # RealESRGAN_x4plus / x2plus: 23 RRDBs x 3 dense blocks x 5 convs x (weight, bias) + 6 convs x 2
    assert len(sd) == 23 * 3 * 5 * 2 + 6 * 2 == 702
    assert list(sd)[:4] == ['conv_first.weight', 'conv_first.bias',
                            'body.0.rdb1.conv1.weight', 'body.0.rdb1.conv1.bias']
    assert list(sd)[-10:] == [f'{n}.{p}' for n in ('conv_body', 'conv_up1', 'conv_up2', 'conv_hr', 'conv_last')
                              for p in ('weight', 'bias')]
    assert sd['conv_first.weight'].shape == (64, in_ch, 3, 3)
    assert sd['body.22.rdb3.conv5.weight'].shape == (64, 64 + 4 * 32, 3, 3)
    assert sd['body.0.rdb2.conv4.weight'].shape == (32, 64 + 3 * 32, 3, 3)
    assert sd['conv_last.weight'].shape == (3, 64, 3, 3)


@pytest.mark.parametrize('scale', [4, 2, 1])
def test_output_shapes(scale):
    net = build_network({'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'scale': scale, **TINY}).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 16, 12)).shape == (2, 3, 16 * scale, 12 * scale)


def test_x2_unshuffles_channels_as_real_esrgan():
    """x2plus weights expect input channel c * 4 + dy * 2 + dx to hold pixel (2y + dy, 2x + dx) of channel c."""
    net = RRDBNet(3, 3, scale=2, **TINY).eval()
    seen = []
    net.conv_first.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    x = torch.rand(1, 3, 8, 6)
    with torch.no_grad():
        net(x)
    expected = torch.stack([x[:, c, dy::2, dx::2] for c in range(3) for dy in range(2) for dx in range(2)], 1)
    assert torch.equal(seen[0], expected)
    with pytest.raises(ValueError, match='divisible by 2'):
        net(torch.rand(1, 3, 7, 6))


@pytest.mark.parametrize('scale', [4, 2])
def test_tiled_equals_untiled(scale):
    torch.manual_seed(0)
    net = RRDBNet(3, 3, scale=scale, **TINY).eval()
    img = torch.rand(1, 3, 37, 29)  # odd sides: pre-pad and unshuffle-grid padding are exercised
    whole = tile_upsample(net, img, scale, tile=0, pre_pad=6)
    assert whole.shape == (1, 3, 37 * scale, 29 * scale)
    # receptive field of this net: 17 convs at low resolution + ~1 px from the high-resolution convs
    tiled = tile_upsample(net, img, scale, tile=11, tile_pad=20, pre_pad=6)  # tile rounded up for x2
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)
    short_context = tile_upsample(net, img, scale, tile=11, tile_pad=2, pre_pad=6)
    assert (short_context - whole).abs().max() > 1e-4  # the seams are real when tile_pad is too small


def test_tiled_pre_pad_is_cropped_and_small_images_work():
    net = RRDBNet(3, 3, scale=2, **TINY).eval()
    tiny = torch.rand(1, 3, 3, 5)
    assert tile_upsample(net, tiny, 2, tile=2, tile_pad=2, pre_pad=10).shape == (1, 3, 6, 10)
    with pytest.raises(ValueError, match='tile_pad'):
        tile_upsample(net, tiny, 2, tile_pad=-1)
