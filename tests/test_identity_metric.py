"""Identity distance "Deg.": angles between embeddings, the BGR-image metric and its network cache."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gfpgan.metrics import calculate_metric
from gfpgan.metrics import identity_metric as im
from gfpgan.utils.checkpoint_io import save_checkpoint


def test_embedding_angle_values():
    e = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    e2 = torch.tensor([[3.0, 0.0], [0.0, 2.0], [-1.0, 0.0], [1.0, 0.0]])
    torch.testing.assert_close(im.embedding_angle(e, e2), torch.tensor([0.0, 90.0, 180.0, 45.0], dtype=torch.float64))


class GrayMeanEmbedding(nn.Module):
    """Embedding = (mean of the left half, mean of the right half, 1): its angles are easy to predict."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1:] == (1, 128, 128)
        left, right = x[..., :64].mean((1, 2, 3)), x[..., 64:].mean((1, 2, 3))
        return self.scale * torch.stack([left, right, torch.ones_like(left)], 1)


def test_identity_distance_on_bgr_images():
    net = GrayMeanEmbedding()
    img = np.full((128, 128, 3), 255, np.uint8)  # white: gray 0.9999 in [-1, 1] (weights sum to 0.9999)
    dark = img.copy()
    dark[:, 64:] = 127  # right half: gray 0.9999 * (127 / 127.5 - 1)
    same = calculate_metric({'img': img, 'img2': img}, {'type': 'calculate_identity_distance', 'network': net})
    assert same == pytest.approx(0.0, abs=1e-3)
    deg = im.calculate_identity_distance(img, dark, network=net)
    g = 0.9999
    a, b = np.array([g, g, 1.0]), np.array([g, g * (127 / 127.5 - 1), 1.0])
    expected = np.degrees(np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
    assert deg == pytest.approx(expected, abs=1e-3) and deg > 10


def test_network_built_once_from_options(tmp_path):
    opt = {'type': 'ResNetArcFace', 'block': 'IRBlock', 'layers': [1, 1, 1, 1], 'use_se': False}
    from gfpgan.archs import build_network

    torch.manual_seed(0)
    save_checkpoint({'params_ema': build_network(opt).state_dict()}, tmp_path / 'arc.pth')
    rng = np.random.default_rng(0)
    img, img2 = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    metric = {'type': 'calculate_identity_distance', 'network': opt, 'weights_path': str(tmp_path / 'arc.pth')}
    im._NETWORKS.clear()
    first = calculate_metric({'img': img, 'img2': img2}, metric)
    assert len(im._NETWORKS) == 1
    second = calculate_metric({'img': img, 'img2': img2}, metric)
    assert len(im._NETWORKS) == 1 and first == second and 0 < first <= 180
    with pytest.raises(ValueError, match='3-channel BGR'):
        im.calculate_identity_distance(img[..., 0], img2[..., 0], network=GrayMeanEmbedding())
