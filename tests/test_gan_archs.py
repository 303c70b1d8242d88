"""DCGAN and lightweight-GAN (FastGAN) networks: shapes at 32..256 px, ranges, gradients, option errors."""
from __future__ import annotations

import pytest
import torch

from gfpgan.archs import build_network
from gfpgan.archs.dcgan_arch import DCGANDiscriminator, DCGANGenerator
from gfpgan.archs.lightweight_gan_arch import (
    LightweightGANDiscriminator,
    LightweightGANGenerator,
    LinearAttention,
    SkipLayerExcitation,
)

SIZES = (32, 64, 128, 256)


@pytest.mark.parametrize('size', SIZES)
def test_dcgan_shapes_and_range(size):
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=8, image_size=size, base_channels=2, out_channels=3)
    d = DCGANDiscriminator(image_size=size, base_channels=2, in_channels=3)
    img = g(torch.randn(2, 8))
    assert img.shape == (2, 3, size, size)
    assert img.abs().max() <= 1 and img.std() > 0  # Tanh output, not a constant
    logits = d(img)
    assert logits.shape == (2, 1)
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in g.parameters())


def test_dcgan_layout_follows_the_paper():
    g = DCGANGenerator(latent_dim=100, image_size=64, base_channels=64)
    convs = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    # 4x4 seed with 8x width, then 4x, 2x, 1x, then RGB: 5 transposed convs for 64 px
    assert [c.out_channels for c in convs] == [512, 256, 128, 64, 3]
    d = DCGANDiscriminator(image_size=64, base_channels=64)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules()) == 3  # none on the first conv
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in DCGANDiscriminator(32, 4, use_bn=False).modules())
    w = convs[1].weight
    assert abs(w.mean().item()) < 0.002 and abs(w.std().item() - 0.02) < 0.002  # N(0, 0.02) init


@pytest.mark.parametrize('bad', [8, 48, 0])
def test_dcgan_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match='power of two'):
        DCGANGenerator(image_size=bad)
    with pytest.raises(ValueError, match='power of two'):
        DCGANDiscriminator(image_size=bad)


def test_dcgan_rejects_wrong_input():
    with pytest.raises(ValueError, match='latents with 8 channels'):
        DCGANGenerator(latent_dim=8, image_size=16, base_channels=2)(torch.randn(1, 5))
    with pytest.raises(ValueError, match='32px'):
        DCGANDiscriminator(image_size=32, base_channels=2)(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize('size', SIZES)
def test_lightweight_gan_shapes(size):
    torch.manual_seed(0)
    attn = (16,)
    g = LightweightGANGenerator(latent_dim=16, image_size=size, base_channels=2, max_channels=16,
                                attn_res_layers=attn, sle_ratio=4, antialias=size == 64)
    d = LightweightGANDiscriminator(image_size=size, base_channels=2, max_channels=16, attn_res_layers=attn,
                                    disc_output_size=5 if size >= 64 else 1, antialias=size == 64)
    img = g(torch.randn(2, 16))
    assert img.shape == (2, 3, size, size) and img.abs().max() <= 1
    logits = d(img)
    assert logits.shape == (2, 25 if size >= 64 else 1)
    logits2, aux = d(img, calc_aux_loss=True)
    assert torch.allclose(logits, logits2)
    assert aux.dim() == 0 and aux.item() > 0
    (logits2.mean() + aux).backward()
    for name, p in list(g.named_parameters()) + list(d.named_parameters()):
        assert p.grad is not None, name  # decoders, attention and SLE gates all take part


def test_lightweight_gan_sle_links_and_attention():
    g = LightweightGANGenerator(latent_dim=8, image_size=256, base_channels=2, max_channels=8,
                                attn_res_layers=(32, 64))
    assert g.sle_links == {128: 8, 256: 16}  # the paper's 8->128, 16->256 pairs
    assert set(g.attns) == {'32', '64'}
    small = LightweightGANGenerator(latent_dim=8, image_size=64, base_channels=2, max_channels=8, sle_ratio=4)
    assert small.sle_links == {32: 8, 64: 16}
    with pytest.raises(ValueError, match=r'attn_res_layers \[7\]'):
        LightweightGANGenerator(latent_dim=8, image_size=32, base_channels=2, attn_res_layers=(7,))
    with pytest.raises(ValueError, match='disc_output_size'):
        LightweightGANDiscriminator(image_size=32, disc_output_size=3)
    with pytest.raises(ValueError, match='power of two >= 32'):
        LightweightGANGenerator(image_size=16)


def test_sle_gates_channels_from_the_low_resolution_map():
    torch.manual_seed(0)
    sle = SkipLayerExcitation(low_channels=4, high_channels=3)
    high = torch.rand(2, 3, 32, 32) + 1
    low = torch.randn(2, 4, 8, 8)
    out = sle(high, low)
    gate = out / high  # a per-(sample, channel) constant in (0, 1)
    assert torch.allclose(gate, gate[:, :, :1, :1].expand_as(gate), atol=1e-6)
    assert (gate > 0).all() and (gate < 1).all()
    assert not torch.allclose(sle(high, torch.randn(2, 4, 8, 8)), out)


def test_linear_attention_is_a_residual_global_mixer():
    torch.manual_seed(0)
    attn = LinearAttention(dim=8, heads=2, dim_head=4)
    x = torch.randn(1, 8, 6, 6)
    torch.nn.init.zeros_(attn.to_out.weight)
    torch.nn.init.zeros_(attn.to_out.bias)
    assert torch.equal(attn(x), x)  # zero output projection: exactly the identity
    torch.nn.init.normal_(attn.to_out.weight)
    x2 = x.clone()
    x2[..., 0, 0] += 5  # a change at one corner reaches the far corner (global context)
    assert not torch.allclose(attn(x)[..., 5, 5], attn(x2)[..., 5, 5])


def test_reconstruction_loss_is_zero_for_a_perfect_decoder(monkeypatch):
    torch.manual_seed(0)
    d = LightweightGANDiscriminator(image_size=32, base_channels=2, max_channels=8, recon_size=16)
    img = torch.rand(2, 3, 32, 32)
    loss = d(img, calc_aux_loss=True)[1]
    expect_whole = torch.nn.functional.interpolate(img, size=16, mode='bilinear', antialias=True)
    # decoders that output the resized targets give zero loss; with a wrong quarter it is positive
    monkeypatch.setattr(torch, 'randint', lambda *a, **k: torch.tensor([1, 0]))
    quarter = torch.nn.functional.interpolate(img[:, :, 16:, :16], size=16, mode='bilinear', antialias=True)
    d.decoder_whole.forward = lambda f: expect_whole
    d.decoder_part.forward = lambda f: quarter
    assert d(img, calc_aux_loss=True)[1].item() < 1e-10
    monkeypatch.setattr(torch, 'randint', lambda *a, **k: torch.tensor([0, 1]))
    assert d(img, calc_aux_loss=True)[1].item() > 1e-4
    assert loss.item() > 0


def test_built_from_options_through_the_registry():
    g = build_network({'type': 'LightweightGANGenerator', 'latent_dim': 8, 'image_size': 32, 'base_channels': 2})
    d = build_network({'type': 'DCGANDiscriminator', 'image_size': 32, 'base_channels': 2})
    assert d(g(torch.randn(1, 8))).shape == (1, 1)
