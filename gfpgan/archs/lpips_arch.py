"""LPIPS (Zhang et al. 2018) as the `lpips` package 0.1.4 computes it, built without torchvision.

The trunk is torchvision's VGG16 or AlexNet `features` (ImageNet weights in torchvision's file format,
`features.N.*` keys); its activations after the five ReLUs that `lpips` taps are unit-normalised over
channels, squared differences are weighted per channel by the learned 1x1 "linear" layers and averaged
over space, and the five terms add up to the distance. The linear layers ship inside the `lpips` wheel
(`lpips/weights/v{version}/{net}.pth`); that package imports torchvision, so its files are located
through the installed distribution's metadata and never imported.

Version '0.1' (the package default) first maps the [-1, 1] input with lpips's fixed per-channel
shift/scale; '0.0' (the original release) feeds the input unscaled and has its own linear weights.
"""
from __future__ import annotations

import importlib.metadata
import os
import re
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from gfpgan.archs.vgg_arch import VGGFeatureExtractor
from gfpgan.utils.checkpoint_io import extract_state_dict, load_checkpoint
from gfpgan.utils.registry import ARCH_REGISTRY

LPIPS_NETS = ('vgg', 'alex')
LPIPS_VERSIONS = ('0.1', '0.0')
# lpips's ScalingLayer (RGB), applied in version 0.1 only
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
VGG16_TAPS = ('relu1_2', 'relu2_2', 'relu3_3', 'relu4_3', 'relu5_3')  # torchvision indices 3, 8, 15, 22, 29
TRUNK_WIDTHS = {'vgg': (64, 128, 256, 512, 512), 'alex': (64, 192, 384, 256, 256)}
TORCHVISION_ARCH = {'vgg': 'vgg16', 'alex': 'alexnet'}

# torchvision's alexnet().features: index -> layer (conv: (c_in, c_out, kernel, stride, padding))
_ALEXNET_CONVS = {0: (3, 64, 11, 4, 2), 3: (64, 192, 5, 1, 2), 6: (192, 384, 3, 1, 1), 8: (384, 256, 3, 1, 1),
                  10: (256, 256, 3, 1, 1)}
_ALEXNET_POOLS = (2, 5)  # MaxPool2d(3, 2); index 12 (the last pool) is never tapped, so not built
ALEXNET_TAPS = (1, 4, 7, 9, 11)  # the ReLUs lpips reads


def lpips_linear_weights_path(net: str, version: str = '0.1') -> Path:
    """The `lpips` wheel's `weights/v{version}/{net}.pth`, found without importing the package."""
    check_lpips_choice(net, version)
    try:
        dist = importlib.metadata.distribution('lpips')
    except importlib.metadata.PackageNotFoundError as err:
        raise ImportError('LPIPS needs the linear-layer weights that ship in the lpips wheel: '
                          'pip install --no-deps lpips==0.1.4 (--no-deps: its metadata pulls torchvision, '
                          'which is not needed).') from err
    path = Path(dist.locate_file(f'lpips/weights/v{version}/{net}.pth'))
    if not path.is_file():
        raise FileNotFoundError(f'{path} is missing from the installed lpips {dist.version}; reinstall it: '
                                'pip install --no-deps --force-reinstall lpips==0.1.4')
    return path


def check_lpips_choice(net: str, version: str) -> None:
    """Raise naming the bad `net` / `version` and the choices."""
    if net not in LPIPS_NETS:
        raise ValueError(f"LPIPS net must be one of {', '.join(LPIPS_NETS)}, got {net!r}.")
    if version not in LPIPS_VERSIONS:
        raise ValueError(f"LPIPS version must be one of {', '.join(LPIPS_VERSIONS)}, got {version!r}.")


