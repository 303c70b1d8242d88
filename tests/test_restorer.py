"""GFPGANer on real photos with a random-weight tiny GFPGANv1Clean saved as a release-style checkpoint."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gfpgan.archs import build_network
from gfpgan.face.weights import load_file_from_url, weights_dir
from gfpgan.restorer import GFPGANer, arch_options, infer_clean_options
from gfpgan.utils.checkpoint_io import save_checkpoint

TINY = dict(type='GFPGANv1Clean', out_size=32, num_style_feat=32, channel_multiplier=1, narrow=0.125, num_mlp=1,
            different_w=True, sft_half=True, input_is_latent=True)


def save_tiny_generator(path: Path, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    net = build_network(TINY)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    save_checkpoint({'params_ema': state}, path)
    return state


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('weights') / 'tiny_gfpgan.pth'
    save_tiny_generator(path)
    return path


@pytest.fixture(scope='module')
def restorer(tiny_ckpt) -> GFPGANer:
    return GFPGANer(str(tiny_ckpt), upscale=2, device='cpu')


def face_regions(restorer: GFPGANer, shape: tuple[int, ...]) -> list[np.ndarray]:
    """One boolean mask per pasted face: its crop square mapped into the output, grown by 2 px."""
    masks = []
    size = restorer.face_size
    for inv in restorer.face_helper.inverse_affine_matrices:
        corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float64) @ inv[:, :2].T + inv[:, 2]
        mask = np.zeros(shape[:2], np.uint8)
        cv2.fillConvexPoly(mask, np.round(corners).astype(np.int32), 1)
        masks.append(cv2.dilate(mask, np.ones((5, 5), np.uint8)).astype(bool))
    return masks


def test_release_options_are_read_off_the_checkpoint():
    with torch.device('meta'):
        full = build_network(arch_options('clean'))
    assert infer_clean_options(full.state_dict()) == arch_options('clean')
    for opt in (TINY, dict(TINY, out_size=64, channel_multiplier=2, narrow=0.25, different_w=False, sft_half=False)):
        with torch.device('meta'):
            tiny = build_network(opt)
            inferred = build_network(infer_clean_options(tiny.state_dict()))
        assert {k: v.shape for k, v in inferred.state_dict().items()} == {
            k: v.shape for k, v in tiny.state_dict().items()}
    with pytest.raises(KeyError, match='GFPGANv1Clean'):
        infer_clean_options({'conv.weight': torch.zeros(1)})


def test_checkpoint_loads_strictly_with_a_clear_error(tiny_ckpt, restorer):
    saved = torch.load(tiny_ckpt, weights_only=True)['params_ema']
    for k, v in restorer.gfpgan.state_dict().items():
        torch.testing.assert_close(v, saved[k])
    assert restorer.out_size == 32
    with pytest.raises(RuntimeError, match='tiny_gfpgan.pth.*wrong shape'):
        GFPGANer(str(tiny_ckpt), net_opt=dict(TINY, narrow=0.25), device='cpu')
    with pytest.raises(FileNotFoundError, match='nothere.pth'):
        GFPGANer(str(tiny_ckpt.parent / 'nothere.pth'), device='cpu')


def test_a_built_generator_can_be_passed_in():
    torch.manual_seed(1)
    net = build_network(TINY)
    restorer = GFPGANer(None, net=net, device='cpu')
    assert restorer.out_size == 32  # read off its state dict
    face = np.full((512, 512, 3), 128, np.uint8)
    assert restorer.restore_faces([face, face])[0].shape == (512, 512, 3)
    with pytest.raises(ValueError, match='model_path'):
        GFPGANer(None, device='cpu')


def test_every_face_restored_and_pasted_back_in_place(restorer, data_dir):
    img = cv2.imread(str(data_dir / 'whole_imgs' / 'Blake_Lively.jpg'))
    cropped, restored, out = restorer.enhance(img, weight=1.0)
    assert len(cropped) == len(restored) == 2
    assert all(c.shape == (512, 512, 3) and r.shape == (512, 512, 3) for c, r in zip(cropped, restored))
    assert out.shape == (img.shape[0] * 2, img.shape[1] * 2, 3)

    plain = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_LANCZOS4)
    inside = np.zeros(out.shape[:2], bool)
    for region in face_regions(restorer, out.shape):
        inside |= region
        # a random generator's face is nothing like the input's
        assert np.abs(out[region].astype(int) - plain[region]).mean() > 10
    np.testing.assert_array_equal(out[~inside], plain[~inside])  # background: exactly the plain resize
    assert inside.mean() < 0.6


def test_a_parsing_mask_replaces_the_feathered_square(restorer, data_dir, monkeypatch):
    img = cv2.imread(str(data_dir / 'whole_imgs' / 'Blake_Lively.jpg'))
    plain = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_LANCZOS4)
    seen = []

    def parser(face):  # a parser that finds no face: nothing may be pasted
        seen.append(face.shape)
        return np.zeros(face.shape[:2], np.float32)

    monkeypatch.setattr(restorer.face_helper, 'parser', parser)
    _, restored, out = restorer.enhance(img, weight=1.0)
    assert seen == [(512, 512, 3)] * len(restored) == [(512, 512, 3)] * 2
    np.testing.assert_array_equal(out, plain)


def test_unchanged_faces_paste_back_in_register(restorer, data_dir):
    """weight=0 pastes the input's own crops back: a misplaced paste would show as a shifted face."""
    img = cv2.imread(str(data_dir / 'whole_imgs' / 'Blake_Lively.jpg'))
    _, _, out = restorer.enhance(img, weight=0.0)
    plain = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_LANCZOS4)
    # compare at low frequencies: the crop's double resampling softens detail but moves nothing
    out, plain = (cv2.GaussianBlur(x.astype(np.float32), (0, 0), 2) for x in (out, plain))
    for region in face_regions(restorer, out.shape):
        in_register = np.abs(out[region] - plain[region]).mean()
        for axis in (0, 1):  # well under what a one-output-pixel shift does (measured ratio ~0.2)
            assert in_register < 0.4 * np.abs(np.roll(plain, 1, axis=axis)[region] - plain[region]).mean()


