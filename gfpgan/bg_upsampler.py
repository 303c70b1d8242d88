"""Whole-image super-resolution for `GFPGANer`'s background and `scripts/inference_sr.py`: any registered SR
network (RRDBNet, SRVGGNetCompact, MSRResNet), run in tiles.

Exposes Real-ESRGAN's `RealESRGANer.enhance(img, outscale) -> (img, mode)` call so either object fits
`GFPGANer(bg_upsampler=...)`. `SR_MODELS` names the released networks by their file names.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from gfpgan.archs import build_network
from gfpgan.archs.tiled_upsample import tile_upsample
from gfpgan.utils.checkpoint_io import load_weights

_RELEASES = 'https://github.com/xinntao/Real-ESRGAN/releases/download'
_RRDB = dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32)


@dataclass(frozen=True)
class SRModel:
    """A released SR network: its constructor options, release URL (None: local file only) and the
    checkpoint entry holding its weights."""

    net_opt: dict
    url: str | None
    param_key: str


SR_MODELS = {
    'RealESRGAN_x4plus': SRModel({**_RRDB, 'scale': 4}, f'{_RELEASES}/v0.1.0/RealESRGAN_x4plus.pth', 'params_ema'),
    'RealESRGAN_x2plus': SRModel({**_RRDB, 'scale': 2}, f'{_RELEASES}/v0.2.1/RealESRGAN_x2plus.pth', 'params_ema'),
    'realesr-general-x4v3': SRModel(
        dict(type='SRVGGNetCompact', num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=32, upscale=4, act_type='prelu'),
        f'{_RELEASES}/v0.2.5.0/realesr-general-x4v3.pth', 'params'),
    'ESRGAN_SRx4_DF2KOST_official': SRModel(
        {**_RRDB, 'scale': 4}, f'{_RELEASES}/v0.1.1/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth', 'params'),
    'MSRResNet_x4': SRModel(dict(type='MSRResNet', num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4),
                            None, 'params'),
}
REALESRGAN_URLS = {2: SR_MODELS['RealESRGAN_x2plus'].url, 4: SR_MODELS['RealESRGAN_x4plus'].url}
DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def sr_model_for(name: str, upscale: float = 4) -> SRModel:
    """`SR_MODELS[name]`; `realesrgan` (upstream GFPGAN's flag value) is x2plus up to x2 and x4plus above."""
    if name == 'realesrgan':
        name = 'RealESRGAN_x2plus' if upscale <= 2 else 'RealESRGAN_x4plus'
    if name not in SR_MODELS:
        raise KeyError(f"Unknown SR model {name!r}; choose one of realesrgan, {', '.join(SR_MODELS)}.")
    return SR_MODELS[name]


def network_scale(net: torch.nn.Module) -> int:
    """The output scale of an SR network (`scale` of RRDBNet, `upscale` of the others)."""
    for attr in ('scale', 'upscale'):
        if isinstance(getattr(net, attr, None), int):
            return getattr(net, attr)
    raise ValueError(f'{type(net).__name__} has no integer `scale` or `upscale` attribute; an SR network needs one.')


class BackgroundUpsampler:
    """Upsample whole images with an SR network, `tile` input pixels at a time (0 = no tiling).

    `net_opt` with a `type` is the whole network config (any registered SR arch); without one it
    overrides the RRDBNet options of the released x2plus/x4plus files (num_feat 64, 23 blocks) at
    `scale`. `dtype` (`fp32`, `fp16`, `bf16`; `half=True` = fp16) applies on CUDA only; the CPU runs fp32.
    """

    def __init__(self, model_path: str | os.PathLike | None, scale: int = 2, tile: int = 400, tile_pad: int = 10,
                 pre_pad: int = 0, device: str | torch.device | None = None, half: bool = False,
                 net_opt: dict | None = None, dtype: str | None = None, param_key: str = 'params_ema') -> None:
        opt = dict(net_opt) if net_opt and 'type' in net_opt else {**_RRDB, 'scale': scale, **(net_opt or {})}
        self.net = build_network(opt, what='bg_upsampler')
        if model_path is not None:
            load_weights(self.net, model_path, param_key=param_key, strict=True)
        self.device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        dtype = dtype or ('fp16' if half else 'fp32')
        if dtype not in DTYPES:
            raise ValueError(f'dtype must be one of {", ".join(DTYPES)}, got {dtype!r}.')
        self.dtype = DTYPES[dtype] if self.device.type == 'cuda' else torch.float32
        self.net.eval().requires_grad_(False).to(self.device, self.dtype)
        self.scale, self.tile, self.tile_pad, self.pre_pad = network_scale(self.net), tile, tile_pad, pre_pad

    @classmethod
    def from_release(cls, name: str, model_path: str | os.PathLike | None = None, upscale: float = 4,
                     weights_dir: str | os.PathLike | None = None, **kwargs) -> BackgroundUpsampler:
        """The released network `name` (see `sr_model_for`), weights loaded strictly from `model_path`, else
        from the weights folder (downloaded there once when the network allows)."""
        model = sr_model_for(name, upscale)
        if model_path is None:
            if model.url is None:
                raise FileNotFoundError(f'{name} has no release download; pass its weights file as the model path.')
            from gfpgan.face.weights import load_file_from_url

            model_path = load_file_from_url(model.url, weights_dir)
        elif not os.path.isfile(model_path):
            raise FileNotFoundError(f'SR model file {model_path} does not exist.')
        return cls(model_path, net_opt=model.net_opt, param_key=model.param_key, **kwargs)

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
