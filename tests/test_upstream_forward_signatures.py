"""Every upstream arch is called as upstream's code calls it: same forward parameters and defaults,
same return values (`out, rgbs = net(x, return_latents=True)`, `net(x, return_rgb=False, weight=w)[0]`)."""
from __future__ import annotations

import inspect

import pytest
import torch

from gfpgan.archs.arcface_arch import ResNetArcFace
from gfpgan.archs.gfpgan_bilinear_arch import GFPGANBilinear, StyleGAN2GeneratorBilinearSFT
from gfpgan.archs.gfpganv1_arch import FacialComponentDiscriminator, GFPGANv1, StyleGAN2GeneratorSFT
from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean, StyleGAN2GeneratorCSFT
from gfpgan.archs.restoreformer_arch import RestoreFormer
from gfpgan.archs.stylegan2_arch import StyleGAN2Discriminator, StyleGAN2Generator
from gfpgan.archs.stylegan2_bilinear_arch import StyleGAN2GeneratorBilinear
from gfpgan.archs.stylegan2_clean_arch import StyleGAN2GeneratorClean
from gfpgan.archs.stylegan2_layers import StyleGAN2GeneratorBase

EMPTY = inspect.Parameter.empty
GFPGAN_FORWARD = [('return_latents', False), ('return_rgb', True), ('randomize_noise', True), ('**kwargs', EMPTY)]
GENERATOR_FORWARD = [('input_is_latent', False), ('noise', None), ('randomize_noise', True), ('truncation', 1),
                     ('truncation_latent', None), ('inject_index', None), ('return_latents', False)]
SFT_FORWARD = [('conditions', EMPTY)] + GENERATOR_FORWARD
TINY_GFPGAN = dict(out_size=16, num_style_feat=16, channel_multiplier=1, num_mlp=2, different_w=True,
                   narrow=1 / 16, sft_half=True, fix_decoder=False)
TINY_GEN = dict(out_size=16, num_style_feat=16, num_mlp=2, channel_multiplier=1, narrow=1 / 32)


def forward_params(cls: type) -> list[tuple[str, object]]:
    """(name, default) of forward's parameters after the input tensor, as upstream lists them."""
    params = list(inspect.signature(cls.forward).parameters.values())[2:]  # self, the input
    return [(f'**{p.name}' if p.kind == p.VAR_KEYWORD else p.name, p.default) for p in params]


@pytest.mark.parametrize('cls', [GFPGANv1, GFPGANv1Clean, GFPGANBilinear], ids=lambda c: c.__name__)
def test_gfpgan_archs_forward_like_upstream(cls):
    assert [(n if not n.startswith('**') else '**kwargs', d) for n, d in forward_params(cls)] == GFPGAN_FORWARD
    torch.manual_seed(0)
    net = cls(**TINY_GFPGAN).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        for conv in net.stylegan_decoder.style_convs:
            conv.weight.fill_(0.5)  # non-zero noise strength, so randomize_noise shows
        image, rgbs = net(x, randomize_noise=False)
        out = net(x, return_latents=True, randomize_noise=False)  # upstream: still (image, out_rgbs)
        assert isinstance(out, tuple) and len(out) == 2
        torch.testing.assert_close(out[0], image)
        assert [r.shape[-1] for r in out[1]] == [8, 16]
        plain = net(x, return_rgb=False, weight=0.5, randomize_noise=False)  # upstream GFPGANer's call
        assert plain[1] == []
        torch.testing.assert_close(plain[0], image)
        a, b = net(x)[0], net(x)[0]  # randomize_noise defaults to True: fresh noise each call
    assert (a - b).abs().max() > 1e-6


@pytest.mark.parametrize('cls, extra', [(StyleGAN2Generator, dict(lr_mlp=0.01)), (StyleGAN2GeneratorClean, {}),
                                        (StyleGAN2GeneratorBilinear, dict(lr_mlp=0.01))],
                         ids=lambda v: getattr(v, '__name__', ''))
def test_stylegan2_generators_forward_like_upstream(cls, extra):
    assert forward_params(cls) == GENERATOR_FORWARD
    torch.manual_seed(0)
    gen = cls(**TINY_GEN, **extra).eval()
    z = torch.randn(2, 16)
    with torch.no_grad():
        image, latent = gen([z], randomize_noise=False)
        assert image.shape == (2, 3, 16, 16) and latent is None
        image2, latent = gen([z], randomize_noise=False, return_latents=True)
    torch.testing.assert_close(image2, image)
    assert latent.shape == (2, gen.num_latent, 16)


@pytest.mark.parametrize('cls, extra', [(StyleGAN2GeneratorSFT, dict(lr_mlp=0.01)), (StyleGAN2GeneratorCSFT, {}),
                                        (StyleGAN2GeneratorBilinearSFT, dict(lr_mlp=0.01))],
                         ids=lambda v: getattr(v, '__name__', ''))
def test_sft_decoders_forward_like_upstream(cls, extra):
    assert forward_params(cls) == SFT_FORWARD
    torch.manual_seed(0)
    gen = cls(**TINY_GEN, **extra, sft_half=True).eval()
    z = torch.randn(1, 16)
    conditions = [torch.ones(1, 8, 8, 8), torch.zeros(1, 8, 8, 8), torch.ones(1, 8, 16, 16), torch.zeros(1, 8, 16, 16)]
    conditions = [c[:, :gen.channels[f'{c.shape[-1]}'] // 2] for c in conditions]  # sft_half: half the channels
    with torch.no_grad():
        image, latent = gen([z], conditions, randomize_noise=False)
        ref, _ = StyleGAN2GeneratorBase.forward(gen, [z], randomize_noise=False)  # no SFT at all
        assert latent is None
        _, latent = gen([z], conditions, return_latents=True, randomize_noise=False)
    torch.testing.assert_close(image, ref)  # identity conditions (scale 1, shift 0) change nothing
    assert latent.shape == (1, gen.num_latent, 16)


def test_discriminators_and_feature_nets_forward_like_upstream():
    assert forward_params(StyleGAN2Discriminator) == []
    assert forward_params(FacialComponentDiscriminator) == [('return_feats', False), ('**kwargs', EMPTY)]
    assert forward_params(ResNetArcFace) == []
    assert forward_params(RestoreFormer)[-1][0].startswith('**')  # upstream: forward(input, **kwargs)
    torch.manual_seed(0)
    disc = StyleGAN2Discriminator(out_size=16, channel_multiplier=1, narrow=1 / 16)
    assert disc(torch.randn(2, 3, 16, 16)).shape == (2, 1)
    comp = FacialComponentDiscriminator()
    score, feats = comp(torch.randn(1, 3, 32, 32))
    assert score.shape == (1, 1, 8, 8) and feats is None
    score2, feats = comp(torch.randn(1, 3, 32, 32), return_feats=True)
    assert [f.shape[1] for f in feats] == [128, 256]
    arcface = ResNetArcFace('IRBlock', [1, 1, 1, 1], use_se=False).eval()
    assert arcface(torch.randn(2, 1, 128, 128)).shape == (2, 512)
    rf = RestoreFormer(n_embed=64, embed_dim=32, ch=32, ch_mult=(1, 2), num_res_blocks=1, resolution=32,
                       z_channels=32, head_size=2).eval()
    with torch.no_grad():
        out, extra = rf(torch.rand(1, 3, 32, 32) * 2 - 1, return_rgb=False, weight=0.5)
    assert out.shape == (1, 3, 32, 32) and extra is None
