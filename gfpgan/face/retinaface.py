"""RetinaFace-ResNet50 (Deng et al., 2019) that loads facexlib's `detection_Resnet50_Final.pth` directly.

Optional: used when the user has the weight file (download once into the weights folder); needs neither
facexlib nor torchvision. Module names follow the file's keys: a torchvision-layout ResNet-50 under
`body.` (stem + layer1-4), `fpn.output1-3` / `fpn.merge1-2`, `ssh1-3`, and per-level `ClassHead`,
`BboxHead`, `LandmarkHead`. Anchors and decoding use the published settings (min sizes 16-512,
strides 8/16/32, variances 0.1/0.2, BGR mean 104/117/123).
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.face.detection import DetectedFace
from gfpgan.face.weights import load_file_from_url
from gfpgan.utils.checkpoint_io import load_weights

WEIGHTS_URL = 'https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth'
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)
VARIANCES = (0.1, 0.2)
BGR_MEAN = (104.0, 117.0, 123.0)


def conv_bn(cin: int, cout: int, kernel: int = 3, relu: bool = True) -> nn.Sequential:
    """Conv (no bias) + BN (+ ReLU): RetinaFace's `conv_bn`, `conv_bn1X1` and `conv_bn_no_relu` blocks."""
    layers = [nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:  # leaky slope 0 for 256-channel RetinaFace-R50, i.e. a plain ReLU
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    """ResNet-50 bottleneck (stride on the 3x3 conv), torchvision's parameter names."""

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.downsample = None
        if stride != 1 or cin != width * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, width * 4, 1, stride, bias=False), nn.BatchNorm2d(width * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet50Body(nn.Module):
    """ResNet-50 without pooling/fc, returning the layer2, layer3 and layer4 features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))):
            layer = []
            for b in range(blocks):
                layer.append(Bottleneck(cin, width, stride if b == 0 else 1))
                cin = width * 4
            self.add_module(f'layer{i + 1}', nn.Sequential(*layer))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        c2 = self.layer2(self.layer1(x))
        c3 = self.layer3(c2)
        return [c2, c3, self.layer4(c3)]


class FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, ...] = (512, 1024, 2048), out: int = 256) -> None:
        super().__init__()
        self.output1, self.output2, self.output3 = (conv_bn(c, out, 1) for c in in_channels)
        self.merge1 = conv_bn(out, out)
        self.merge2 = conv_bn(out, out)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        o1, o2, o3 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        o2 = self.merge2(o2 + F.interpolate(o3, size=o2.shape[-2:], mode='nearest'))
        o1 = self.merge1(o1 + F.interpolate(o2, size=o1.shape[-2:], mode='nearest'))
        return [o1, o2, o3]


class SSH(nn.Module):
    """Single-stage context module: 3x3, 5x5 and 7x7 receptive fields (stacked 3x3 convs), concatenated."""

    def __init__(self, cin: int = 256, out: int = 256) -> None:
        super().__init__()
        self.conv3X3 = conv_bn(cin, out // 2, relu=False)
        self.conv5X5_1 = conv_bn(cin, out // 4)
        self.conv5X5_2 = conv_bn(out // 4, out // 4, relu=False)
        self.conv7X7_2 = conv_bn(out // 4, out // 4)
        self.conv7x7_3 = conv_bn(out // 4, out // 4, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c5_1 = self.conv5X5_1(x)
        c7 = self.conv7x7_3(self.conv7X7_2(c5_1))
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(c5_1), c7], 1))


class Head(nn.Module):
    """1x1 conv predicting `per_anchor` values for each of 2 anchors, flattened to (N, H*W*2, per_anchor)."""

    def __init__(self, per_anchor: int, cin: int = 256, anchors: int = 2) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(cin, anchors * per_anchor, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1x1(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.per_anchor)


class RetinaFace(nn.Module):
    """BGR-mean-subtracted image (N, 3, H, W) -> (boxes (N, A, 4), scores (N, A, 2), landmarks (N, A, 10))."""

    def __init__(self) -> None:
        super().__init__()
        self.body = ResNet50Body()
        self.fpn = FPN()
        self.ssh1, self.ssh2, self.ssh3 = SSH(), SSH(), SSH()
        self.ClassHead = nn.ModuleList(Head(2) for _ in range(3))
        self.BboxHead = nn.ModuleList(Head(4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(Head(10) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats = self.fpn(self.body(x))
        feats = [self.ssh1(feats[0]), self.ssh2(feats[1]), self.ssh3(feats[2])]
        boxes = torch.cat([h(f) for h, f in zip(self.BboxHead, feats)], 1)
        scores = torch.cat([h(f) for h, f in zip(self.ClassHead, feats)], 1).softmax(-1)
        landmarks = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats)], 1)
        return boxes, scores, landmarks


def prior_boxes(height: int, width: int) -> torch.Tensor:
    """Anchors (A, 4) as (cx, cy, w, h) relative to the image, in the order the heads emit them."""
    out = []
    for sizes, step in zip(MIN_SIZES, STEPS):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cy, cx = torch.meshgrid((torch.arange(rows) + 0.5) * step / height,
                                (torch.arange(cols) + 0.5) * step / width, indexing='ij')
        per_size = [torch.stack([cx, cy, torch.full_like(cx, s / width), torch.full_like(cx, s / height)], -1)
                    for s in sizes]
        out.append(torch.stack(per_size, 2).reshape(-1, 4))  # (row, col, anchor) order
    return torch.cat(out)


def decode(loc: torch.Tensor, landm: torch.Tensor, priors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Regression outputs -> boxes (A, 4) x1y1x2y2 and landmarks (A, 10), relative to the image."""
    centre = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
    boxes = torch.cat([centre - size / 2, centre + size / 2], 1)
    points = priors[:, None, :2] + landm.view(-1, 5, 2) * VARIANCES[0] * priors[:, None, 2:]
    return boxes, points.reshape(-1, 10)


def nms_torch(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS with torchvision's semantics (IoU without +1 pixels; indices by decreasing score)."""
    order = torch.argsort(scores, descending=True, stable=True)
    boxes = boxes[order]
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        lt = torch.maximum(boxes[i, :2], boxes[i + 1:, :2])
        rb = torch.minimum(boxes[i, 2:], boxes[i + 1:, 2:])
        inter = (rb - lt).clamp(min=0).prod(1)
        iou = inter / (area[i] + area[i + 1:] - inter)
        suppressed[i + 1:] |= iou > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long)]


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """torchvision's NMS when it imports, else the pure-torch one (same result)."""
    try:
        from torchvision.ops import nms as tv_nms
    except Exception:  # torchvision absent or broken: its import can raise anything
        return nms_torch(boxes, scores, iou_threshold)
    return tv_nms(boxes, scores, iou_threshold)


