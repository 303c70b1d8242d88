"""StyleGAN2 / GFPGAN architectures: release-checkpoint layouts, parity with the original code,
generator features, bilinear -> clean conversion, decoder loading and export."""
from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from gfpgan.archs import ARCH_REGISTRY, build_network
from gfpgan.archs.gfpgan_bilinear_arch import GFPGANBilinear, convert_bilinear_to_clean
from gfpgan.archs.gfpganv1_arch import GFPGANv1
from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
from gfpgan.archs.stylegan2_arch import StyleGAN2Discriminator, StyleGAN2Generator
from gfpgan.archs.stylegan2_bilinear_arch import StyleGAN2GeneratorBilinear
from gfpgan.archs.stylegan2_clean_arch import StyleGAN2GeneratorClean
from gfpgan.utils.checkpoint_io import load_weights, save_checkpoint

V14_ARGS = dict(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None, fix_decoder=False,
                num_mlp=8, input_is_latent=True, different_w=True, narrow=1, sft_half=True)
TINY = dict(out_size=16, num_style_feat=16, channel_multiplier=1, num_mlp=2, input_is_latent=False, different_w=True,
            narrow=1 / 16, sft_half=True)
MANIFEST_NETS = {
    'GFPGANv1Clean_512_cm2': dict(type='GFPGANv1Clean', **V14_ARGS),
    'GFPGANv1_512_cm1': dict(type='GFPGANv1', **{**V14_ARGS, 'channel_multiplier': 1, 'lr_mlp': 0.01}),
    'StyleGAN2Discriminator_512_cm1': dict(type='StyleGAN2Discriminator', out_size=512, channel_multiplier=1),
    'FacialComponentDiscriminator': dict(type='FacialComponentDiscriminator'),
}
PARITY_ARCHS = {'GFPGANv1Clean', 'GFPGANv1', 'StyleGAN2Discriminator', 'FacialComponentDiscriminator'}


REPO = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """Import scripts/<name>.py by path (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f'_script_{name}', REPO / 'scripts' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def assert_close_to_scale(out: torch.Tensor, ref: torch.Tensor, tol: float = 1e-4) -> None:
    """|out - ref| <= tol, relative to the output's scale once that exceeds 1 (random nets can blow up)."""
    assert out.shape == ref.shape
    err = (out.float() - ref.float()).abs().max().item()
    scale = max(1.0, ref.float().abs().max().item())
    assert err <= tol * scale, f'max error {err:.3e} at output scale {scale:.3e}'


def flatten(obj) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if obj is None:
        return []
    return [t for item in obj for t in flatten(item)]


# ---------------------------------------------------------------- release layouts and parity
@pytest.mark.parametrize('entry', sorted(MANIFEST_NETS))
def test_state_dict_matches_release_manifest(compat_dir, entry):
    manifest = json.loads((compat_dir / 'state_dict_manifests.json').read_text())
    (name,) = [k for k in manifest if k.split(' ')[0] == entry]
    with torch.device('meta'):
        net = build_network(MANIFEST_NETS[entry])
    got = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert got == manifest[name]
    assert list(got) == list(manifest[name])  # same order too (matters for optimizer states)


def _parity_cases(compat_dir):
    cases = torch.load(compat_dir / 'arch_parity_cases.pth', weights_only=True)
    return {k: v for k, v in cases.items() if v['arch'] in PARITY_ARCHS}


@pytest.fixture(scope='module')
def parity_cases(compat_dir):
    return _parity_cases(compat_dir)


def test_every_parity_arch_has_a_case(parity_cases):
    assert {c['arch'] for c in parity_cases.values()} == PARITY_ARCHS


