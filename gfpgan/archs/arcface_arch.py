"""ArcFace ResNet: the face-embedding network behind GFPGAN's identity loss.

Input is a gray 1x128x128 face (the identity loss converts RGB with (0.2989, 0.5870, 0.1140) and
resizes to 128), output a 512-d embedding. Module names follow the released `arcface_resnet18.pth`
(`ResNetArcFace(block='IRBlock', layers=[2, 2, 2, 2], use_se=False)`), so it loads strictly.

Unlike upstream, BasicBlock and Bottleneck also work here (upstream only maps the 'IRBlock' name and
sizes `bn4`/`fc5` for expansion 1); with IRBlock the network is identical to upstream.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from gfpgan.utils.registry import ARCH_REGISTRY


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class SEBlock(nn.Module):
    """Squeeze-and-excitation: rescale channels by a gate computed from their global average."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.PReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean((2, 3)))[:, :, None, None]


class IRBlock(nn.Module):
    """Improved residual block (BN first, PReLU, stride on the second conv). One PReLU serves both
    activations, as in the released weights (`prelu.weight` appears once per block)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 use_se: bool = True) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(cin)
        self.conv1 = conv3x3(cin, cin)
        self.bn1 = nn.BatchNorm2d(cin)
        self.prelu = nn.PReLU()
        self.conv2 = conv3x3(cin, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.se = SEBlock(planes) if use_se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.prelu(self.bn1(self.conv1(self.bn0(x))))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.prelu(out + shortcut)


class BasicBlock(nn.Module):
    """The classic two-conv ResNet block (ReLU), optional SE before the residual sum."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 use_se: bool = False) -> None:
        super().__init__()
        self.conv1 = conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.se = SEBlock(planes) if use_se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        if self.se is not None:
            out = self.se(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 ResNet block widening by 4, optional SE before the residual sum."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 use_se: bool = False) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = downsample
        self.se = SEBlock(cout) if use_se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


BLOCKS = {cls.__name__: cls for cls in (IRBlock, BasicBlock, Bottleneck)}
BlockType = Union[str, type]


@ARCH_REGISTRY.register()
class ResNetArcFace(nn.Module):
    """Gray face `(N, 1, 128, 128)` -> embedding `(N, 512)`.

    Args:
        block: 'IRBlock', 'BasicBlock' or 'Bottleneck' (or the class itself).
        layers: number of blocks in each of the four stages.
        use_se: squeeze-and-excitation in every block.
    """

    input_size = 128

    def __init__(self, block: BlockType, layers: Sequence[int], use_se: bool = True) -> None:
        super().__init__()
        if isinstance(block, str):
            if block not in BLOCKS:
                raise ValueError(f"ResNetArcFace: unknown block '{block}'; choose one of {', '.join(BLOCKS)}.")
            block = BLOCKS[block]
        if len(layers) != 4:
            raise ValueError(f'ResNetArcFace: layers must list 4 stage depths, got {list(layers)}.')
        self.conv1 = nn.Conv2d(1, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.prelu = nn.PReLU()
        self.maxpool = nn.MaxPool2d(2, 2)
        cin = 64
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), layers)):
            stage, cin = self._make_stage(block, cin, planes, depth, stride=1 if i == 0 else 2, use_se=use_se)
            setattr(self, f'layer{i + 1}', stage)
        self.bn4 = nn.BatchNorm2d(cin)
        self.dropout = nn.Dropout()
        self.fc5 = nn.Linear(cin * 8 * 8, 512)
        self.bn5 = nn.BatchNorm1d(512)
        self._init_weights()

    @staticmethod
    def _make_stage(block: type, cin: int, planes: int, depth: int, stride: int,
                    use_se: bool) -> tuple[nn.Sequential, int]:
        cout = planes * block.expansion
        downsample = None
        if stride != 1 or cin != cout:
            downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        blocks = [block(cin, planes, stride, downsample, use_se=use_se)]
        blocks += [block(cout, planes, use_se=use_se) for _ in range(1, depth)]
        return nn.Sequential(*blocks), cout

    def _init_weights(self) -> None:
        """Xavier-normal convs/linears and unit BatchNorm, as the original training used."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f'ResNetArcFace expects gray faces of shape (N, 1, 128, 128), got {tuple(x.shape)}; '
                'convert to gray and resize to 128 first.'
            )
        x = self.maxpool(self.prelu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn4(x))
        return self.bn5(self.fc5(x.flatten(1)))
