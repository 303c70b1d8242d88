"""Where image bytes come from: plain files or lmdb databases, chosen by an `io_backend` option dict.

Backends are registered in IO_BACKEND_REGISTRY by their `type` name. `io_backend: {type: disk}` reads
paths; `io_backend: {type: lmdb}` reads keys from databases made by
`scripts/create_lmdb.py` (BasicSR layout: `data.mdb` + `meta_info.txt` with lines
`00000000.png (512,512,3) 1`, key = file name without extension). lmdb environments are opened lazily,
read-only and without locks, and shared by all readers of a database in a process.
"""

from __future__ import annotations

import os
from pathlib import Path

from gfpgan.utils.image_io import ImageReadError, is_image_file
from gfpgan.utils.registry import IO_BACKEND_REGISTRY


@IO_BACKEND_REGISTRY.register(name='disk')
class DiskBackend:
    def get(self, path: str, client_key: str = 'default') -> bytes:
        try:
            with open(path, 'rb') as f:
                return f.read()
        except OSError as err:  # an image error, so that skip_bad_images also skips a vanished file
            raise ImageReadError(f'{path}: cannot open ({err.strerror}).', path) from err


_LMDB_ENVS: dict[str, tuple[int, object]] = {}  # realpath -> (pid that opened it, environment)


def open_lmdb_readonly(path: str, **kwargs):
    """One shared read-only environment per database and process.

    py-lmdb refuses to open a database twice in one process, including in a forked dataloader worker
    whose parent had it open; a worker then reuses the inherited handle, which is safe for a read-only
    environment without a lock table (`lock=False`), the way BasicSR's workers always read.
    """
    import lmdb

    key = os.path.realpath(path)
    cached = _LMDB_ENVS.get(key)
    if cached is not None and cached[0] == os.getpid():
        return cached[1]
    try:
        env = lmdb.open(path, **kwargs)
    except lmdb.Error:
        if cached is None or kwargs.get('lock', True):
            raise
        env = cached[1]
    _LMDB_ENVS[key] = (os.getpid(), env)
    return env


def close_lmdb(path: str | os.PathLike) -> None:
    """Close this process's shared environment for `path` (before writing to the database)."""
    cached = _LMDB_ENVS.pop(os.path.realpath(path), None)
    if cached is not None and cached[0] == os.getpid():
        cached[1].close()


@IO_BACKEND_REGISTRY.register(name='lmdb')
class LmdbBackend:
    """Reads values by key from one or more lmdb databases (`client_keys` name them), opened on first use."""

    def __init__(self, db_paths: str | list[str], client_keys: str | list[str] = 'default', **open_kwargs) -> None:
        self.db_paths = [str(p) for p in ([db_paths] if isinstance(db_paths, (str, os.PathLike)) else db_paths)]
        self.client_keys = [client_keys] if isinstance(client_keys, str) else list(client_keys)
        if len(self.db_paths) != len(self.client_keys):
            raise ValueError(f'lmdb io_backend: {len(self.db_paths)} db_paths but {len(self.client_keys)} client_keys.')
        for p in self.db_paths:
            if not os.path.isfile(os.path.join(p, 'data.mdb')):
                raise FileNotFoundError(
                    f'{p} is not an lmdb database (no data.mdb); make one with scripts/create_lmdb.py.'
                )
        self.open_kwargs = dict(readonly=True, lock=False, readahead=False, max_readers=2048)
        self.open_kwargs.update(open_kwargs)

    def get(self, key: str, client_key: str = 'default') -> bytes:
        try:
            db = self.db_paths[self.client_keys.index(client_key)]
        except ValueError:
            raise KeyError(f"lmdb io_backend has no client_key '{client_key}'; it has {self.client_keys}.") from None
        with open_lmdb_readonly(db, **self.open_kwargs).begin(write=False) as txn:
            value = txn.get(key.encode())
            if value is None:
                raise KeyError(f"Key '{key}' is not in the lmdb database {db}; its meta_info.txt and data.mdb "
                               'disagree (re-run scripts/create_lmdb.py on the source folder).')
            return bytes(value)