@pytest.mark.parametrize('arch', sorted(PARITY_ARCHS))
def test_reproduces_original_implementation(parity_cases, arch):
    for case in (c for c in parity_cases.values() if c['arch'] == arch):
        net = ARCH_REGISTRY.get(arch)(**case['ctor']).eval()
        sd = {k: v.float() if v.is_floating_point() else v for k, v in case['state_dict'].items()}
        sd.update({k: a.float() @ b.float() for k, (a, b) in case['factored'].items()})
        net.load_state_dict(sd, strict=True)
        with torch.no_grad():
            outputs = flatten(net(*case['inputs'], **case['forward_kwargs']))
        assert len(outputs) == len(case['outputs'])
        for out, ref in zip(outputs, case['outputs']):
            assert_close_to_scale(out, ref)


# ---------------------------------------------------------------- generator features
GENERATORS = [
    (StyleGAN2Generator, dict(lr_mlp=0.01)),
    (StyleGAN2GeneratorClean, {}),
    (StyleGAN2GeneratorBilinear, dict(lr_mlp=0.01)),
]


def _tiny_generator(cls, extra):
    torch.manual_seed(0)
    gen = cls(out_size=16, num_style_feat=16, num_mlp=2, channel_multiplier=1, narrow=1 / 32, **extra).eval()
    with torch.no_grad():  # non-zero noise strengths, so noise handling is visible in the output
        for conv in [gen.style_conv1, *gen.style_convs]:
            conv.weight.fill_(0.5)
    return gen


@pytest.mark.parametrize('cls, extra', GENERATORS, ids=lambda v: getattr(v, '__name__', ''))
def test_generator_noise_mixing_truncation(cls, extra):
    gen = _tiny_generator(cls, extra)
    z1, z2 = torch.randn(2, 16), torch.randn(2, 16)
    with torch.no_grad():
        noises = gen.make_noise()
        assert [tuple(n.shape) for n in noises] == [tuple(b.shape) for b in gen.noises.buffers()]
        fixed1, _ = gen([z1], randomize_noise=False)
        fixed2, _ = gen([z1], randomize_noise=False)
        torch.testing.assert_close(fixed1, fixed2, rtol=0, atol=0)
        explicit, _ = gen([z1], noise=list(gen.noises.buffers()))
        torch.testing.assert_close(explicit, fixed1)
        rand1, _ = gen([z1])
        rand2, _ = gen([z1])
        assert (rand1 - rand2).abs().max() > 1e-4
        assert fixed1.shape == (2, 3, 16, 16)

        # style mixing: the first inject_index layers use w1, the rest w2
        _, latent = gen([z1, z2], inject_index=3, return_latents=True, randomize_noise=False)
        w1, w2 = gen.get_latent(z1), gen.get_latent(z2)
        assert latent.shape == (2, gen.num_latent, 16)
        torch.testing.assert_close(latent[:, :3], w1[:, None].expand(-1, 3, -1))
        torch.testing.assert_close(latent[:, 3:], w2[:, None].expand(-1, gen.num_latent - 3, -1))

        # truncation 0 collapses every code onto the truncation latent
        mean = gen.mean_latent(64)
        assert mean.shape == (1, 16)
        img_a, lat_a = gen([z1], truncation=0, truncation_latent=mean, randomize_noise=False, return_latents=True)
        img_b, _ = gen([z2], truncation=0, truncation_latent=mean, randomize_noise=False)
        torch.testing.assert_close(lat_a, mean[:, None].expand(2, gen.num_latent, -1))
        torch.testing.assert_close(img_a, img_b)
        half, _ = gen([w1], input_is_latent=True, truncation=0.5, truncation_latent=mean, return_latents=True)
    with pytest.raises(ValueError, match='truncation_latent'):
        gen([z1], truncation=0.5)
    with pytest.raises(ValueError, match='noise must list'):
        gen([z1], noise=noises[:2])