@ARCH_REGISTRY.register()
class AlexNetFeatures(nn.Module):
    """torchvision's `alexnet().features` up to its last ReLU, same `features.N.*` keys; returns the 5 ReLU outputs."""

    def __init__(self, weights_path: str | os.PathLike | None = None) -> None:
        super().__init__()
        layers = OrderedDict()
        for index in range(max(ALEXNET_TAPS) + 1):
            if index in _ALEXNET_CONVS:
                cin, cout, k, s, p = _ALEXNET_CONVS[index]
                layers[str(index)] = nn.Conv2d(cin, cout, k, s, p)
            elif index in _ALEXNET_POOLS:
                layers[str(index)] = nn.MaxPool2d(3, 2)
            else:
                layers[str(index)] = nn.ReLU()
        self.features = nn.Sequential(layers)
        if weights_path is not None:
            self.load_torchvision_weights(weights_path)

    def load_torchvision_weights(self, path: str | os.PathLike) -> None:
        """Load the `features.N.*` tensors of a torchvision AlexNet checkpoint (classifier keys are ignored)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f'AlexNet weights file not found: {path}. Give a torchvision-format alexnet '
                                    'checkpoint (alexnet-owt-7be5be79.pth).')
        ckpt = extract_state_dict(load_checkpoint(path), param_key=None, source=str(path))
        found = sorted({int(m.group(1)) for k in ckpt if (m := re.fullmatch(r'features\.(\d+)\.weight', k))})
        if found != sorted(_ALEXNET_CONVS):
            raise ValueError(f'{path} does not look like a torchvision alexnet checkpoint: it has weights at '
                             f'features indices {found}, alexnet has them at {sorted(_ALEXNET_CONVS)}.')
        state = {}
        for key, own in self.state_dict().items():
            if ckpt[key].shape != own.shape:
                raise ValueError(f'{path}: {key} has shape {tuple(ckpt[key].shape)}, alexnet needs {tuple(own.shape)}.')
            state[key] = ckpt[key]
        self.load_state_dict(state)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in ALEXNET_TAPS:
                taps.append(x)
        return taps


class _VGG16Taps(nn.Module):
    """VGG16 `features` (the project's VGGFeatureExtractor, no input normalisation) -> the 5 tapped ReLUs."""

    def __init__(self, weights_path: str | os.PathLike | None) -> None:
        super().__init__()
        self.vgg = VGGFeatureExtractor(list(VGG16_TAPS), 'vgg16', use_input_norm=False, weights_path=weights_path)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = self.vgg(x)
        return [out[name] for name in VGG16_TAPS]


@ARCH_REGISTRY.register()
class LPIPSNet(nn.Module):
    """(N, 3, H, W) RGB in [-1, 1] twice -> (N,) LPIPS distance (float32, as lpips computes it).

    Args:
        net: 'vgg' (VGG16) or 'alex' (AlexNet) trunk.
        version: '0.1' or '0.0' (see the module docstring).
        backbone_weights: torchvision-format trunk weights (vgg16-397923af.pth / alexnet-owt-7be5be79.pth);
            None leaves the trunk random (tests only).
        linear_weights: the linear layers' file; None reads the lpips wheel's; '' leaves them random.
    """

    def __init__(self, net: str = 'vgg', version: str = '0.1', backbone_weights: str | os.PathLike | None = None,
                 linear_weights: str | os.PathLike | None = None) -> None:
        super().__init__()
        check_lpips_choice(net, version)
        self.net, self.version = net, version
        self.trunk = _VGG16Taps(backbone_weights) if net == 'vgg' else AlexNetFeatures(backbone_weights)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in TRUNK_WIDTHS[net])
        self.register_buffer('shift', torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer('scale', torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))
        if linear_weights is None:
            linear_weights = lpips_linear_weights_path(net, version)
        if linear_weights != '':
            self.load_linear_weights(linear_weights)
        self.requires_grad_(False)
        self.eval()

    def load_linear_weights(self, path: str | os.PathLike) -> None:
        """lpips's `lin{k}.model.1.weight` tensors into `lins.{k}.weight`."""
        ckpt = load_checkpoint(path)
        state = {}
        for k, lin in enumerate(self.lins):
            key = f'lin{k}.model.1.weight'
            if key not in ckpt or ckpt[key].shape != lin.weight.shape:
                raise KeyError(f'{path}: expected {key} of shape {tuple(lin.weight.shape)} (an lpips {self.net} '
                               f'linear-layer file); found keys {sorted(ckpt)}.')
            state[f'{k}.weight'] = ckpt[key]
        self.lins.load_state_dict(state)

    def layer_distances(self, img: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        """(N, 5): the spatially averaged term of each tapped layer; they add up to the distance."""
        if img.shape != img2.shape or img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f'LPIPS needs two (N, 3, H, W) RGB batches of one shape, got {tuple(img.shape)} and '
                             f'{tuple(img2.shape)}.')
        if self.version == '0.1':
            img, img2 = (img - self.shift) / self.scale, (img2 - self.shift) / self.scale
        terms = []
        for lin, f, f2 in zip(self.lins, self.trunk(img), self.trunk(img2)):
            f = f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            f2 = f2 / (f2.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            terms.append(lin((f - f2) ** 2).mean((2, 3)).flatten())
        return torch.stack(terms, 1)

    def forward(self, img: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        terms = self.layer_distances(img, img2)
        total = terms[:, 0]
        for k in range(1, terms.shape[1]):  # in lpips's order, so float32 rounding matches
            total = total + terms[:, k]
        return total
