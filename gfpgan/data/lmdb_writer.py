"""Pack an image folder into an lmdb database (BasicSR layout) that the lmdb file client reads.

Layout: `<name>.lmdb/data.mdb` with key = path relative to the folder without extension, value = the
image file's bytes (default: the original file, so nothing is re-encoded) or a PNG re-encoded at
`compress_level`; `meta_info.txt` lines `<relative name> (h,w,c) <level>` (level -1 = original bytes).
Resumable: keys already in the database are skipped and commits happen every `commit_every` images,
so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from gfpgan.data.file_client import close_lmdb
from gfpgan.utils.checkpoint_io import atomic_write
from gfpgan.utils.image_io import IMG_EXTENSIONS, imfrombytes

RAW = -1


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[str]:
    """Sorted image paths relative to `folder` (posix separators)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'Image folder {folder} does not exist.')
    it = folder.rglob('*') if recursive else folder.iterdir()
    names = sorted(p.relative_to(folder).as_posix() for p in it if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
    if not names:
        raise FileNotFoundError(f'No image files ({", ".join(IMG_EXTENSIONS)}) in {folder}.')
    return names


def _key(name: str) -> str:
    return os.path.splitext(name)[0]


def _encode(path: Path, compress_level: int) -> tuple[bytes, tuple[int, ...]]:
    """The value to store and the image shape (h, w, c); decoding validates the file either way."""
    content = path.read_bytes()
    if compress_level == RAW:
        return content, _shape(content, str(path))
    img = imfrombytes(content, source=str(path), channels=3)
    ok, enc = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
    if not ok:
        raise RuntimeError(f'Could not PNG-encode {path}.')
    return enc.tobytes(), img.shape


def _shape(content: bytes, source: str) -> tuple[int, int, int]:
    """(h, w, channels) of the image as stored (a gray file has 1 channel)."""
    imfrombytes(content, source=source)  # validates: raises naming `source` when unreadable
    decoded = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED)
    return decoded.shape[0], decoded.shape[1], 1 if decoded.ndim == 2 else decoded.shape[2]


def _guess_ext(content: bytes) -> str:
    if content.startswith(b'\x89PNG'):
        return '.png'
    return '.jpg' if content.startswith(b'\xff\xd8') else '.img'


def _read_meta(meta: Path) -> dict[str, str]:
    """key -> meta line of an existing meta_info.txt (empty when absent)."""
    if not meta.is_file():
        return {}
    return {_key(line.split(' (')[0]): line for line in meta.read_text().splitlines() if line.strip()}


def make_lmdb_from_folder(
    folder: str | os.PathLike,
    lmdb_path: str | os.PathLike,
    compress_level: int = RAW,
    overwrite: bool = False,
    recursive: bool = True,
    commit_every: int = 200,
    map_size: int | None = None,
    progress: bool = True,
    names: Iterable[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, int]:
    """Write (or resume writing) `lmdb_path` from the images in `folder`; returns counts written/skipped.

    An existing database is resumed (present keys are skipped, never rewritten); `overwrite=True`
    deletes it first. `compress_level` -1 stores the original file bytes, 0..9 re-encodes as PNG.
    """
    import lmdb

    folder, lmdb_path = Path(folder), Path(lmdb_path)
    if not str(lmdb_path).endswith('.lmdb'):
        raise ValueError(f'The lmdb path must end with .lmdb (the datasets check it), got {lmdb_path}.')
    if compress_level != RAW and not 0 <= compress_level <= 9:
        raise ValueError(f'compress_level must be -1 (store file bytes) or 0..9, got {compress_level}.')
    if lmdb_path.exists():
        if overwrite:
            close_lmdb(lmdb_path)
            shutil.rmtree(lmdb_path)
        elif not (lmdb_path / 'data.mdb').is_file():
            raise FileExistsError(f'{lmdb_path} exists but is not an lmdb database; remove it or pass --overwrite.')
    names = sorted(names) if names is not None else list_images(folder, recursive)
    keys = [_key(n) for n in names]
    dupes = sorted(k for k, n in Counter(keys).items() if n > 1)
    if dupes:
        raise ValueError(f'Several files map to the same key (same name, different extension): {dupes[:5]}.')
    meta_path = lmdb_path / 'meta_info.txt'
    meta = _read_meta(meta_path)
    if map_size is None:
        total = sum((folder / n).stat().st_size for n in names)
        map_size = max(int(total * (1.5 if compress_level == RAW else 4)), 64 << 20)
    close_lmdb(lmdb_path)  # a reader's handle in this process would block opening it for writing
    lmdb_path.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(lmdb_path), map_size=map_size)
    counts = {'written': 0, 'skipped': 0}
    pending: list[tuple[bytes, bytes]] = []
    try:
        with env.begin() as txn:
            present = {k.decode() for k in txn.cursor().iternext(keys=True, values=False)}
            names_by_key = dict(zip(keys, names))
            for key in sorted(present - meta.keys()):  # interrupted before meta_info.txt was written: recover
                value = bytes(txn.get(key.encode()))
                shape = _shape(value, f'{lmdb_path}:{key}')
                name = names_by_key.get(key) or key + _guess_ext(value)
                meta[key] = f'{name} ({shape[0]},{shape[1]},{shape[2]}) {compress_level}'
        todo = [(k, n) for k, n in zip(keys, names) if k not in present]
        counts['skipped'] = len(keys) - len(todo)
        iterator = todo
        if progress:
            from tqdm import tqdm

            iterator = tqdm(todo, desc=f'lmdb {lmdb_path.name}', unit='img')
        for key, name in iterator:
            value, shape = _encode(folder / name, compress_level)
            pending.append((key.encode(), value))
            meta[key] = f'{name} ({shape[0]},{shape[1]},{shape[2]}) {compress_level}'
            if len(pending) >= commit_every:
                _commit(env, pending)
                counts['written'] += len(pending)
                present.update(k.decode() for k, _ in pending)
                pending = []
                _write_meta(meta_path, {k: v for k, v in meta.items() if k in present})
        _commit(env, pending)
        counts['written'] += len(pending)
        present.update(k.decode() for k, _ in pending)
    finally:
        env.close()
    _write_meta(meta_path, {k: v for k, v in meta.items() if k in present})
    log(f'{lmdb_path}: {counts["written"]} written, {counts["skipped"]} already present.')
    return counts


def _commit(env, items: list[tuple[bytes, bytes]]) -> None:
    """Write `items` in one transaction, doubling the map size whenever it is full."""
    import lmdb

    while items:
        try:
            with env.begin(write=True) as txn:
                for key, value in items:
                    txn.put(key, value)
            return
        except lmdb.MapFullError:
            env.set_mapsize(env.info()['map_size'] * 2)


def _write_meta(meta_path: Path, meta: dict[str, str]) -> None:
    text = ''.join(f'{meta[k]}\n' for k in sorted(meta))
    atomic_write(meta_path, lambda tmp: Path(tmp).write_text(text))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(meta_path, 0o666 & ~umask)  # a plain text file, readable like the database beside it