def test_weight_blends_restored_and_input_faces(restorer, data_dir):
    img = cv2.imread(str(data_dir / 'whole_imgs' / 'Blake_Lively.jpg'))
    cropped, as_is, _ = restorer.enhance(img, weight=0.0, paste_back=False)
    for c, r in zip(cropped, as_is):
        np.testing.assert_array_equal(c, r)
    _, full, _ = restorer.enhance(img, weight=1.0, paste_back=False)
    _, half, out = restorer.enhance(img, weight=0.5, paste_back=False)
    assert out is None
    for c, f, h in zip(cropped, full, half):
        assert np.abs(h.astype(float) - (c.astype(float) + f) / 2).max() <= 1.0
        assert np.abs(f.astype(int) - c).mean() > 10
    with pytest.raises(ValueError, match='weight'):
        restorer.enhance(img, weight=1.5)


def test_all_faces_in_one_batch_and_reproducible(restorer, data_dir, monkeypatch):
    img = cv2.imread(str(data_dir / 'whole_imgs' / '10045.png'))
    batches = []
    forward = restorer.gfpgan.forward

    def spy(x, **kwargs):
        batches.append(x.shape[0])
        return forward(x, **kwargs)

    monkeypatch.setattr(restorer.gfpgan, 'forward', spy)
    _, first, out1 = restorer.enhance(img)
    assert batches == [3]
    monkeypatch.setattr(restorer, 'batch_size', 2)
    _, second, out2 = restorer.enhance(img)
    assert batches == [3, 2, 1]
    for a, b in zip(first, second):
        assert np.abs(a.astype(int) - b).max() <= 1  # batched or not, same faces (stored noise)
    assert np.abs(out1.astype(int) - out2).max() <= 1


def test_aligned_input_center_face_and_no_face(restorer, data_dir):
    crop = cv2.imread(str(data_dir / 'cropped_faces' / 'Adele_crop.png'))
    cropped, restored, out = restorer.enhance(crop, has_aligned=True)
    assert out is None and len(restored) == 1 and restored[0].shape == (512, 512, 3)
    np.testing.assert_array_equal(cropped[0], crop)
    small = cv2.resize(crop, (200, 200))
    cropped, restored, _ = restorer.enhance(small, has_aligned=True)
    assert cropped[0].shape == restored[0].shape == (512, 512, 3)

    group = cv2.imread(str(data_dir / 'whole_imgs' / '10045.png'))
    cropped, _, _ = restorer.enhance(group, only_center_face=True)
    assert len(cropped) == 1

    blank = np.full((40, 60, 3), 90, np.uint8)
    cropped, restored, out = restorer.enhance(blank)
    assert cropped == [] and restored == []
    np.testing.assert_array_equal(out, cv2.resize(blank, (120, 80), interpolation=cv2.INTER_LANCZOS4))


def test_gray_and_rgba_inputs_become_bgr(restorer):
    gray = np.full((30, 40), 200, np.uint8)
    assert restorer.enhance(gray)[2].shape == (60, 80, 3)
    rgba = np.zeros((30, 40, 4), np.uint8)  # fully transparent: white, as image viewers show it
    assert (restorer.enhance(rgba)[2] == 255).all()


