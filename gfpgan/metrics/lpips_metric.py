"""LPIPS, the learned perceptual distance, with the numbers of the reference `lpips` package (0.1.4).

Images are turned into RGB in [-1, 1] as `(x / 255 - 0.5) / 0.5` (BasicSR's calculate_lpips script);
the network is `gfpgan.archs.lpips_arch.LPIPSNet`. It is built once per (net, version, trunk weights,
device) per process, so validation and folder evaluation do not rebuild it for every image.

Trunk weights: `backbone_weights` (a torchvision-format vgg16 / alexnet file), else torchvision's file in
torch's hub cache (`$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth`, `alexnet-owt-7be5be79.pth`),
downloaded there when online; offline and absent, the error names the file and the URL.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from gfpgan.metrics.psnr_ssim_metric import reorder_image
from gfpgan.utils.registry import METRIC_REGISTRY

_NETWORKS: dict[tuple, torch.nn.Module] = {}


def default_device() -> torch.device:
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def build_lpips(net: str = 'vgg', version: str = '0.1', backbone_weights: str | os.PathLike | None = None,
                device: str | torch.device | None = None) -> torch.nn.Module:
    """The cached LPIPSNet for these settings (see the module docstring for where the weights come from)."""
    from gfpgan.archs.lpips_arch import TORCHVISION_ARCH, LPIPSNet, check_lpips_choice
    from gfpgan.utils.torchvision_weights import torchvision_weights_path

    check_lpips_choice(net, version)
    device = torch.device(device) if device is not None else default_device()
    path = torchvision_weights_path(TORCHVISION_ARCH[net], backbone_weights)
    key = (net, version, os.path.abspath(path), str(device))
    if key not in _NETWORKS:
        _NETWORKS[key] = LPIPSNet(net, version, backbone_weights=path).to(device)
    return _NETWORKS[key]


def _bgr_to_lpips_input(img: np.ndarray, input_order: str, crop_border: int) -> torch.Tensor:
    """BGR [0, 255] image -> (1, 3, H, W) RGB in [-1, 1], float32 in the reference's order of steps."""
    arr = reorder_image(np.asarray(img), input_order)
    if arr.shape[2] != 3:
        raise ValueError(f'LPIPS needs 3-channel BGR images, got shape {arr.shape}.')
    if crop_border:
        arr = arr[crop_border:-crop_border, crop_border:-crop_border]
    arr = arr.astype(np.float32) / np.float32(255.0)
    rgb = torch.from_numpy(np.ascontiguousarray(arr[:, :, ::-1].transpose(2, 0, 1)))[None]
    return (rgb - 0.5) / 0.5


@METRIC_REGISTRY.register(better='lower')
def calculate_lpips(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, input_order: str = 'HWC',
                    net: str = 'vgg', version: str = '0.1', backbone_weights: str | os.PathLike | None = None,
                    device: str | None = None, **kwargs) -> float:
    """LPIPS between two BGR [0, 255] images of one size (uint8 as `cv2.imread` gives them, or float)."""
    if np.shape(img) != np.shape(img2):
        raise ValueError(f'Image shapes differ: {np.shape(img)} vs {np.shape(img2)}.')
    model = build_lpips(net, version, backbone_weights, device)
    dev = model.shift.device
    a = _bgr_to_lpips_input(img, input_order, crop_border).to(dev)
    b = _bgr_to_lpips_input(img2, input_order, crop_border).to(dev)
    with torch.no_grad():
        return float(model(a, b)[0])


@METRIC_REGISTRY.register(better='lower')
def calculate_lpips_pt(img: torch.Tensor, img2: torch.Tensor, crop_border: int = 0, net: str = 'vgg',
                       version: str = '0.1', backbone_weights: str | os.PathLike | None = None,
                       **kwargs) -> torch.Tensor:
    """Per-image LPIPS (N,) of two RGB [0, 1] batches (N, 3, H, W), on the batches' device."""
    if crop_border:
        img = img[:, :, crop_border:-crop_border, crop_border:-crop_border]
        img2 = img2[:, :, crop_border:-crop_border, crop_border:-crop_border]
    model = build_lpips(net, version, backbone_weights, img.device)
    with torch.no_grad():
        return model((img.float() - 0.5) / 0.5, (img2.float() - 0.5) / 0.5)
