"""Up-front check of an image folder for GAN training: every problem found, one line each.

A GAN run on a folder of images fails late and obscurely on bad data (a collate error about sizes after
the first batch, a crash on the 3000th file). `check_image_folder` reads every file once before training
and reports, one line per problem: a missing or empty folder, a folder with files but no images, an
unreadable or truncated file, images of different sizes when they are used as they are, and with class
labels, images outside any class folder or a class folder without images.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from gfpgan.utils.image_io import IMG_EXTENSIONS, ImageReadError, imread, is_image_file

MAX_LINES = 20  # per kind of problem; the rest is counted


class DataFolderError(ValueError):
    """The data folder cannot be trained on; the message has one line per problem."""


def _listing(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob('*') if p.is_file())


def class_of(path: str | os.PathLike, root: str | os.PathLike) -> str | None:
    """The class folder of `path` (its first folder below `root`), None for a file directly in `root`."""
    rel = Path(path).relative_to(root).parts
    return rel[0] if len(rel) > 1 else None


def loose_images_problem(paths: Iterable[str | os.PathLike], root: str | os.PathLike) -> str | None:
    """The problem line for images directly in `root` (with class labels each needs a class folder), or None."""
    loose = [p for p in paths if class_of(p, root) is None]
    if not loose:
        return None
    return (f'{root}: {len(loose)} image(s) directly in the folder (e.g. {Path(loose[0]).name}); with '
            'class_labels every image must be in a class folder, root/<class>/<image>.')


def check_image_folder(root: str | os.PathLike, same_size: bool = True, class_labels: bool = False) -> list[str]:
    """Sorted image paths under `root` (recursive), after reading every one; raise `DataFolderError` otherwise.

    `same_size`: the images are used at their own size (no `image_size`), so they must all be equal.
    `class_labels`: images must sit in class folders (`root/<class>/...`), each with at least one image.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataFolderError(f'{root}: no such folder.')
    files = _listing(root)
    if not files:
        raise DataFolderError(f'{root}: the folder is empty.')
    images = [p for p in files if is_image_file(p.name)]
    if not images:
        examples = ', '.join(p.name for p in files[:3])
        raise DataFolderError(f'{root}: no image files ({", ".join(e[1:] for e in IMG_EXTENSIONS)}) among its '
                              f'{len(files)} files (e.g. {examples}).')
    problems: list[str] = []
    unreadable: list[str] = []
    sizes: dict[tuple[int, int], list[Path]] = {}
    for p in images:
        try:
            h, w = imread(p).shape[:2]
        except ImageReadError as err:
            unreadable.append(str(err))
            continue
        sizes.setdefault((w, h), []).append(p)
    problems += unreadable[:MAX_LINES]
    if len(unreadable) > MAX_LINES:
        problems.append(f'{root}: ... and {len(unreadable) - MAX_LINES} more unreadable files.')
    if same_size and len(sizes) > 1:
        by_count = sorted(sizes.items(), key=lambda kv: -len(kv[1]))
        summary = ', '.join(f'{w}x{h}: {len(ps)} file{"s" * (len(ps) > 1)} (e.g. {ps[0].name})'
                            for (w, h), ps in by_count[:4])
        more = f' and {len(by_count) - 4} more sizes' if len(by_count) > 4 else ''
        problems.append(f'{root}: images have different sizes ({summary}{more}); set image_size to resize and '
                        'crop them to one size.')
    if class_labels:
        loose = loose_images_problem(images, root)
        if loose:
            problems.append(loose)
        with_images = Counter(class_of(p, root) for p in images)
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            if not with_images.get(d.name):
                problems.append(f'{d}: class folder without images; remove it or add images.')
    if problems:
        raise DataFolderError('\n'.join(problems))
    return [str(p) for p in images]
