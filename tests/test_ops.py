"""gfpgan.ops against independent references: upfirdn2d vs scipy, fused act, roi_align vs a naive loop."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from gfpgan.ops import roi_align as roi_align_module
from gfpgan.ops.fused_act import FusedLeakyReLU, fused_leaky_relu
from gfpgan.ops.roi_align import roi_align, roi_align_pure
from gfpgan.ops.upfirdn2d import filter_depthwise, filter_folded, upfirdn2d


# ---------------------------------------------------------------- upfirdn2d
def _upfirdn_reference(x: np.ndarray, k: np.ndarray, up, down, pad) -> np.ndarray:
    """Zero insertion, numpy pad/crop, scipy true convolution ('valid'), then decimation."""
    (ux, uy), (dx, dy), (x0, x1, y0, y1) = up, down, pad
    n, c, h, w = x.shape
    out = []
    for img in x.reshape(n * c, h, w):
        z = np.zeros((h * uy, w * ux), dtype=np.float64)
        z[::uy, ::ux] = img
        z = np.pad(z, ((max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0))))
        z = z[max(-y0, 0): z.shape[0] - max(-y1, 0), max(-x0, 0): z.shape[1] - max(-x1, 0)]
        out.append(convolve2d(z, k, mode='valid')[::dy, ::dx])
    return np.stack(out).reshape(n, c, *out[0].shape)


@pytest.mark.parametrize(
    'up, down, pad',
    [
        ((1, 1), (1, 1), (1, 2, 1, 2)),
        ((2, 2), (1, 1), (2, 1, 2, 1)),  # StyleGAN2 upsample
        ((1, 1), (2, 2), (1, 1, 1, 1)),  # StyleGAN2 downsample
        ((2, 2), (2, 2), (0, 0, 0, 0)),
        ((1, 1), (1, 1), (-1, 2, 3, -2)),  # negative pad = crop
        ((2, 1), (1, 2), (1, 0, 2, 1)),  # different factors per axis
        ((3, 3), (2, 2), (2, 2, 1, 3)),
    ],
)
def test_upfirdn2d_matches_zero_insertion_convolution(up, down, pad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 9))
    k = rng.standard_normal((3, 4))  # asymmetric, so a missing kernel flip would show
    ref = _upfirdn_reference(x, k, up, down, pad)
    out = upfirdn2d(torch.from_numpy(x), torch.from_numpy(k), up=up, down=down, pad=pad)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-10)


def test_upfirdn2d_pair_pad_applies_to_both_axes_and_float32():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    k = np.outer([1, 3, 3, 1], [1, 3, 3, 1]).astype(np.float32)
    k /= k.sum()
    ref = _upfirdn_reference(x.astype(np.float64), k.astype(np.float64), (2, 2), (1, 1), (2, 1, 2, 1))
    out = upfirdn2d(torch.from_numpy(x), torch.from_numpy(k) * 4, up=2, pad=(2, 1))
    np.testing.assert_allclose(out.numpy(), 4 * ref, atol=1e-5)


def test_upfirdn2d_gradcheck():
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: upfirdn2d(t, k, up=2, down=2, pad=(1, 1)), (x,))


@pytest.mark.parametrize('stride', [(1, 1), (2, 2), (1, 2)])
@pytest.mark.parametrize('channels_last', [False, True])
def test_depthwise_filter_equals_upstreams_folded_form_with_gradients(stride, channels_last):
    """The fast depthwise filter gives upstream's single-channel form bit for bit, values and input gradients."""
    x = torch.randn(3, 5, 11, 10)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    k = torch.rand(4, 4)
    outs, grads = [], []
    for fn in (filter_depthwise, filter_folded):
        xx = x.clone().requires_grad_(True)
        out = fn(xx, k, stride)
        out.backward(torch.linspace(-1, 1, out.numel()).view(out.shape))
        outs.append(out)
        grads.append(xx.grad)
    assert outs[0].shape == (3, 5, (11 - 4) // stride[0] + 1, (10 - 4) // stride[1] + 1)
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-6)


def test_upfirdn2d_errors_name_the_problem():
    x, k = torch.randn(1, 1, 4, 4), torch.ones(4, 4)
    with pytest.raises(ValueError, match='pad'):
        upfirdn2d(x, k, pad=(1, 2, 3))
    with pytest.raises(ValueError, match='smaller than the kernel'):
        upfirdn2d(x, k, pad=(-1, -1))
    with pytest.raises(ValueError, match='4-D'):
        upfirdn2d(x[0], k)


# ---------------------------------------------------------------- fused bias + leaky ReLU
def test_fused_leaky_relu_values():
    x = torch.tensor([[-2.0, 1.0], [3.0, -0.5]]).view(2, 2, 1, 1)
    bias = torch.tensor([1.0, -2.0])
    out = fused_leaky_relu(x, bias)
    # (x + b): [[-1, -1], [4, -2.5]] -> leaky 0.2 -> * sqrt(2)
    expected = torch.tensor([[-0.2, -0.2], [4.0, -0.5]]).view(2, 2, 1, 1) * math.sqrt(2)
    torch.testing.assert_close(out, expected)
    module = FusedLeakyReLU(2)
    assert list(module.state_dict()) == ['bias']
    with torch.no_grad():
        module.bias.copy_(bias)
    torch.testing.assert_close(module(x), expected)


