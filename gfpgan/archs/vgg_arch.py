"""VGG feature extractor for perceptual and style losses, loading torchvision-format weights.

Layer names follow BasicSR (`conv1_1`, `bn1_1`, `relu1_1`, ..., `pool1`, ...), so option files that
list `layer_weights: {conv5_4: 1}` work unchanged. Weights are read from a local torchvision
checkpoint (`features.N.weight` keys, e.g. `vgg19-dcbb9e9d.pth`) without importing torchvision:
index N of torchvision's `features` is the N-th named layer here. Only the layers up to the deepest
requested one are built, so `relu3_4` costs a third of the full network.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from gfpgan.utils.checkpoint_io import extract_state_dict, load_checkpoint
from gfpgan.utils.registry import ARCH_REGISTRY

# Convs per block (each block ends in a 2x2 max-pool); widths 64, 128, 256, 512, 512.
VGG_DEPTHS = {'vgg11': (1, 1, 2, 2, 2), 'vgg13': (2, 2, 2, 2, 2), 'vgg16': (2, 2, 3, 3, 3), 'vgg19': (2, 2, 4, 4, 4)}
VGG_WIDTHS = (64, 128, 256, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg_layer_names(vgg_type: str) -> list[str]:
    """All layer names of `vgg_type` ('vgg19', 'vgg16_bn', ...) in torchvision `features` order."""
    arch, _, bn = vgg_type.partition('_')
    if arch not in VGG_DEPTHS or bn not in ('', 'bn'):
        raise ValueError(f"Unknown vgg_type '{vgg_type}'; choose one of "
                         f"{', '.join(sorted(VGG_DEPTHS) + [k + '_bn' for k in sorted(VGG_DEPTHS)])}.")
    names = []
    for block, depth in enumerate(VGG_DEPTHS[arch], start=1):
        for i in range(1, depth + 1):
            names += [f'conv{block}_{i}'] + ([f'bn{block}_{i}'] if bn else []) + [f'relu{block}_{i}']
        names.append(f'pool{block}')
    return names


def _make_layer(name: str, cin: int, pooling_stride: int) -> tuple[nn.Module, int]:
    """The module for one named layer and the channel count after it."""
    kind, block = re.match(r'([a-z]+)(\d)', name).groups()
    width = VGG_WIDTHS[int(block) - 1]
    if kind == 'conv':
        return nn.Conv2d(cin, width, 3, padding=1), width
    if kind == 'bn':
        return nn.BatchNorm2d(cin), cin
    if kind == 'relu':
        return nn.ReLU(), cin
    return nn.MaxPool2d(pooling_stride, pooling_stride), cin


@ARCH_REGISTRY.register()
class VGGFeatureExtractor(nn.Module):
    """Image `(N, 3, H, W)` -> `{layer_name: feature}` for the requested layers.

    Args:
        layer_name_list: layers whose outputs are returned, e.g. `['relu1_1', 'relu2_1']`.
        vgg_type: 'vgg11', 'vgg13', 'vgg16', 'vgg19', each optionally with '_bn'.
        use_input_norm: normalise the input with the ImageNet mean/std the weights were trained with
            (expects RGB in [0, 1]).
        range_norm: map an input in [-1, 1] to [0, 1] first.
        requires_grad: train the VGG too. When False (the loss-network case) its parameters are frozen
            and it stays in eval mode even when a parent module calls `.train()`, so BatchNorm
            statistics never drift.
        remove_pooling: drop the max-pool layers (features keep the input resolution).
        pooling_stride: kernel size and stride of the max-pools.
        weights_path: a torchvision-format VGG checkpoint of the same `vgg_type`. None builds a randomly
            initialised network, which is only meaningful for tests or for training the VGG itself.
    """

    def __init__(self, layer_name_list: Sequence[str], vgg_type: str = 'vgg19', use_input_norm: bool = True,
                 range_norm: bool = False, requires_grad: bool = False, remove_pooling: bool = False,
                 pooling_stride: int = 2, weights_path: str | os.PathLike | None = None) -> None:
        super().__init__()
        names = vgg_layer_names(vgg_type)
        unknown = [n for n in layer_name_list if n not in names]
        if unknown or not layer_name_list:
            raise ValueError(f'VGGFeatureExtractor: layers {unknown or "(none given)"} are not in {vgg_type}; '
                             f'its layers are {", ".join(names)}.')
        self.layer_name_list = list(layer_name_list)
        self.vgg_type = vgg_type
        self.use_input_norm = use_input_norm
        self.range_norm = range_norm
        self.trainable = requires_grad

        deepest = max(names.index(n) for n in layer_name_list)
        layers, self._torchvision_index, cin = OrderedDict(), {}, 3
        for index, name in enumerate(names[: deepest + 1]):
            if remove_pooling and name.startswith('pool'):
                continue
            layers[name], cin = _make_layer(name, cin, pooling_stride)
            self._torchvision_index[name] = index
        self.vgg_net = nn.Sequential(layers)
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

        if weights_path is not None:
            self.load_torchvision_weights(weights_path)
        if not requires_grad:
            self.requires_grad_(False)
        self.train(requires_grad)

    def load_torchvision_weights(self, path: str | os.PathLike) -> None:
        """Load `features.N.*` tensors of a torchvision VGG checkpoint (classifier keys are ignored)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f'VGG weights file not found: {path}. Download the torchvision {self.vgg_type} checkpoint '
                f'(e.g. vgg19-dcbb9e9d.pth) and point weights_path at it.'
            )
        ckpt = extract_state_dict(load_checkpoint(path), param_key=None, source=str(path))
        self._check_variant(ckpt, path)
        state = {}
        for name, module in self.vgg_net.named_children():
            for key, own in module.state_dict().items():
                src = f'features.{self._torchvision_index[name]}.{key}'
                if src not in ckpt:
                    if key == 'num_batches_tracked':  # older torchvision checkpoints lack it
                        state[f'{name}.{key}'] = own
                        continue
                    raise KeyError(f'{path} has no {src} (needed for layer {name} of {self.vgg_type}).')
                if ckpt[src].shape != own.shape:
                    raise ValueError(f'{path}: {src} has shape {tuple(ckpt[src].shape)}, layer {name} of '
                                     f'{self.vgg_type} needs {tuple(own.shape)}. Is it a {self.vgg_type} checkpoint?')
                state[f'{name}.{key}'] = ckpt[src]
        self.vgg_net.load_state_dict(state)

    def _check_variant(self, ckpt: dict, path: str | os.PathLike) -> None:
        """Refuse a checkpoint of another VGG variant: its conv/BN weights sit at other indices."""
        expected = {i for i, n in enumerate(vgg_layer_names(self.vgg_type)) if n.startswith(('conv', 'bn'))}
        found = {int(m.group(1)) for k in ckpt if (m := re.fullmatch(r'features\.(\d+)\.weight', k))}
        if found != expected:
            raise ValueError(
                f'{path} does not look like a torchvision {self.vgg_type} checkpoint: it has weights at '
                f'features indices {sorted(found)}, {self.vgg_type} has them at {sorted(expected)}. '
                'Set vgg_type to match the file (e.g. vgg19 or vgg16_bn).'
            )

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        return super().train(mode and self.trainable)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.range_norm:
            x = (x + 1) / 2
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        out = {}
        for name, layer in self.vgg_net.named_children():
            x = layer(x)
            if name in self.layer_name_list:
                out[name] = x
        return out
