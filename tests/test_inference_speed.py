"""Each fast inference mode gives the fp32 eager output (within float rounding, or a PSNR bound for bf16)."""
from __future__ import annotations

import copy

import pytest
import torch

from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
from gfpgan.archs.stylegan2_clean_arch import CleanModulatedConv2d as ModulatedConv2d
from gfpgan.inference_speed import FastGenerator, channels_last_weights, prepare_for_inference, resolve_dtype

# 64 px so that the high-resolution layers take the batch-1 "modulate the weight" path
TINY = dict(out_size=64, num_style_feat=32, channel_multiplier=1, num_mlp=2, input_is_latent=True, different_w=True,
            narrow=1 / 16, sft_half=True, fix_decoder=False)


@pytest.fixture(scope='module')
def net() -> GFPGANv1Clean:
    torch.manual_seed(0)
    return GFPGANv1Clean(**TINY).eval()


def image(batch: int = 1, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def reference(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(x, randomize_noise=False, return_rgb=False)[0]


def max_rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return (out.float() - ref.float()).abs().max().item() / max(1.0, ref.abs().max().item())


def psnr(out: torch.Tensor, ref: torch.Tensor) -> float:
    mse = ((out.float().clamp(-1, 1) - ref.clamp(-1, 1)) / 2).pow(2).mean().item()
    return 10 * torch.log10(torch.tensor(1.0 / max(mse, 1e-20))).item()


def test_batch1_weight_path_equals_shared_conv_path(net, monkeypatch):
    calls = []
    original = ModulatedConv2d._forward_modulated_weight

    def spy(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ModulatedConv2d, '_forward_modulated_weight', spy)
    x = image(2)
    batched = reference(net, x)  # batch 2: every layer runs the shared conv on modulated activations
    assert not calls
    single = torch.cat([reference(net, x[i:i + 1]) for i in range(2)])
    assert calls, 'batch 1 at 64 px should modulate the weight in the large layers'
    assert max_rel_err(single, batched) < 1e-5


def test_in_place_ops_keep_gradients_right(net):
    """The in-place adds must not corrupt autograd: batch-1 grads equal the same sample's grads in a batch."""
    train_net = copy.deepcopy(net).train()
    x = image(2, seed=3)

    def grads(inp: torch.Tensor) -> list[torch.Tensor]:
        train_net.zero_grad()
        out = train_net(inp, randomize_noise=False, return_rgb=False)[0]
        out[0].pow(2).sum().backward()
        return [p.grad.clone() for p in train_net.parameters() if p.grad is not None]

    single, batched = grads(x[:1]), grads(x)
    assert len(single) == len(batched) > 0
    for a, b in zip(single, batched):
        assert (a - b).abs().max().item() <= 1e-4 * max(1.0, b.abs().max().item())


def test_channels_last_is_equal_and_keeps_state_dict(net):
    ref = reference(net, image())
    fast = prepare_for_inference(copy.deepcopy(net))
    assert isinstance(fast, FastGenerator) and fast.channels_last  # default on for the clean arch
    state, fast_state = net.state_dict(), fast.net.state_dict()
    assert list(state) == list(fast_state)
    for key, value in state.items():
        assert fast_state[key].shape == value.shape and torch.equal(fast_state[key], value), key
    conv_weight = fast.net.stylegan_decoder.style_convs[0].modulated_conv.weight
    assert conv_weight[0].is_contiguous(memory_format=torch.channels_last)
    out = fast(image(), randomize_noise=False, return_rgb=False)[0]
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert max_rel_err(out, ref) < 1e-5


def test_channels_last_off_keeps_layout(net):
    fast = prepare_for_inference(copy.deepcopy(net), channels_last=False)
    assert not fast.channels_last
    assert fast.net.conv_body_first.weight.is_contiguous()
    assert max_rel_err(fast(image(), randomize_noise=False)[0], reference(net, image())) < 1e-6


def test_bf16_is_close_in_psnr(net):
    ref = reference(net, image())
    fast = prepare_for_inference(copy.deepcopy(net), dtype='bf16')
    out = fast(image(), randomize_noise=False, return_rgb=False)[0]
    assert out.dtype == torch.bfloat16
    assert 25 < psnr(out, ref) < 200  # bf16 has 8 mantissa bits: close, but not bit-equal


def test_dtype_errors_name_the_value(net):
    with pytest.raises(ValueError, match="'int8'"):
        resolve_dtype('int8')
    with pytest.raises(ValueError, match='fp16 inference needs a GPU'):
        prepare_for_inference(copy.deepcopy(net), device='cpu', dtype='fp16')


def test_channels_last_weights_only_restrides(net):
    copy_net = channels_last_weights(copy.deepcopy(net))
    for (name, a), b in zip(net.named_parameters(), copy_net.parameters()):
        assert a.shape == b.shape and torch.equal(a, b), name


@pytest.mark.slow
def test_compile_is_equal(net):
    torch._dynamo.reset()
    ref = reference(net, image())
    fast = prepare_for_inference(copy.deepcopy(net), compile=True)
    assert fast.fn is not fast.net
    out = fast(image(), randomize_noise=False, return_rgb=False)[0]
    assert max_rel_err(out, ref) < 1e-4
    if torch.backends.mkldnn.is_available():  # CPU: the weights were frozen, so the fixed convs run prepacked
        with torch.profiler.profile() as prof:
            fast(image(), randomize_noise=False, return_rgb=False)
        assert 'mkldnn::_convolution_pointwise' in {e.key for e in prof.key_averages()}


def test_gfpganer_fast_modes_restore_the_same_faces(net):
    import numpy as np

    from gfpgan.restorer import GFPGANer

    crop = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    outs = {}
    for name, kwargs in {'plain': dict(channels_last=False), 'fast': {}, 'bf16': dict(dtype='bf16')}.items():
        restorer = GFPGANer(None, net=copy.deepcopy(net), upscale=1, device='cpu', **kwargs)
        assert restorer._generator.channels_last == (name != 'plain')
        outs[name] = restorer.restore_faces([crop])[0].astype(int)
    assert np.abs(outs['fast'] - outs['plain']).max() <= 1  # uint8 rounding of equal floats
    assert 0 < np.abs(outs['bf16'] - outs['plain']).mean() < 8


needs_mkldnn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason='needs oneDNN (mkldnn)')


@needs_mkldnn
def test_prepacked_convs_are_equal_and_keep_the_state_dict(net):
    from gfpgan.inference_speed import PackedConv2d

    x = image(2)
    ref_image, ref_rgbs = net(x, randomize_noise=False)
    packed_net = copy.deepcopy(net)
    sd = packed_net.state_dict()
    fast = prepare_for_inference(packed_net)  # CPU fp32 eager channels_last: prepacks by default
    packed = [m for m in packed_net.modules() if isinstance(m, PackedConv2d)]
    assert len(packed) == sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    fused = [m for m in packed if m.negative_slope is not None]  # the SFT branches' conv + LeakyReLU
    assert len(fused) == len(net.condition_scale) * 2
    assert list(packed_net.state_dict()) == list(sd)
    assert all(torch.equal(packed_net.state_dict()[k], v) for k, v in sd.items())
    for batch in (2, 1):  # the packed weight is per input shape
        out_image, out_rgbs = fast(x[:batch], randomize_noise=False)
        assert max_rel_err(out_image, ref_image[:batch]) < 1e-5
        assert all(max_rel_err(a, b[:batch]) < 1e-5 for a, b in zip(out_rgbs, ref_rgbs))
    # loading other weights afterwards is seen (the packed copy follows the weight's version)
    with torch.no_grad():
        packed_net.conv_body_first.weight.mul_(2)
        net2 = copy.deepcopy(net)
        net2.conv_body_first.weight.mul_(2)
    torch.testing.assert_close(fast(x, randomize_noise=False)[0], reference(net2, x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='CPU eager'):
        prepare_for_inference(copy.deepcopy(net), prepack=True, compile=True)


def test_prepack_only_by_default_on_cpu_fp32_eager(net):
    from gfpgan.inference_speed import PackedConv2d

    def n_packed(**kw):
        g = prepare_for_inference(copy.deepcopy(net), **kw)
        return sum(isinstance(m, PackedConv2d) for m in g.net.modules())

    assert n_packed(channels_last=False) == 0
    assert n_packed(dtype='bf16') == 0
    assert n_packed(prepack=False) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_fast_path_matches_cpu_fp32(net):
    x = image(2)
    ref = reference(net, x)
    fp32 = prepare_for_inference(copy.deepcopy(net), device='cuda')
    assert max_rel_err(fp32(x, randomize_noise=False, return_rgb=False)[0].cpu(), ref) < 1e-3  # TF32 convs allowed
    bf16 = prepare_for_inference(copy.deepcopy(net), device='cuda', dtype='bf16')
    assert bf16.channels_last and psnr(bf16(x, randomize_noise=False, return_rgb=False)[0].cpu(), ref) > 30