def build_file_client(io_backend: dict | None, db_paths=None, client_keys='default'):
    """The registered backend `io_backend['type']` (default `disk`) with the block's other keys.

    A backend that reads databases (its constructor takes `db_paths`) gets the dataset's `db_paths` and
    `client_keys`; what the block itself says about those is the dataset's business, not the backend's.
    """
    import inspect

    opt = dict(io_backend or {'type': 'disk'})
    kind = opt.pop('type', 'disk')
    if kind not in IO_BACKEND_REGISTRY:
        choices = ', '.join(IO_BACKEND_REGISTRY.keys())
        raise ValueError(f'io_backend type {kind!r} is not registered; choices: {choices}.')
    cls = IO_BACKEND_REGISTRY.get(kind)
    if 'db_paths' in inspect.signature(cls).parameters:
        opt.pop('db_paths', None)
        opt.pop('client_keys', None)
        return cls(db_paths, client_keys, **opt)
    try:
        return cls(**opt)
    except TypeError as err:
        raise TypeError(f'io_backend (type {kind}): {err}.') from err


def paths_from_folder(folder: str | os.PathLike, recursive: bool = False) -> list[str]:
    """Sorted image paths in `folder` (sorted, so an index means the same file on every machine)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'Image folder {folder} does not exist.')
    it = folder.rglob('*') if recursive else folder.iterdir()
    paths = sorted(str(p) for p in it if p.is_file() and is_image_file(p.name))
    if not paths:
        raise FileNotFoundError(f'No image files (png, jpg, ...) in {folder}{" or below" if recursive else ""}.')
    return paths


def read_meta_info(db_path: str | os.PathLike) -> list[str]:
    """Keys of an lmdb database, in the order of its `meta_info.txt`."""
    meta = Path(db_path) / 'meta_info.txt'
    if not meta.is_file():
        raise FileNotFoundError(f'{meta} is missing; lmdb databases made by scripts/create_lmdb.py have one.')
    keys = []
    for n, line in enumerate(meta.read_text().splitlines(), 1):
        if not line.strip():
            continue
        name = line.split(' (')[0].strip()
        if not name:
            raise ValueError(f'{meta}:{n}: cannot parse {line!r}; expected lines like "00000000.png (512,512,3) 1".')
        keys.append(os.path.splitext(name)[0])
    return keys


def meta_info_names(meta_info_file: str | os.PathLike) -> list[str]:
    """Image names listed in a meta-info file: the first space-separated field of each non-empty line.

    Serves BasicSR's lists (`0001_s001.png (480,480,3)`) and Real-ESRGAN's (`DF2K_HR_sub/000001_s001.png`):
    names are relative to the dataset's folder and keep their extension.
    """
    path = Path(meta_info_file)
    if not path.is_file():
        raise FileNotFoundError(f'meta_info_file {path} does not exist; point the option at the list of images '
                                '(one name per line) or remove it to read the whole folder.')
    names = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f'meta_info_file {path} lists no images.')
    return names


def is_lmdb(io_backend: dict | None) -> bool:
    return (io_backend or {}).get('type', 'disk') == 'lmdb'


def read_or_skip(read, index: int, length: int, skip_bad_images: bool, what: str, max_skips: int = 20):
    """`read(index)`, or with `skip_bad_images` the next readable index after a warning per bad file.

    Raises the first `ImageReadError` when skipping is off, and after `max_skips` bad files in a row
    (then the data is broken, not a few files).
    """
    import warnings

    for attempt in range(max_skips + 1):
        try:
            return read((index + attempt) % length)
        except ImageReadError as err:
            if not skip_bad_images:
                raise ImageReadError(f'{what}: {err} Set skip_bad_images: true to skip such files with a warning.',
                                     err.path) from err
            if attempt == max_skips:
                msg = f'{what}: {max_skips + 1} unreadable images in a row, last: {err}'
                raise ImageReadError(msg, err.path) from err
            warnings.warn(f'{what}: skipping unreadable image: {err}', stacklevel=2)
    raise AssertionError('unreachable')
