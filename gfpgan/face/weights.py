"""Where weight files live: an absolute folder (argument, `GFPGAN_WEIGHTS_DIR`, or the user cache).

Upstream resolved `gfpgan/weights` relative to the working directory, so the same command found its
weights or not depending on where it was typed. Here the folder never depends on the working
directory, and a missing file either downloads (atomically, into that folder) or fails with a message
that names the URL and the folder to put the file in.
"""
from __future__ import annotations

import os
from pathlib import Path

from gfpgan.utils.download import download_to, file_name_from_url

ENV_VAR = 'GFPGAN_WEIGHTS_DIR'


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


def load_file_from_url(url: str, folder: str | os.PathLike | None = None, file_name: str | None = None,
                       progress: bool = True, allow_download: bool | None = None) -> str:
    """Return the local path of `url`'s file in the weights folder, downloading it first if absent.

    Without network (or with `allow_download=False`, the default when `$GFPGAN_OFFLINE` is 1) the
    error names the URL and the exact path to place the file at.
    """
    folder = weights_dir(folder)
    target = folder / (file_name or file_name_from_url(url))
    how = (f'Download {url} by hand and save it as {target} (or point --weights_dir / ${ENV_VAR} '
           'at a folder that holds it).')
    return download_to(url, target, how, progress=progress, allow_download=allow_download)
