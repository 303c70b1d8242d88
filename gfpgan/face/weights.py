"""Where weight files live: an absolute folder (argument, `GFPGAN_WEIGHTS_DIR`, or the user cache).

Upstream resolved `gfpgan/weights` relative to the working directory, so the same command found its
weights or not depending on where it was typed. Here the folder never depends on the working
directory, and a missing file either downloads (atomically, into that folder) or fails with a message
that names the URL and the folder to put the file in.
"""
from __future__ import annotations

import os
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from gfpgan.utils.checkpoint_io import atomic_write

ENV_VAR = 'GFPGAN_WEIGHTS_DIR'
OFFLINE_ENV_VAR = 'GFPGAN_OFFLINE'  # set to 1 to never download (tests, air-gapped machines)


def weights_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The weights folder: `explicit`, else `$GFPGAN_WEIGHTS_DIR`, else `$XDG_CACHE_HOME/gfpgan` (`~/.cache/gfpgan`).

    A relative `explicit`/env value is resolved once, here, so later `chdir`s cannot change the answer.
    """
    if explicit:
        folder = Path(explicit).expanduser()
    elif os.environ.get(ENV_VAR):
        folder = Path(os.environ[ENV_VAR]).expanduser()
    else:
        cache = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
        folder = Path(cache) / 'gfpgan'
    return folder.resolve()


def file_name_from_url(url: str) -> str:
    name = os.path.basename(urlparse(url).path)
    if not name:
        raise ValueError(f'Cannot tell a file name from the URL {url!r}.')
    return name


def load_file_from_url(url: str, folder: str | os.PathLike | None = None, file_name: str | None = None,
                       progress: bool = True, allow_download: bool | None = None) -> str:
    """Return the local path of `url`'s file in the weights folder, downloading it first if absent.

    The download goes to a temporary file next to the target and is renamed on success, so an
    interrupted download never leaves a truncated weight file behind. Without network (or with
    `allow_download=False`, the default when `$GFPGAN_OFFLINE` is 1) the error names the URL and the
    exact path to place the file at.
    """
    folder = weights_dir(folder)
    target = folder / (file_name or file_name_from_url(url))
    if target.is_file():
        return str(target)
    how = (f'Download {url} by hand and save it as {target} (or point --weights_dir / ${ENV_VAR} '
           'at a folder that holds it).')
    if allow_download is None:
        allow_download = os.environ.get(OFFLINE_ENV_VAR, '0') in ('', '0', 'false', 'False')
    if not allow_download:
        raise FileNotFoundError(f'Weight file {target} is missing. {how}')

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

    try:
        atomic_write(target, fetch)
    except OSError as err:  # URLError is an OSError: no network, DNS failure, HTTP error
        raise FileNotFoundError(f'Weight file {target} is missing and downloading it failed ({err}). {how}') from err
    return str(target)