def test_fused_leaky_relu_gradcheck():
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    x = (x + 0.05 * x.sign()).requires_grad_()  # keep away from the kink at 0
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: fused_leaky_relu(a - b.view(1, 3, 1, 1), b), (x, bias))
    assert torch.autograd.gradcheck(lambda a: fused_leaky_relu(a), (x,))


def test_fused_leaky_relu_rejects_wrong_bias():
    with pytest.raises(ValueError, match='channels'):
        fused_leaky_relu(torch.randn(1, 4, 2, 2), torch.zeros(3))


# ---------------------------------------------------------------- roi_align
def _naive_bilinear(img: np.ndarray, y: float, x: float) -> np.ndarray:
    _, h, w = img.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(img.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * img[:, y0, x0] + (1 - ly) * lx * img[:, y0, x1]
            + ly * (1 - lx) * img[:, y1, x0] + ly * lx * img[:, y1, x1])


def _naive_roi_align(feat, rois, out_hw, scale, ratio, aligned):
    """Point-by-point RoIAlign following torchvision's CPU kernel (sample grid averaged per bin)."""
    ph, pw = out_hw
    out = np.zeros((len(rois), feat.shape[1], ph, pw))
    off = 0.5 if aligned else 0.0
    for r, (b, x1, y1, x2, y2) in enumerate(rois):
        sx, sy = x1 * scale - off, y1 * scale - off
        rw, rh = x2 * scale - off - sx, y2 * scale - off - sy
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        gh = ratio if ratio > 0 else math.ceil(rh / ph)
        gw = ratio if ratio > 0 else math.ceil(rw / pw)
        for i in range(ph):
            for j in range(pw):
                acc = np.zeros(feat.shape[1])
                for iy in range(gh):
                    y = sy + i * rh / ph + (iy + 0.5) * rh / ph / gh
                    for ix in range(gw):
                        x = sx + j * rw / pw + (ix + 0.5) * rw / pw / gw
                        acc += _naive_bilinear(feat[int(b)], y, x)
                out[r, :, i, j] = acc / max(gh * gw, 1)
    return out


ROIS = [
    [0, 1.0, 2.0, 9.5, 8.0],
    [1, -3.0, -2.0, 4.0, 5.0],  # partly outside
    [0, 10.0, 9.0, 14.0, 13.0],  # runs past the right/bottom edge
    [1, 3.2, 3.2, 3.4, 3.3],  # tiny (legacy min size 1 when not aligned)
    [0, 0.0, 0.0, 11.0, 11.0],
]


@pytest.mark.parametrize('aligned', [False, True])
@pytest.mark.parametrize('ratio, scale, out_hw', [(-1, 1.0, (3, 3)), (2, 0.5, (2, 4)), (-1, 2.0, (4, 3))])
def test_roi_align_pure_matches_naive_reference(aligned, ratio, scale, out_hw):
    feat = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    rois = torch.tensor(ROIS, dtype=torch.float64)
    ref = _naive_roi_align(feat.numpy(), ROIS, out_hw, scale, ratio, aligned)
    out = roi_align_pure(feat, rois, out_hw, spatial_scale=scale, sampling_ratio=ratio, aligned=aligned)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-10)
    out32 = roi_align_pure(feat.float(), rois.float(), out_hw, scale, ratio, aligned)
    np.testing.assert_allclose(out32.numpy(), ref, atol=1e-5)


def test_roi_align_box_list_format_gradient_and_dispatch():
    feat = torch.randn(2, 2, 16, 16, requires_grad=True)
    per_image = [torch.tensor([[1.0, 1.0, 9.0, 9.0]]), torch.tensor([[2.0, 3.0, 12.0, 10.0], [0.0, 0.0, 5.0, 5.0]])]
    rois = torch.tensor([[0, 1.0, 1.0, 9.0, 9.0], [1, 2.0, 3.0, 12.0, 10.0], [1, 0.0, 0.0, 5.0, 5.0]])
    out = roi_align(feat, per_image, 4)
    torch.testing.assert_close(out, roi_align(feat, rois, (4, 4)))
    torch.testing.assert_close(out, roi_align(feat, rois, 4.0))  # 80 * face_ratio style sizes
    assert out.shape == (3, 2, 4, 4)
    out.sum().backward()
    assert feat.grad[0].abs().sum() > 0 and feat.grad[1].abs().sum() > 0
    if roi_align_module._tv_roi_align is None:  # torchvision absent: the public op is the pure one
        torch.testing.assert_close(out, roi_align_pure(feat, rois, 4))


def test_roi_align_bad_boxes():
    feat = torch.randn(1, 1, 8, 8)
    with pytest.raises(ValueError, match='Tensor\\[K, 5\\]'):
        roi_align_pure(feat, torch.zeros(2, 4), 2)
    with pytest.raises(ValueError, match='output_size'):
        roi_align_pure(feat, torch.zeros(1, 5), 2.5)
    with pytest.raises(IndexError, match='batch index 3'):
        roi_align_pure(feat, torch.tensor([[3, 0.0, 0.0, 4.0, 4.0]]), 2)