def test_output_size_guard(tiny_ckpt):
    restorer = GFPGANer(str(tiny_ckpt), upscale=4, device='cpu', max_output_megapixels=1)
    with pytest.raises(ValueError, match='2000x2000.*1 Mpx limit'):
        restorer.enhance(np.zeros((500, 500, 3), np.uint8))


def test_background_upsampler_replaces_the_plain_resize(tiny_ckpt, data_dir):
    from gfpgan.bg_upsampler import BackgroundUpsampler

    torch.manual_seed(0)
    bg = BackgroundUpsampler(None, scale=2, tile=64, tile_pad=4,
                             net_opt=dict(num_feat=8, num_block=1, num_grow_ch=4), device='cpu')
    img = cv2.imread(str(data_dir / 'whole_imgs' / 'Blake_Lively.jpg'))[:160, :240]
    expected, _ = bg.enhance(img, outscale=2)
    assert expected.shape == (320, 480, 3)
    restorer = GFPGANer(str(tiny_ckpt), upscale=2, device='cpu', bg_upsampler=bg)
    cropped, _, out = restorer.enhance(img)
    if not cropped:
        np.testing.assert_array_equal(out, expected)
    inside = np.zeros(out.shape[:2], bool)
    for region in face_regions(restorer, out.shape):
        inside |= region
    np.testing.assert_array_equal(out[~inside], expected[~inside])


def test_reduced_precision(tiny_ckpt, restorer):
    with pytest.raises(ValueError, match='fp16'):
        GFPGANer(str(tiny_ckpt), device='cpu', half=True)
    bf16 = GFPGANer(str(tiny_ckpt), device='cpu', dtype='bf16')
    assert next(bf16.gfpgan.parameters()).dtype == torch.bfloat16
    face = np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8)
    full, half = restorer.restore_faces([face])[0], bf16.restore_faces([face])[0]
    assert np.abs(full.astype(int) - half).mean() < 2  # same faces up to bf16 rounding


@pytest.mark.parametrize('arch, channel_multiplier, manifest_prefix', [
    ('clean', 2, 'GFPGANv1Clean_512'), ('original', 1, 'GFPGANv1_512'), ('bilinear', 2, None),
    ('RestoreFormer', 2, None)])
def test_every_release_arch_builds(arch, channel_multiplier, manifest_prefix, shared_dir):
    with torch.device('meta'):
        net = build_network(arch_options(arch, channel_multiplier))
    if manifest_prefix:
        manifests = json.loads((shared_dir / 'compat' / 'state_dict_manifests.json').read_text())
        manifest = next(v for k, v in manifests.items() if k.startswith(manifest_prefix))
        assert {k: list(v.shape) for k, v in net.state_dict().items()} == manifest
    with pytest.raises(ValueError, match='Unknown arch'):
        arch_options('v2')


def test_weights_dir_is_absolute_and_never_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('GFPGAN_WEIGHTS_DIR', raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    assert weights_dir() == (tmp_path / 'cache' / 'gfpgan').resolve()
    monkeypatch.setenv('GFPGAN_WEIGHTS_DIR', 'rel/w')
    resolved = weights_dir()
    assert resolved.is_absolute() and resolved == (tmp_path / 'rel' / 'w').resolve()
    monkeypatch.chdir('/')
    assert weights_dir(tmp_path / 'explicit') == (tmp_path / 'explicit').resolve()


def test_load_file_from_url_downloads_atomically_or_explains(tmp_path, monkeypatch, no_weights_anywhere):
    src = tmp_path / 'remote' / 'model.pth'
    src.parent.mkdir()
    src.write_bytes(b'weights' * 1000)
    folder = tmp_path / 'w'
    path = load_file_from_url(src.as_uri(), folder, progress=False)  # file:// stands in for https://
    assert Path(path) == folder / 'model.pth' and Path(path).read_bytes() == src.read_bytes()
    assert os.listdir(folder) == ['model.pth']  # no temporary file left behind
    src.unlink()
    assert load_file_from_url(src.as_uri(), folder) == path  # present: no download
    missing = 'file:///definitely/not/here/GFPGANv1.4.pth'
    with pytest.raises(FileNotFoundError) as err:
        load_file_from_url(missing, folder, progress=False)
    message = str(err.value)
    assert missing in message and str(folder / 'GFPGANv1.4.pth') in message
    assert not (folder / 'GFPGANv1.4.pth').exists() and os.listdir(folder) == ['model.pth']
    with pytest.raises(FileNotFoundError, match='GFPGANv1.3.pth'):
        load_file_from_url('https://example.com/GFPGANv1.3.pth', folder, allow_download=False)
