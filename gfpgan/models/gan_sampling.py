"""Sampling from unconditional generators: grids, latent interpolation, GIFs, and progress montages.

Shared by `GANModel` (sample grids during training) and `scripts/generate.py` (after training).
Images are generator outputs in [-1, 1]; everything written goes through the atomic writers.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from gfpgan.archs import build_network
from gfpgan.utils.checkpoint_io import atomic_write, load_checkpoint, load_weights

CHECKPOINT_RE = re.compile(r'^net_g_(\d+)\.pth$')


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """(N, 1 | 3 | 4, H, W) images in [0, 1] -> RGB: grey repeated, RGBA composited onto white (as the
    image-folder dataset reads transparent files); what grids, FID and the Inception Score take."""
    channels = images.shape[1]
    if channels == 1:
        return images.expand(-1, 3, -1, -1)
    if channels == 4:
        alpha = images[:, 3:]
        return images[:, :3] * alpha + (1 - alpha)
    if channels != 3:
        raise ValueError(f'images must have 1, 3 or 4 channels, got {channels}.')
    return images


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """(N, C, H, W) images in [-1, 1] -> one BGR uint8 HxWx3 mosaic with `nrow` images per row (grey and
    RGBA through `to_rgb`)."""
    if images.dim() != 4:
        raise ValueError(f'make_grid expects (N, C, H, W) images, got shape {tuple(images.shape)}.')
    imgs = to_rgb((images.detach().float().cpu().clamp(-1, 1) + 1) / 2)
    n, c, h, w = imgs.shape
    nrow = max(1, min(nrow, n))
    ncol = (n + nrow - 1) // nrow
    grid = torch.full((c, ncol * (h + padding) + padding, nrow * (w + padding) + padding), pad_value)
    for i in range(n):
        y, x = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        grid[:, y:y + h, x:x + w] = imgs[i]
    rgb = grid.permute(1, 2, 0).numpy()
    return np.ascontiguousarray((rgb[:, :, ::-1] * 255.0).round().astype(np.uint8))


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between latent batches (rows), the right path for Gaussian latents."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, steps: int, mode: str = 'slerp') -> torch.Tensor:
    """`steps` latents from z0 to z1 (both ends included), each of z0's shape; returns (steps, *z0.shape)."""
    if steps < 2:
        raise ValueError(f'interpolation needs at least 2 steps, got {steps}.')
    if mode not in ('slerp', 'lerp'):
        raise ValueError(f"interpolation mode must be 'slerp' or 'lerp', got {mode!r}.")
    ts = torch.linspace(0, 1, steps).tolist()
    fn = slerp if mode == 'slerp' else (lambda a, b, t: torch.lerp(a, b, t))
    return torch.stack([fn(z0, z1, t) for t in ts])


@torch.no_grad()
def generate(net_g: nn.Module, z: torch.Tensor, batch_size: int = 64, labels: torch.Tensor | None = None
             ) -> torch.Tensor:
    """Run the generator on `z` (and class `labels`, for a conditional one) in eval mode, in batches;
    returns CPU images in [-1, 1]."""
    was_training = net_g.training
    net_g.eval()
    device = next(net_g.parameters()).device
    ys = labels.split(batch_size) if labels is not None else [None] * len(z.split(batch_size))
    try:
        out = [(net_g(chunk.to(device)) if y is None else net_g(chunk.to(device), y.to(device))).float().cpu()
               for chunk, y in zip(z.split(batch_size), ys)]
    finally:
        net_g.train(was_training)
    return torch.cat(out)


def num_classes_of(net_g: nn.Module) -> int:
    """Classes of a conditional generator (`takes_labels`), 0 for an unconditional one."""
    return int(net_g.num_classes) if getattr(net_g, 'takes_labels', False) else 0


def sample_inputs(n: int, latent_dim: int, num_classes: int = 0, info_dims: tuple[Sequence[int], int] | None = None,
                  generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor] | None]:
    """Generator inputs for `n` samples: (latents, labels or None, InfoGAN (categories, continuous) or None).

    With `generator` (a seeded draw: grids, FID) labels cycle through the classes, `arange(n) % num_classes`,
    so every class is shown equally; without it (training) they are uniform draws. InfoGAN codes
    (`info_dims` = (cat_dims, cont_dim)) fill the last columns of the latents.
    """
    from gfpgan.losses.mutual_info_loss import sample_latent_codes

    code_dim = sum(info_dims[0]) + info_dims[1] if info_dims else 0
    if code_dim >= latent_dim:
        raise ValueError(f'network_g.latent_dim ({latent_dim}) must exceed the InfoGAN code size ({code_dim}): it '
                         'is the noise size plus sum(cat_dims) + cont_dim.')
    z = torch.randn(n, latent_dim - code_dim, generator=generator)
    codes = None
    if code_dim:
        g_in, cat, cont = sample_latent_codes(n, info_dims[0], info_dims[1], generator=generator)
        z, codes = torch.cat([z, g_in], 1), (cat, cont)
    labels = None
    if num_classes:
        labels = torch.arange(n) % num_classes if generator is not None else torch.randint(num_classes, (n,))
    return z, labels, codes


def latent_dim_of(net_g: nn.Module, network_opt: dict | None = None) -> int:
    """The generator's latent size (its `latent_dim` attribute, else the option), or a clear error."""
    dim = getattr(net_g, 'latent_dim', None) or (network_opt or {}).get('latent_dim')
    if not dim:
        raise ValueError(f'{type(net_g).__name__} has no `latent_dim` attribute and network_g sets none; '
                         'GANModel samples latents of shape (N, latent_dim), so set latent_dim in network_g.')
    return int(dim)