def test_clean_modulated_conv_matches_per_sample_weight_reference():
    """The clean conv modulates activations; check it against modulating the weight per sample."""
    import torch.nn.functional as F

    from gfpgan.archs.stylegan2_clean_arch import CleanModulatedConv2d as ModulatedConv2d

    torch.manual_seed(0)
    for sample_mode, demodulate in [('upsample', True), (None, True), (None, False), ('downsample', True)]:
        conv = ModulatedConv2d(6, 5, 3, num_style_feat=8, demodulate=demodulate, sample_mode=sample_mode)
        x, style, bias = torch.randn(3, 6, 8, 8), torch.randn(3, 8), torch.randn(1, 5, 1, 1)
        out = conv(x, style, gain=math.sqrt(2), bias=bias)
        refs = []
        for i in range(3):
            w = conv.weight[0] * conv.modulation(style[i:i + 1]).view(1, 6, 1, 1)
            if demodulate:
                w = w / torch.sqrt(w.pow(2).sum([1, 2, 3], keepdim=True) + 1e-8)
            xi = x[i:i + 1]
            if sample_mode:
                xi = F.interpolate(xi, scale_factor=2 if sample_mode == 'upsample' else 0.5, mode='bilinear',
                                   align_corners=False)
            refs.append(F.conv2d(xi, w, padding=1) * math.sqrt(2) + bias)
        torch.testing.assert_close(out, torch.cat(refs), rtol=1e-5, atol=1e-5)


