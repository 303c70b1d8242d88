"""Paste-back on the device (grid_sample) equals the OpenCV path within one grey level."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from gfpgan.face.alignment import inverse_affine
from gfpgan.face.paste import feather_mask, paste_face, paste_faces_torch


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    """Canvas -> crop similarity transform, as alignment estimates it."""
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def _smooth_face(rng: np.random.Generator, size: int) -> np.ndarray:
    """A face-like crop: smooth gradients plus texture (a bilinear warp of pure noise is all rounding)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([200 * xx, 150 * yy + 50, 100 + 80 * np.sin(6 * xx + 3 * yy)], -1)
    texture = cv2.GaussianBlur(rng.uniform(0, 60, (size, size, 3)), (0, 0), 2)
    return np.clip(base + texture, 0, 255).astype(np.uint8)


@pytest.mark.parametrize('upscale', [1, 2])
def test_device_paste_matches_opencv_within_one_grey_level(upscale):
    rng = np.random.default_rng(0)
    canvas = rng.integers(0, 256, (300 * upscale, 280 * upscale, 3), dtype=np.uint8)
    faces = np.stack([_smooth_face(rng, 128) for _ in range(3)])
    affines = [_similarity(12, 1.3, -40, -30), _similarity(-25, 0.9, 10, 60), _similarity(3, 1.1, -150, 20)]
    invs = [inverse_affine(a, upscale) for a in affines]
    parsed = cv2.GaussianBlur(np.clip(rng.uniform(-0.5, 1.5, (128, 128)), 0, 1), (0, 0), 4) * feather_mask(128)
    masks = np.stack([feather_mask(128)] * 2 + [parsed.astype(np.float32)])  # soft masks, as parsing gives
    ref = canvas.copy()
    for face, inv, mask in zip(faces, invs, masks):
        paste_face(ref, face, inv, mask)
    out = paste_faces_torch(torch.from_numpy(canvas), torch.from_numpy(faces), invs, torch.from_numpy(masks))
    assert out.dtype == torch.uint8 and out.shape == canvas.shape
    diff = np.abs(out.numpy().astype(int) - ref.astype(int))
    assert diff.max() <= 1, f'max difference {diff.max()} grey levels'
    assert (ref != canvas).mean() > 0.05  # the faces really were pasted
    # default masks (feather_mask) too
    ref2 = canvas.copy()
    for face, inv in zip(faces, invs):
        paste_face(ref2, face, inv)
    out2 = paste_faces_torch(torch.from_numpy(canvas), torch.from_numpy(faces), invs)
    assert np.abs(out2.numpy().astype(int) - ref2.astype(int)).max() <= 1


def test_device_paste_skips_faces_outside_and_checks_shapes():
    canvas = np.full((50, 60, 3), 7, np.uint8)
    face = np.full((1, 32, 32, 3), 200, np.uint8)
    far = inverse_affine(_similarity(0, 1.0, 500, 500))  # the crop lands far outside the canvas
    out = paste_faces_torch(torch.from_numpy(canvas), torch.from_numpy(face), [far])
    assert torch.equal(out, torch.from_numpy(canvas))
    with pytest.raises(ValueError, match='inverse affine'):
        paste_faces_torch(torch.from_numpy(canvas), torch.from_numpy(face), [])
    with pytest.raises(ValueError, match=r'\(H, W, 3\)'):
        paste_faces_torch(torch.from_numpy(canvas[:, :, 0]), torch.from_numpy(face), [far])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_device_paste_on_cuda_equals_cpu():
    rng = np.random.default_rng(1)
    canvas = torch.from_numpy(rng.integers(0, 256, (200, 220, 3), dtype=np.uint8))
    faces = torch.from_numpy(np.stack([_smooth_face(rng, 96)]))
    invs = [inverse_affine(_similarity(10, 1.2, -20, -20), 2)]
    cpu = paste_faces_torch(canvas, faces, invs)
    gpu = paste_faces_torch(canvas.cuda(), faces.cuda(), invs)
    assert gpu.is_cuda and (gpu.cpu().int() - cpu.int()).abs().max() <= 1


def test_gfpganer_device_paste_equals_the_opencv_path(tmp_path, data_dir):
    from gfpgan.archs import build_network
    from gfpgan.restorer import GFPGANer

    img = cv2.imread(str(data_dir / 'whole_imgs' / 'Blake_Lively.jpg'))
    torch.manual_seed(0)
    net = build_network(dict(type='GFPGANv1Clean', out_size=32, num_style_feat=32, channel_multiplier=1,
                             narrow=0.125, num_mlp=1, different_w=True, sft_half=True, input_is_latent=True))
    opencv = GFPGANer(None, net=net, upscale=2, device='cpu')
    assert not opencv.paste_on_device  # CPU keeps the OpenCV path by default
    device = GFPGANer(None, net=net, upscale=2, device='cpu', paste_on_device=True)
    faces_a, restored_a, out_a = opencv.enhance(img)
    faces_b, restored_b, out_b = device.enhance(img)
    assert len(restored_a) == len(restored_b) == 2
    for a, b in zip(restored_a, restored_b):
        np.testing.assert_array_equal(a, b)
    assert out_a.shape == out_b.shape and out_b.dtype == np.uint8
    assert np.abs(out_a.astype(int) - out_b.astype(int)).max() <= 1
