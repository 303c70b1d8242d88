"""torchvision's ImageNet weights (VGG, AlexNet) without importing torchvision.

Upstream code builds `torchvision.models.vgg19(pretrained=True)`, which reads
`torch.hub.get_dir()/checkpoints/<file>` and downloads the file there once. Users already have those
files in that cache, so this module looks in the same place, under the same names, and downloads the
same URL when online. The networks themselves are rebuilt in `gfpgan.archs` with torchvision's
`features.N.*` key layout, so these files load into them unchanged.
"""
from __future__ import annotations

import os
from pathlib import Path

from gfpgan.utils.download import download_to

TORCHVISION_URLS = {
    'vgg11': 'https://download.pytorch.org/models/vgg11-8a719046.pth',
    'vgg13': 'https://download.pytorch.org/models/vgg13-19584684.pth',
    'vgg16': 'https://download.pytorch.org/models/vgg16-397923af.pth',
    'vgg19': 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth',
    'vgg11_bn': 'https://download.pytorch.org/models/vgg11_bn-6002323d.pth',
    'vgg13_bn': 'https://download.pytorch.org/models/vgg13_bn-abd245e5.pth',
    'vgg16_bn': 'https://download.pytorch.org/models/vgg16_bn-6c64b313.pth',
    'vgg19_bn': 'https://download.pytorch.org/models/vgg19_bn-c79401a0.pth',
    'alexnet': 'https://download.pytorch.org/models/alexnet-owt-7be5be79.pth',
}


def torchvision_cache_dir() -> Path:
    """Where torchvision keeps downloaded weights: `torch.hub.get_dir()/checkpoints` ($TORCH_HOME aware)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / 'checkpoints'


def torchvision_weights_path(arch: str, weights_path: str | os.PathLike | None = None,
                             allow_download: bool | None = None, progress: bool = True) -> str:
    """The local file of torchvision's ImageNet weights for `arch` ('vgg19', 'vgg16', 'alexnet', ...).

    Order: `weights_path` if given (it must exist), else the torch hub cache under torchvision's file
    name, else a download of torchvision's URL into that cache. Offline, the error names the file,
    the URL and the folder.
    """
    if weights_path is not None:
        if not os.path.isfile(weights_path):
            raise FileNotFoundError(f'{arch} weights file not found: {weights_path}. Point the option at a '
                                    f'torchvision-format {arch} checkpoint, or remove it to use torch\'s hub cache.')
        return str(weights_path)
    if arch not in TORCHVISION_URLS:
        raise ValueError(f'No torchvision weights are known for {arch!r}; known: {", ".join(TORCHVISION_URLS)}.')
    url = TORCHVISION_URLS[arch]
    target = torchvision_cache_dir() / os.path.basename(url)
    how = (f'Download {url} and save it as {target} (torchvision keeps it there too), '
           f'or give the file\'s path explicitly.')
    return download_to(url, target, how, progress=progress, allow_download=allow_download)
