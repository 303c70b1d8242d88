"""lightweight-GAN options: frequency channel attention, the 32 px auxiliary head, greyscale and RGBA."""
from __future__ import annotations

import pytest
import torch

from gfpgan.archs.lightweight_gan_arch import (
    FrequencyChannelAttention,
    LightweightGANDiscriminator,
    LightweightGANGenerator,
    SkipLayerExcitation,
    dct_basis,
)


def test_dct_bases_are_orthonormal():
    bases = torch.stack([dct_basis(8, u, v) for u in range(8) for v in range(8)]).flatten(1).double()
    assert torch.allclose(bases @ bases.T, torch.eye(64, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(dct_basis(4, 0, 0), torch.full((4, 4), 0.25))  # DC: the scaled mean


def test_fca_squeeze_is_each_channels_dct_coefficient():
    fca = FrequencyChannelAttention(low_channels=30, high_channels=6, low_resolution=8)
    # 15 frequencies (DC, 7 vertical, 7 horizontal) spread over 30 channels, two channels each
    assert fca.bases.shape == (1, 30, 8, 8)
    assert torch.allclose(fca.bases[0, 0], dct_basis(8, 0, 0)) and torch.allclose(fca.bases[0, 2], dct_basis(8, 0, 1))
    assert torch.allclose(fca.bases[0, 16], dct_basis(8, 1, 0))
    x = torch.randn(2, 30, 8, 8)
    coeff = torch.einsum('nchw,chw->nc', x, fca.bases[0])
    assert torch.allclose(fca.squeeze(x).flatten(1), coeff, atol=1e-5)
    # a constant map has only a DC coefficient: channels at other frequencies read 0
    flat = fca.squeeze(torch.ones(1, 30, 8, 8)).flatten()
    assert torch.allclose(flat[:2], torch.full((2,), 8.0)) and flat[2:].abs().max() < 1e-5
    high = torch.randn(2, 6, 32, 32)
    out = fca(high, x)
    gate = out / high
    assert out.shape == high.shape and gate.min() > 0 and gate.max() < 1
    assert torch.allclose(gate, gate[:, :, :1, :1].expand_as(gate), atol=1e-5)  # one gate per channel
    assert not any('bases' in k for k in fca.state_dict())
    with pytest.raises(ValueError, match=r'built for \(8, 8\) maps'):
        fca(high, torch.randn(2, 30, 4, 4))


def test_fca_caps_frequencies_on_small_maps_and_pools_every_channel():
    fca = FrequencyChannelAttention(low_channels=4, high_channels=4, low_resolution=4)
    assert fca.bases.flatten(2).abs().sum(2).min() > 0  # no channel left with zero weights
    # 4x4 map: frequencies 0..3 only (7 = DC + 3 + 3), which are orthogonal there
    fca7 = FrequencyChannelAttention(low_channels=7, high_channels=4, low_resolution=4)
    b = fca7.bases[0].flatten(1)
    assert torch.allclose(b @ b.T, torch.eye(7), atol=1e-5)


def test_generator_freq_chan_attn_swaps_the_sle_gates_only():
    plain = LightweightGANGenerator(latent_dim=8, image_size=64, base_channels=4, sle_ratio=4)
    fca = LightweightGANGenerator(latent_dim=8, image_size=64, base_channels=4, sle_ratio=4, freq_chan_attn=True)
    assert set(plain.sles) == set(fca.sles) == {'32', '64'}
    assert all(isinstance(m, SkipLayerExcitation) for m in plain.sles.values())
    assert all(isinstance(m, FrequencyChannelAttention) for m in fca.sles.values())
    img = fca(torch.randn(2, 8))
    assert img.shape == (2, 3, 64, 64)
    img.mean().backward()
    assert all(p.grad is not None for p in fca.sles.parameters())
    # everything but the gates keeps plain's layout
    strip = lambda sd: {k for k in sd if not k.startswith('sles.')}  # noqa: E731
    assert strip(plain.state_dict()) == strip(fca.state_dict())


def test_default_layout_unchanged_by_the_new_options():
    d = LightweightGANDiscriminator(image_size=32, base_channels=4)
    assert d.heads == () and d.aux_32 is None
    assert not any(k.startswith('aux_32') for k in d.state_dict())
    logits, recon = d(torch.randn(2, 3, 32, 32), calc_aux_loss=True)
    assert logits.shape == (2, 25) and recon.dim() == 0


@pytest.mark.parametrize('size', [32, 64])
def test_aux_32_head_judges_the_downscaled_image(size):
    torch.manual_seed(0)
    d = LightweightGANDiscriminator(image_size=size, base_channels=4, aux_32_head=True, aux_32_channels=8)
    assert d.heads == ('logits_32',)
    x = torch.randn(2, 3, size, size)
    logits, heads = d(x, return_heads=True)
    assert logits.shape == (2, 25) and set(heads) == {'logits_32'} and heads['logits_32'].shape == (2, 1)
    assert torch.equal(d(x), logits)  # without return_heads: the main logits, as before
    logits2, heads2 = d(x, calc_aux_loss=True, return_heads=True)
    assert set(heads2) == {'logits_32', 'recon_loss'} and torch.allclose(logits2, logits)
    # the head sees only the 32 px image: its output equals the head run on the downscaled input
    small = torch.nn.functional.interpolate(x, size=(32, 32), mode='bilinear', align_corners=False, antialias=True)
    assert torch.allclose(d.aux_32(small), heads['logits_32'], atol=1e-5)
    # its hinge loss trains the head and not the main trunk
    torch.nn.functional.relu(1 - heads['logits_32']).mean().backward()
    assert all(p.grad is not None for p in d.aux_32.parameters())
    assert all(p.grad is None for p in d.blocks.parameters())


@pytest.mark.parametrize('channels', [1, 4])
def test_greyscale_and_rgba_images(channels):
    g = LightweightGANGenerator(latent_dim=8, image_size=32, base_channels=4, out_channels=channels, sle_ratio=4,
                                freq_chan_attn=True)
    d = LightweightGANDiscriminator(image_size=32, base_channels=4, in_channels=channels, aux_32_head=True,
                                    aux_32_channels=8)
    img = g(torch.randn(2, 8))
    assert img.shape == (2, channels, 32, 32)
    logits, heads = d(img, calc_aux_loss=True, return_heads=True)
    assert logits.shape == (2, 25) and heads['logits_32'].shape == (2, 1) and torch.isfinite(heads['recon_loss'])
    assert d.decoder_whole.body[-1].out_channels == channels  # reconstructs all channels, alpha included
    with pytest.raises(RuntimeError):
        d(torch.randn(2, 3, 32, 32))
