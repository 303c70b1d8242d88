"""Run an upsampling network tile by tile, so large backgrounds fit in memory.

Each tile is cut with `tile_pad` pixels of real context on every inner side and only its centre is
kept, so when `tile_pad` covers the network's receptive field the result equals one whole-image pass
(at image borders a tile sees the same zero padding as the whole image).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from gfpgan.archs.rrdbnet_arch import UNSHUFFLE


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _pad_bottom_right(img: torch.Tensor, bottom: int, right: int) -> torch.Tensor:
    h, w = img.shape[-2:]
    mode = 'reflect' if bottom < h and right < w else 'replicate'
    return F.pad(img, (0, right, 0, bottom), mode=mode)


@torch.no_grad()
def tile_upsample(net: Callable[[torch.Tensor], torch.Tensor], img: torch.Tensor, scale: int, tile: int = 400,
                  tile_pad: int = 10, pre_pad: int = 10) -> torch.Tensor:
    """Upsample `img` `(N, C, H, W)` by `scale` with `net`, `tile` x `tile` input pixels at a time.

    Args:
        net: the upsampler, e.g. an `RRDBNet` of the same `scale`.
        scale: the network's output scale. x2 / x1 RRDBNets pixel-unshuffle their input, so the image,
            `tile` and `tile_pad` are rounded up to multiples of 2 / 4 to keep every tile on that grid.
        tile: tile side in input pixels; 0 runs the whole image at once.
        tile_pad: context pixels around each tile, cropped away after the network.
        pre_pad: reflection padding on the bottom/right edges before the network (less border
            artefacts), cropped from the result.
    Returns:
        `(N, C_out, H * scale, W * scale)`.
    """
    if img.dim() != 4:
        raise ValueError(f'tile_upsample expects an (N, C, H, W) tensor, got shape {tuple(img.shape)}.')
    if tile < 0 or tile_pad < 0 or pre_pad < 0:
        raise ValueError(f'tile_upsample: tile, tile_pad and pre_pad must be >= 0, got {tile}, {tile_pad}, {pre_pad}.')
    grid = UNSHUFFLE.get(scale, 1)
    h, w = img.shape[-2:]
    padded = _pad_bottom_right(img, _round_up(h + pre_pad, grid) - h, _round_up(w + pre_pad, grid) - w)
    ph, pw = padded.shape[-2:]
    if tile == 0 or tile >= max(ph, pw):
        return net(padded)[..., : h * scale, : w * scale]

    tile, tile_pad = _round_up(tile, grid), _round_up(tile_pad, grid)
    out = None
    for y0 in range(0, ph, tile):
        for x0 in range(0, pw, tile):
            y1, x1 = min(y0 + tile, ph), min(x0 + tile, pw)
            iy0, ix0 = max(y0 - tile_pad, 0), max(x0 - tile_pad, 0)
            iy1, ix1 = min(y1 + tile_pad, ph), min(x1 + tile_pad, pw)
            part = net(padded[..., iy0:iy1, ix0:ix1])
            if out is None:
                out = part.new_empty(*part.shape[:2], ph * scale, pw * scale)
            oy, ox = (y0 - iy0) * scale, (x0 - ix0) * scale
            th, tw = (y1 - y0) * scale, (x1 - x0) * scale
            out[..., y0 * scale : y1 * scale, x0 * scale : x1 * scale] = part[..., oy : oy + th, ox : ox + tw]
    return out[..., : h * scale, : w * scale]