def test_original_modulated_conv_matches_per_sample_grouped_weights():
    """Upstream runs one weight copy per sample (grouped conv); ours modulates activations instead."""
    import torch.nn.functional as F

    from gfpgan.archs.stylegan2_arch import UpFirDnModulatedConv2d as ModulatedConv2d

    torch.manual_seed(0)
    for sample_mode, demodulate in [('upsample', True), ('downsample', True), (None, True), (None, False)]:
        conv = ModulatedConv2d(6, 5, 3, num_style_feat=8, demodulate=demodulate, sample_mode=sample_mode)
        x, style = torch.randn(3, 6, 8, 8), torch.randn(3, 8)
        refs = []
        for i in range(3):
            w = conv.weight[0] * conv.scale * conv.modulation(style[i:i + 1]).view(1, 6, 1, 1)
            if demodulate:
                w = w * torch.rsqrt(w.pow(2).sum([1, 2, 3], keepdim=True) + 1e-8)
            xi = x[i:i + 1]
            if sample_mode == 'upsample':
                refs.append(conv.smooth(F.conv_transpose2d(xi, w.transpose(0, 1), stride=2)))
            elif sample_mode == 'downsample':
                refs.append(F.conv2d(conv.smooth(xi), w, stride=2))
            else:
                refs.append(F.conv2d(xi, w, padding=1))
        torch.testing.assert_close(conv(x, style), torch.cat(refs), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- GFPGAN networks
@pytest.mark.parametrize('cls', [GFPGANv1, GFPGANv1Clean, GFPGANBilinear], ids=lambda c: c.__name__)
def test_gfpgan_forward_contract(cls):
    torch.manual_seed(0)
    net = cls(**TINY, fix_decoder=False)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    image, rgbs = net(x, randomize_noise=False)
    assert image.shape == (2, 3, 16, 16)
    assert [tuple(r.shape) for r in rgbs] == [(2, 3, 8, 8), (2, 3, 16, 16)]
    (image.mean() + sum(r.mean() for r in rgbs)).backward()  # the rgbs feed the pyramid loss
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    with torch.no_grad():
        again, no_rgbs = net(x, return_rgb=False, randomize_noise=False)
        image3, rgbs3 = net(x, return_latents=True, randomize_noise=False)  # upstream: (image, rgbs) still
    assert no_rgbs == []
    torch.testing.assert_close(again, image.detach())
    torch.testing.assert_close(image3, image.detach())
    assert len(rgbs3) == len(rgbs)


def test_bilinear_to_clean_conversion_gives_equal_outputs():
    torch.manual_seed(0)
    kw = {**TINY, 'input_is_latent': True}
    bilinear = GFPGANBilinear(**kw, fix_decoder=False, lr_mlp=0.01).eval()
    with torch.no_grad():  # zero-initialised biases and noise strengths would hide scale mistakes
        for name, p in bilinear.named_parameters():
            if 'bias' in name or p.numel() == 1:
                p.normal_(0, 0.3)
    clean = GFPGANv1Clean(**kw, fix_decoder=False).eval()
    clean.load_state_dict(convert_bilinear_to_clean(bilinear.state_dict()), strict=True)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        ref = flatten(bilinear(x, randomize_noise=False))
        out = flatten(clean(x, randomize_noise=False))
    assert ref[0].abs().max() > 0.5  # a meaningful output, not all zeros
    for a, b in zip(out, ref):
        assert_close_to_scale(a, b, tol=1e-5)
    with pytest.raises(KeyError, match='unexpected key'):
        convert_bilinear_to_clean({'stylegan_decoder.foo.weight': torch.zeros(1)})


def test_convert_script_writes_loadable_clean_weights(tmp_path, capsys):
    main = load_script('convert_gfpganv_to_clean').main

    torch.manual_seed(0)
    args = dict(out_size=16, num_style_feat=16, channel_multiplier=1, num_mlp=2, input_is_latent=True,
                different_w=True, narrow=1 / 16, sft_half=True, fix_decoder=False)
    bilinear = GFPGANBilinear(**args).eval()
    save_checkpoint({'params_ema': bilinear.state_dict()}, tmp_path / 'bilinear.pth')
    common = ['--ori_path', str(tmp_path / 'bilinear.pth'), '--narrow', str(1 / 16), '--channel_multiplier', '1',
              '--out_size', '16', '--num_style_feat', '16', '--num_mlp', '2']
    assert main(common + ['--save_path', str(tmp_path / 'clean.pth'), '--verify']) == 0
    verify_line = capsys.readouterr().out.splitlines()[0]
    assert verify_line.startswith('max |bilinear - clean| = ') and float(verify_line.split()[5]) < 1e-4
    assert main(common + ['--save_path', str(tmp_path / 'clean.pth'), '--to-safetensors']) == 0
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        ref = bilinear(x, randomize_noise=False)[0]
        for path in ('clean.pth', 'clean.safetensors'):
            clean = load_weights(GFPGANv1Clean(**args), tmp_path / path).eval()
            assert_close_to_scale(clean(x, randomize_noise=False)[0], ref, tol=1e-5)


@pytest.mark.parametrize(
    'gfpgan_cls, decoder_cls, extra',
    [(GFPGANv1Clean, StyleGAN2GeneratorClean, {}), (GFPGANv1, StyleGAN2Generator, dict(lr_mlp=0.01))],
    ids=['clean', 'v1'],
)
def test_decoder_load_path_and_fix_decoder(tmp_path, gfpgan_cls, decoder_cls, extra):
    torch.manual_seed(1)
    decoder = decoder_cls(out_size=16, num_style_feat=16, num_mlp=2, channel_multiplier=1, narrow=1 / 16, **extra)
    path = tmp_path / 'stylegan2.pth'
    save_checkpoint({'params_ema': decoder.state_dict()}, path)
    net = gfpgan_cls(**TINY, decoder_load_path=str(path), fix_decoder=True, **extra)
    for key, value in decoder.state_dict().items():
        torch.testing.assert_close(net.stylegan_decoder.state_dict()[key], value)
    assert not any(p.requires_grad for p in net.stylegan_decoder.parameters())
    assert all(p.requires_grad for n, p in net.named_parameters() if not n.startswith('stylegan_decoder.'))
    with pytest.raises(RuntimeError, match='wrong shape'):
        gfpgan_cls(**{**TINY, 'narrow': 1 / 8}, decoder_load_path=str(path), **extra)


def test_discriminators_contracts():
    disc = StyleGAN2Discriminator(out_size=16, channel_multiplier=1, narrow=1 / 16)
    assert disc(torch.randn(4, 3, 16, 16)).shape == (4, 1)
    assert disc(torch.randn(2, 3, 16, 16)).shape == (2, 1)
    with pytest.raises(ValueError, match='divisible'):
        disc(torch.randn(6, 3, 16, 16))
    comp = build_network({'type': 'FacialComponentDiscriminator'})
    score, feats = comp(torch.randn(1, 3, 32, 32))
    assert score.shape == (1, 1, 8, 8) and feats is None


def test_all_archs_registered():
    for name in ('StyleGAN2Generator', 'StyleGAN2Discriminator', 'StyleGAN2GeneratorClean',
                 'StyleGAN2GeneratorBilinear', 'GFPGANv1', 'GFPGANv1Clean', 'GFPGANBilinear',
                 'FacialComponentDiscriminator'):
        assert name in ARCH_REGISTRY


# ---------------------------------------------------------------- deployment
def test_to_channels_last_keeps_outputs():
    from gfpgan.archs.gfpganv1_clean_arch import to_channels_last

    torch.manual_seed(0)
    net = GFPGANv1Clean(**TINY).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        ref = net(x, randomize_noise=False)[0]
        to_channels_last(net)
        assert net.conv_body_first.weight.is_contiguous(memory_format=torch.channels_last)
        out = net(x.contiguous(memory_format=torch.channels_last), randomize_noise=False)[0]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_benchmark_script_sections(capsys):
    bench = load_script('benchmark')
    assert 'arch' in bench.SECTIONS
    assert bench.main(['--list']) == 0
    assert 'GFPGANv1Clean' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(['--sections', 'no_such_section'])
    with pytest.raises(KeyError, match='twice'):
        bench.section('arch', 'duplicate')(lambda args: '')
    # the upstream-structure reference it times computes the same function as our layout
    torch.manual_seed(0)
    net = GFPGANv1Clean(**{**TINY, 'input_is_latent': True}).eval()
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        ours = net(x, randomize_noise=False)[0]
        with bench.upstream_structure():
            reference = net(x, randomize_noise=False)[0]
        assert torch.equal(net(x, randomize_noise=False)[0], ours)  # patched methods are restored
    assert_close_to_scale(reference, ours, tol=1e-5)


class ImageOnly(torch.nn.Module):
    """A GFPGAN as exports see it: the restored image alone, with the decoder's fixed noise."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x, randomize_noise=False, return_rgb=False)[0]


@pytest.mark.parametrize('cls', [GFPGANv1Clean, GFPGANv1], ids=lambda c: c.__name__)
def test_onnx_export_small_config_with_dynamic_batch(tmp_path, cls):
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    net = cls(**{**TINY, 'input_is_latent': True}).eval()

    path = tmp_path / 'gfpgan.onnx'
    torch.onnx.export(
        ImageOnly(net), (torch.rand(1, 3, 16, 16),), str(path), dynamo=False, opset_version=17, input_names=['input'],
        output_names=['output'], dynamic_axes={'input': {0: 'b'}, 'output': {0: 'b'}},
    )
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert not any('Random' in op for op in ops), ops  # fixed noise: the graph is deterministic
    x = torch.rand(3, 3, 16, 16) * 2 - 1  # exported at batch 1, run at batch 3
    (out,) = ort.InferenceSession(str(path)).run(None, {'input': x.numpy()})
    with torch.no_grad():
        assert_close_to_scale(torch.from_numpy(out), net(x, randomize_noise=False)[0], tol=1e-4)


@pytest.mark.slow
def test_torch_export_small_clean_has_no_random_ops():
    net = GFPGANv1Clean(**{**TINY, 'input_is_latent': True}).eval()

    x = torch.rand(1, 3, 16, 16)
    exported = torch.export.export(ImageOnly(net), (x,))
    targets = {str(n.target) for n in exported.graph.nodes if n.op == 'call_function'}
    assert not any(('rand' in t or 'normal' in t) for t in targets), targets
    torch.testing.assert_close(exported.module()(x), ImageOnly(net)(x))


@pytest.mark.slow
def test_full_size_v14_forward_on_cpu():
    torch.manual_seed(0)
    net = GFPGANv1Clean(**V14_ARGS).eval()
    with torch.no_grad():
        image, rgbs = net(torch.rand(1, 3, 512, 512) * 2 - 1, randomize_noise=False)
    assert image.shape == (1, 3, 512, 512) and torch.isfinite(image).all()
    assert [r.shape[-1] for r in rgbs] == [8, 16, 32, 64, 128, 256, 512]
