"""Fetch a file into a cache folder without ever leaving a truncated file behind.

One implementation serves every weight file the project downloads: release checkpoints (face tools,
inference) and the torchvision-format backbones (VGG, AlexNet) that losses and metrics load.
"""
from __future__ import annotations

import os
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from gfpgan.utils.checkpoint_io import atomic_write

OFFLINE_ENV_VAR = 'GFPGAN_OFFLINE'  # set to 1 to never download (tests, air-gapped machines)


def file_name_from_url(url: str) -> str:
    name = os.path.basename(urlparse(url).path)
    if not name:
        raise ValueError(f'Cannot tell a file name from the URL {url!r}.')
    return name


def downloads_allowed() -> bool:
    return os.environ.get(OFFLINE_ENV_VAR, '0') in ('', '0', 'false', 'False')


def download_to(url: str, target: str | os.PathLike, how: str, progress: bool = True,
                allow_download: bool | None = None) -> str:
    """Return `target`, downloading `url` there first (atomically) if the file is absent.

    `how` tells the user what to do by hand; it ends every error. Offline (`$GFPGAN_OFFLINE=1` or
    `allow_download=False`) a missing file is an error that names the file, the URL and `how`.
    """
    target = Path(target)
    if target.is_file():
        return str(target)
    if allow_download is None:
        allow_download = downloads_allowed()
    if not allow_download:
        raise FileNotFoundError(f'Weight file {target} is missing (downloads are off: ${OFFLINE_ENV_VAR}). {how}')

    def fetch(tmp: str) -> None:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, 'wb') as f:
            total = int(response.headers.get('Content-Length') or 0) or None
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=total, unit='B', unit_scale=True, desc=f'Downloading {target.name}')
            while chunk := response.read(1 << 20):
                f.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(target, fetch)
    except OSError as err:  # URLError is an OSError: no network, DNS failure, HTTP error
        raise FileNotFoundError(f'Weight file {target} is missing and downloading it failed ({err}). {how}') from err
    return str(target)
