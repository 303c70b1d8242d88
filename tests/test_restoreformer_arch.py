"""RestoreFormer: the released checkpoint's layout, a small forward pass, attention and VQ semantics."""
from __future__ import annotations

import pytest
import torch

from gfpgan.archs import build_network
from gfpgan.archs.restoreformer_arch import MultiHeadAttnBlock, RestoreFormer, VectorQuantizer

SMALL = dict(n_embed=64, embed_dim=32, ch=32, ch_mult=(1, 2), num_res_blocks=1, resolution=32, z_channels=32,
             head_size=2)


def test_default_layout_matches_release():
    with torch.device('meta'):
        net = RestoreFormer()
    sd = net.state_dict()
    # Count from upstream's layout (ch 64, ch_mult 1,2,2,4,4,8, 2 res blocks, attention at 16 px, 8 heads):
    # encoder  conv_in 2 + 12 res blocks x 8 + 3 width changes x 2 + 2 attn x 12 + 5 downsample x 2
    #          + mid (2 x 8 + 12) + norm_out/conv_out 4 = 170
    # decoder  conv_in 2 + mid 28 + 18 res blocks x 8 + 3 width changes x 2 + 3 attn x 12 + 5 upsample x 2
    #          + norm_out/conv_out 4 = 230
    # codebook 1 + quant_conv 2 + post_quant_conv 2 = 5
    assert len(sd) == 405
    expected = {
        'encoder.conv_in.weight': (64, 3, 3, 3),
        'encoder.down.1.block.0.nin_shortcut.weight': (128, 64, 1, 1),
        'encoder.down.4.downsample.conv.weight': (256, 256, 3, 3),
        'encoder.down.5.attn.1.q.weight': (512, 512, 1, 1),
        'encoder.down.5.attn.1.norm2.weight': (512,),
        'encoder.mid.attn_1.proj_out.weight': (512, 512, 1, 1),
        'encoder.conv_out.weight': (256, 512, 3, 3),
        'decoder.conv_in.weight': (512, 256, 3, 3),
        'decoder.mid.block_2.conv2.weight': (512, 512, 3, 3),
        'decoder.up.5.attn.2.k.weight': (512, 512, 1, 1),
        'decoder.up.4.block.0.nin_shortcut.weight': (256, 512, 1, 1),
        'decoder.up.1.upsample.conv.weight': (128, 128, 3, 3),
        'decoder.up.0.block.2.conv2.weight': (64, 64, 3, 3),
        'decoder.conv_out.weight': (3, 64, 3, 3),
        'quantize.embedding.weight': (1024, 256),
        'quant_conv.weight': (256, 256, 1, 1),
        'post_quant_conv.weight': (256, 256, 1, 1),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    for absent in ('encoder.down.5.downsample.conv.weight', 'decoder.up.0.upsample.conv.weight',
                   'encoder.down.4.attn.0.q.weight', 'decoder.up.5.block.0.nin_shortcut.weight'):
        assert absent not in sd
    assert not net.quantize.embedding.weight.requires_grad  # fix_codebook=True by default
    assert net.encoder.conv_in.weight.requires_grad


def test_small_forward_and_strict_round_trip():
    torch.manual_seed(0)
    net = build_network({'type': 'RestoreFormer', **SMALL}).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        out = net(x, return_rgb=False, weight=0.5)  # the restorer's calling convention
    assert isinstance(out, tuple) and out[1] is None
    assert out[0].shape == x.shape and torch.isfinite(out[0]).all()

    twin = RestoreFormer(**SMALL).eval()
    twin.load_state_dict(net.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(twin(x)[0], out[0])
        alone = net(x[:1])[0]
    torch.testing.assert_close(alone, out[0][:1], atol=1e-5, rtol=1e-5)


def test_cross_attention_matches_explicit_formula():
    torch.manual_seed(0)
    blk = MultiHeadAttnBlock(64, heads=4).eval()
    x, ctx = torch.randn(2, 64, 3, 5), torch.randn(2, 64, 3, 5)

    def heads(t):  # (b, c, h, w) -> (b, heads, hw, c/heads), channels grouped head-major
        return t.flatten(2).view(2, 4, 16, 15).transpose(2, 3)

    hx, hc = blk.norm1(x), blk.norm2(ctx)
    q, k, v = heads(blk.q(hc)), heads(blk.k(hx)), heads(blk.v(hx))
    attn = torch.softmax(q @ k.transpose(2, 3) / 16 ** 0.5, dim=-1)  # softmax over keys
    mixed = (attn @ v).transpose(2, 3).reshape(2, 64, 3, 5)
    with torch.no_grad():
        torch.testing.assert_close(blk(x, ctx), x + blk.proj_out(mixed), atol=1e-5, rtol=1e-5)
        # self-attention: queries from norm1(x), norm2 unused
        q_self = heads(blk.q(hx))
        attn = torch.softmax(q_self @ k.transpose(2, 3) / 16 ** 0.5, dim=-1)
        mixed = (attn @ v).transpose(2, 3).reshape(2, 64, 3, 5)
        torch.testing.assert_close(blk(x), x + blk.proj_out(mixed), atol=1e-5, rtol=1e-5)


def test_vector_quantizer_picks_nearest_code():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 8, beta=0.25)
    vq.embedding.weight.data.normal_()
    z = torch.randn(2, 8, 3, 4, requires_grad=True)
    z_q, loss, idx = vq(z)
    flat = z.detach().permute(0, 2, 3, 1).reshape(-1, 8)
    nearest = torch.cdist(flat, vq.embedding.weight.detach()).argmin(1)
    assert torch.equal(idx.flatten(), nearest)
    codes = vq.embedding.weight.detach()[nearest].view(2, 3, 4, 8).permute(0, 3, 1, 2)
    torch.testing.assert_close(z_q, codes)
    torch.testing.assert_close(loss, 1.25 * ((codes - z.detach()) ** 2).mean())
    z_q.sum().backward()  # straight-through: the gradient reaches the encoder output unchanged
    torch.testing.assert_close(z.grad, torch.ones_like(z))


def test_rejects_layouts_the_decoder_cannot_feed():
    with pytest.raises(ValueError, match='lowest resolution'):
        RestoreFormer(**{**SMALL, 'attn_resolutions': (32,)})
    with pytest.raises(ValueError, match='enable_mid'):
        RestoreFormer(**{**SMALL, 'enable_mid': False})
    assert len(RestoreFormer(**{**SMALL, 'enable_mid': False, 'attn_resolutions': ()}).state_dict()) > 0


def test_decoder_queries_come_from_the_upstream_encoder_features():
    """Upstream wiring: decoder mid attention <- encoder mid output ('mid_atten'); decoder attention at
    the lowest level <- encoder mid block_1 output ('block_<last>_atten')."""
    torch.manual_seed(0)
    net = RestoreFormer(**SMALL).eval()
    seen = {}

    def keep(name, context=False):
        def hook(module, args, out):
            seen[name] = args[1] if context else out
        return hook

    net.encoder.mid.block_1.register_forward_hook(keep('enc_block_1'))
    net.encoder.mid.block_2.register_forward_hook(keep('enc_mid'))
    net.decoder.mid.attn_1.register_forward_hook(keep('dec_mid_ctx', context=True))
    net.decoder.up[1].attn[0].register_forward_hook(keep('dec_lowest_ctx', context=True))
    with torch.no_grad():
        net(torch.rand(1, 3, 32, 32))
    assert seen['dec_mid_ctx'] is seen['enc_mid']
    assert seen['dec_lowest_ctx'] is seen['enc_block_1']
    assert len(net.decoder.up[1].attn) == 2 and len(net.decoder.up[0].attn) == 0  # 16 px level only


def test_fix_flags_freeze_the_right_parts():
    net = RestoreFormer(**SMALL, fix_decoder=True, fix_codebook=False, fix_encoder=True)
    frozen = {n.split('.')[0] for n, p in net.named_parameters() if not p.requires_grad}
    trainable = {n.split('.')[0] for n, p in net.named_parameters() if p.requires_grad}
    assert frozen == {'encoder', 'decoder', 'quantize', 'post_quant_conv'} and trainable == {'quant_conv'}