class RetinaFaceDetector:
    """`FaceDetector` over `RetinaFace`: weights from `weights_folder` (see `gfpgan.face.weights`).

    Args:
        conf_threshold / nms_threshold: upstream's 0.8 / 0.4 (facexlib's defaults).
        max_side: larger images are shrunk to this longest side before the network (boxes and
            landmarks are scaled back), which bounds time and memory on very large photos.
    """

    def __init__(self, model_path: str | Path | None = None, weights_folder: str | Path | None = None,
                 device: str | torch.device | None = None, conf_threshold: float = 0.8,
                 nms_threshold: float = 0.4, max_side: int = 1600) -> None:
        path = model_path or load_file_from_url(WEIGHTS_URL, weights_folder)
        self.device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        with torch.device('meta'):  # every parameter comes from the file: skip the random init
            self.net = RetinaFace()
        self.net.to_empty(device='cpu')
        load_weights(self.net, path, param_key=None, strict=True)
        self.net.eval().requires_grad_(False).to(self.device)
        self.conf_threshold, self.nms_threshold, self.max_side = conf_threshold, nms_threshold, max_side

    @torch.no_grad()
    def detect(self, img: np.ndarray) -> list[DetectedFace]:
        h, w = img.shape[:2]
        if min(h, w) < 16:
            return []
        scale = min(1.0, self.max_side / max(h, w))
        if scale < 1.0:
            img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        sh, sw = img.shape[:2]
        x = torch.from_numpy(img.astype(np.float32) - np.array(BGR_MEAN, np.float32)).permute(2, 0, 1)[None]
        loc, conf, landm = self.net(x.to(self.device))
        boxes, points = decode(loc[0].float().cpu(), landm[0].float().cpu(), prior_boxes(sh, sw))
        scores = conf[0, :, 1].float().cpu()
        keep = scores > self.conf_threshold
        boxes, points, scores = boxes[keep], points[keep], scores[keep]
        boxes = boxes * torch.tensor([sw, sh, sw, sh]) / scale
        points = points * torch.tensor([sw, sh] * 5) / scale
        kept = nms(boxes, scores, self.nms_threshold)
        return [DetectedFace(boxes[i].numpy().astype(np.float32), points[i].view(5, 2).numpy().astype(np.float32),
                             float(scores[i])) for i in kept.tolist()]
