"""Where weight files are found, and where a missing one is downloaded.

Lookup order, first hit wins (logged with its place): the folder given (`--weights_dir`, `weights_folder=`),
`$GFPGAN_WEIGHTS_DIR`, upstream's `experiments/pretrained_models/` and `gfpgan/weights/` under the working
directory and then under the folder holding the `gfpgan` package (a checkout's root, or site-packages, where
pip-installed upstream downloaded to), and the user cache. Upstream users keep their files in those two
folders; they are only read here, never written.

A file found nowhere is downloaded (atomically) into the weights folder, which is absolute (the folder
given, else `$GFPGAN_WEIGHTS_DIR`, else the user cache): where a download lands never depends on the working
directory, as upstream's relative `gfpgan/weights` did. Offline, the error names the URL, that path and
every folder searched.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from gfpgan.utils.download import download_to, file_name_from_url

ENV_VAR = 'GFPGAN_WEIGHTS_DIR'
UPSTREAM_FOLDERS = ('experiments/pretrained_models', 'gfpgan/weights')
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the folder holding the gfpgan package


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/gfpgan`, by default `~/.cache/gfpgan`."""
    cache = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return (Path(cache) / 'gfpgan').resolve()


def weights_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The folder downloads go to: `explicit`, else `$GFPGAN_WEIGHTS_DIR`, else the user cache.

    A relative `explicit`/env value is resolved once, here, so later `chdir`s cannot change the answer.
    """
    if explicit:
        return Path(explicit).expanduser().resolve()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser().resolve()
    return cache_dir()


def search_folders(explicit: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """`(folder, how it was chosen)` in lookup order, each folder once (see the module docstring)."""
    found: list[tuple[Path, str]] = []
    if explicit:
        found.append((Path(explicit).expanduser().resolve(), 'the weights folder given'))
    if os.environ.get(ENV_VAR):
        found.append((Path(os.environ[ENV_VAR]).expanduser().resolve(), f'${ENV_VAR}'))
    for root, where in ((Path.cwd(), 'the working directory'), (PACKAGE_PARENT, 'the gfpgan installation')):
        found += [((root / sub).resolve(), f"upstream's {sub}/ under {where}") for sub in UPSTREAM_FOLDERS]
    found.append((cache_dir(), 'the user cache'))
    unique: list[tuple[Path, str]] = []
    for folder, how in found:
        if all(folder != f for f, _ in unique):
            unique.append((folder, how))
    return unique


def find_weights(file_name: str, explicit: str | os.PathLike | None = None) -> tuple[str, str] | None:
    """`(path, where)` of the first `file_name` in `search_folders(explicit)`, or None."""
    for folder, how in search_folders(explicit):
        if (folder / file_name).is_file():
            return str(folder / file_name), how
    return None


def locate_weights(url: str, folder: str | os.PathLike | None = None, file_name: str | None = None,
                   progress: bool = True, allow_download: bool | None = None) -> tuple[str, str]:
    """`(local path, where it came from)` of `url`'s file: the first hit in the search folders, else a
    download into the weights folder.

    Without network (or with `allow_download=False`, the default when `$GFPGAN_OFFLINE` is 1) the
    error names the URL, the exact path to place the file at and the folders searched.
    """
    name = file_name or file_name_from_url(url)
    hit = find_weights(name, folder)
    if hit is not None:
        logging.getLogger('gfpgan').info('%s: using %s (found in %s)', name, hit[0], hit[1])
        return hit
    target = weights_dir(folder) / name
    searched = ', '.join(str(f) for f, _ in search_folders(folder))
    how = (f'Download {url} by hand and save it as {target} (or point --weights_dir / ${ENV_VAR} '
           f'at a folder that holds it). Searched: {searched}.')
    return download_to(url, target, how, progress=progress, allow_download=allow_download), 'downloaded'


def load_file_from_url(url: str, folder: str | os.PathLike | None = None, file_name: str | None = None,
                       progress: bool = True, allow_download: bool | None = None) -> str:
    """The local path of `url`'s file (`locate_weights` without the where)."""
    return locate_weights(url, folder, file_name, progress, allow_download)[0]