def load_generator(network_opt: dict, checkpoint: str | os.PathLike, use_ema: bool = True,
                   device: str | torch.device = 'cpu') -> nn.Module:
    """Build `network_g` and load `params_ema` (or `params`) from a checkpoint of GANModel."""
    net = build_network(network_opt, 'network_g')
    ckpt = load_checkpoint(checkpoint)
    key = 'params_ema' if use_ema else 'params'
    if use_ema and key not in ckpt:
        raise KeyError(f"{checkpoint} has no 'params_ema' (EMA was off in training); keys: {sorted(ckpt)}. "
                       'Use the raw generator instead (--raw).')
    load_weights(net, ckpt, param_key=key, strict=True)
    return net.to(device).eval()


def list_generator_checkpoints(models_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """`(iter, path)` of every `net_g_<iter>.pth` in a models folder, oldest first."""
    folder = Path(models_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f'Models folder not found: {folder}')
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_RE.match(p.name))]
    if not found:
        raise FileNotFoundError(f'No net_g_<iter>.pth checkpoints in {folder}.')
    return sorted(found)


def progress_montage(network_opt: dict, checkpoints: Sequence[tuple[int, str | os.PathLike]], z: torch.Tensor,
                     use_ema: bool = True, device: str | torch.device = 'cpu', labels: torch.Tensor | None = None
                     ) -> np.ndarray:
    """One row per checkpoint (the same latents `z`, and `labels` for a conditional G, through each),
    labelled with its iteration."""
    return np.concatenate(progress_rows(network_opt, checkpoints, z, use_ema, device, labels), axis=0)


def progress_rows(network_opt: dict, checkpoints: Sequence[tuple[int, str | os.PathLike]], z: torch.Tensor,
                  use_ema: bool = True, device: str | torch.device = 'cpu', labels: torch.Tensor | None = None
                  ) -> list[np.ndarray]:
    """`progress_montage`'s rows, one BGR image per checkpoint (the frames of a progress GIF)."""
    rows = []
    for it, path in checkpoints:
        net = load_generator(network_opt, path, use_ema=use_ema, device=device)
        row = make_grid(generate(net, z, labels=labels), nrow=z.shape[0])
        label = np.full((row.shape[0], 72, 3), 255, np.uint8)
        cv2.putText(label, str(it), (4, row.shape[0] // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
        rows.append(np.concatenate([label, row], axis=1))
    return rows


def save_gif(frames: Sequence[np.ndarray], path: str | os.PathLike, duration_ms: int = 80, loop: int = 0) -> None:
    """Write BGR uint8 frames as an animated GIF (needs Pillow), atomically."""
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError('Writing a GIF needs Pillow (pip install pillow); use --strip for a PNG strip.') from err
    if not frames:
        raise ValueError('save_gif: no frames given.')
    images = [Image.fromarray(np.ascontiguousarray(f[:, :, ::-1])) for f in frames]

    def write(tmp: str) -> None:
        images[0].save(tmp, format='GIF', save_all=True, append_images=images[1:], duration=duration_ms, loop=loop)

    atomic_write(path, write)


def grid_nrow(num: int, nrow: int = 0, num_classes: int = 0) -> int:
    """Images per grid row: `nrow`, or square-ish; for labels cycling through `num_classes`, a whole number
    of cycles per row, so that each column shows one class."""
    nrow = nrow or max(1, int(num ** 0.5))
    if num_classes and nrow > num_classes and nrow % num_classes:
        nrow = num_classes * round(nrow / num_classes)
    return nrow


def seeded_inputs(net_g: nn.Module, num: int, seed: int, network_opt: dict | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`num` latents (and class labels cycling through a conditional G's classes) from `seed`."""
    z, labels, _ = sample_inputs(num, latent_dim_of(net_g, network_opt), num_classes_of(net_g),
                                 generator=torch.Generator().manual_seed(seed))
    return z, labels


def save_samples(net_g: nn.Module, folder: str | os.PathLike, num: int = 16, seed: int = 0, nrow: int = 0,
                 separate: bool = False) -> Path:
    """`folder/samples.png`: a grid of `num` samples (a conditional G's columns cycle through its classes
    when `nrow` is a multiple of them), and with `separate` each as `sample_<i>.png`."""
    from gfpgan.utils.image_io import imwrite

    z, labels = seeded_inputs(net_g, num, seed)
    images = generate(net_g, z, labels=labels)
    nrow = grid_nrow(num, nrow, num_classes_of(net_g))
    path = Path(folder) / 'samples.png'
    imwrite(make_grid(images, nrow=nrow), str(path))
    if separate:
        for i, img in enumerate(images):
            imwrite(make_grid(img[None], nrow=1, padding=0), str(Path(folder) / f'sample_{i:05d}.png'))
    return path


def save_interpolation(net_g: nn.Module, folder: str | os.PathLike, steps: int = 12, seed: int = 0,
                       mode: str = 'slerp', gif: bool = False) -> Path:
    """`folder/interpolation.png` (a strip between two seeded latents, of one class for a conditional G)
    and with `gif` `interpolation.gif` (there and back)."""
    from gfpgan.utils.image_io import imwrite

    z, labels = seeded_inputs(net_g, 2, seed)
    zs = interpolate_latents(z[:1], z[1:], steps, mode)[:, 0]
    images = generate(net_g, zs, labels=None if labels is None else labels[:1].expand(steps))
    path = Path(folder) / 'interpolation.png'
    imwrite(make_grid(images, nrow=steps), str(path))
    if gif:
        frames = [make_grid(img[None], nrow=1, padding=0) for img in images]
        save_gif(frames + frames[::-1][1:-1], Path(folder) / 'interpolation.gif')
    return path
