"""Background upsampler for `GFPGANer`: a Real-ESRGAN `RRDBNet` (x2plus / x4plus weights) run in tiles.

Exposes Real-ESRGAN's `RealESRGANer.enhance(img, outscale) -> (img, mode)` call so either object fits
`GFPGANer(bg_upsampler=...)`.
"""
from __future__ import annotations

import os

import cv2
import numpy as np
import torch

from gfpgan.archs import build_network
from gfpgan.archs.tiled_upsample import tile_upsample
from gfpgan.utils.checkpoint_io import load_weights

REALESRGAN_URLS = {
    2: 'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/RealESRGAN_x2plus.pth',
    4: 'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth',
}


class BackgroundUpsampler:
    """Upsample whole images with an RRDBNet of `scale` (2 or 4), `tile` input pixels at a time (0 = no tiling).

    `net_opt` overrides the RRDBNet options of the released x2plus/x4plus files (num_feat 64, 23 blocks).
    """

    def __init__(self, model_path: str | os.PathLike | None, scale: int = 2, tile: int = 400, tile_pad: int = 10,
                 pre_pad: int = 0, device: str | torch.device | None = None, half: bool = False,
                 net_opt: dict | None = None) -> None:
        opt = dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, scale=scale, num_feat=64, num_block=23, num_grow_ch=32)
        opt.update(net_opt or {})
        self.net = build_network(opt, what='bg_upsampler')
        if model_path is not None:
            load_weights(self.net, model_path, param_key='params_ema', strict=True)
        self.device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        self.dtype = torch.float16 if half and self.device.type == 'cuda' else torch.float32
        self.net.eval().requires_grad_(False).to(self.device, self.dtype)
        self.scale, self.tile, self.tile_pad, self.pre_pad = opt['scale'], tile, tile_pad, pre_pad

    @torch.no_grad()
    def enhance(self, img: np.ndarray, outscale: float | None = None) -> tuple[np.ndarray, str]:
        """BGR uint8 image -> BGR uint8 image enlarged `outscale` times (network scale, then a resize)."""
        h, w = img.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))).float().div(255.0)
        x = x[None].to(self.device, self.dtype)
        y = tile_upsample(self.net, x, self.scale, self.tile, self.tile_pad, self.pre_pad)
        out = (y[0].float().clamp(0, 1) * 255.0).round().byte().permute(1, 2, 0).cpu().numpy()[:, :, ::-1]
        out = np.ascontiguousarray(out)
        outscale = outscale or self.scale
        size = (max(1, round(w * outscale)), max(1, round(h * outscale)))
        if (out.shape[1], out.shape[0]) != size:
            out = cv2.resize(out, size, interpolation=cv2.INTER_LANCZOS4)
        return out, 'RGB'
