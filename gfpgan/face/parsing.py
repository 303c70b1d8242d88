"""Face parsing (ParseNet, from PSFRGAN) for a paste-back mask that follows the face outline.

Optional: loads facexlib's `parsing_parsenet.pth` from the weights folder (no facexlib needed). The
released network: 512 px in and out, 32 px bottleneck, 64 base channels clipped to [32, 256], ten
residual blocks, BatchNorm and LeakyReLU(0.2); module names follow the file (`encoder`, `body`,
`decoder`, `out_img_conv`, `out_mask_conv`, each conv as `conv2d` with `norm.norm` BatchNorm). The mask
recipe is upstream's: classes 1-13 and 15 (skin, brows, eyes, ears, nose, mouth, lips, hair, earrings)
are face, then two 101 px Gaussian blurs (sigma 11) and a 10 px black border.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.face.weights import load_file_from_url
from gfpgan.utils.checkpoint_io import load_weights

WEIGHTS_URL = 'https://github.com/xinntao/facexlib/releases/download/v0.2.2/parsing_parsenet.pth'
FACE_CLASSES = np.array([0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0], np.float32)


class _Norm(nn.Module):
    def __init__(self, channels: int, use_bn: bool) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels) if use_bn else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class ConvLayer(nn.Module):
    """[nearest x2] -> reflection pad -> conv (stride 2 for 'down') -> [BN] -> [LeakyReLU 0.2]."""

    def __init__(self, cin: int, cout: int, scale: str = 'none', bn: bool = False, act: bool = False) -> None:
        super().__init__()
        self.up = scale == 'up'
        self.conv2d = nn.Conv2d(cin, cout, 3, 2 if scale == 'down' else 1, bias=not bn)
        self.norm = _Norm(cout, bn)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode='nearest')
        x = self.norm(self.conv2d(F.pad(x, (1, 1, 1, 1), mode='reflect')))
        return F.leaky_relu(x, 0.2) if self.act else x


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, scale: str = 'none') -> None:
        super().__init__()
        self.shortcut_func = nn.Identity() if scale == 'none' and cin == cout else ConvLayer(cin, cout, scale)
        first, second = {'down': ('none', 'down'), 'up': ('up', 'none'), 'none': ('none', 'none')}[scale]
        self.conv1 = ConvLayer(cin, cout, first, bn=True, act=True)
        self.conv2 = ConvLayer(cout, cout, second, bn=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut_func(x) + self.conv2(self.conv1(x))


class ParseNet(nn.Module):
    """RGB face in [-1, 1] (N, 3, S, S) -> (19-class logits (N, 19, S, S), image (N, 3, S, S))."""

    def __init__(self, size: int = 512, min_feat_size: int = 32, base_ch: int = 64, parsing_ch: int = 19,
                 res_depth: int = 10, ch_range: tuple[int, int] = (32, 256)) -> None:
        super().__init__()
        self.size = size

        def clip(c: int) -> int:
            return max(ch_range[0], min(c, ch_range[1]))

        steps = int(np.log2(size // min(size, min_feat_size)))
        encoder, ch = [ConvLayer(3, base_ch)], base_ch
        for _ in range(steps):
            encoder.append(ResidualBlock(clip(ch), clip(ch * 2), 'down'))
            ch *= 2
        self.encoder = nn.Sequential(*encoder)
        self.body = nn.Sequential(*(ResidualBlock(clip(ch), clip(ch)) for _ in range(res_depth)))
        decoder = []
        for _ in range(steps):
            decoder.append(ResidualBlock(clip(ch), clip(ch // 2), 'up'))
            ch //= 2
        self.decoder = nn.Sequential(*decoder)
        self.out_img_conv = ConvLayer(clip(ch), 3)
        self.out_mask_conv = ConvLayer(clip(ch), parsing_ch)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.encoder(x)
        x = self.decoder(feat + self.body(feat))
        return self.out_mask_conv(x), self.out_img_conv(x)


class FaceParser:
    """Callable `face crop (BGR uint8) -> float32 mask in [0, 1]` of the crop's size, for `paste_face`."""

    def __init__(self, model_path: str | Path | None = None, weights_folder: str | Path | None = None,
                 device: str | torch.device | None = None, net: ParseNet | None = None) -> None:
        self.device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        if net is None:
            with torch.device('meta'):  # every parameter comes from the file
                net = ParseNet()
            net.to_empty(device='cpu')
            load_weights(net, model_path or load_file_from_url(WEIGHTS_URL, weights_folder), param_key=None)
        self.net = net.eval().requires_grad_(False).to(self.device)

    @torch.no_grad()
    def __call__(self, face: np.ndarray) -> np.ndarray:
        size = self.net.size
        rgb = cv2.resize(face, (size, size), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div(127.5).sub(1.0)
        labels = self.net(x[None].to(self.device))[0].argmax(1)[0].cpu().numpy()
        mask = FACE_CLASSES[labels] * 255.0
        scale = size / 512  # upstream's blur and border are in 512 px units
        k = int(101 * scale) // 2 * 2 + 1
        for _ in range(2):
            mask = cv2.GaussianBlur(mask, (k, k), 11 * scale)
        border = max(1, round(10 * scale))
        mask[:border], mask[-border:], mask[:, :border], mask[:, -border:] = 0, 0, 0, 0
        return cv2.resize(mask / 255.0, face.shape[1::-1], interpolation=cv2.INTER_LINEAR).astype(np.float32)
