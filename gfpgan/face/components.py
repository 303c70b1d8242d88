"""Eye and mouth boxes of aligned faces, for GFPGAN's facial-component losses.

Writes the format of upstream's `FFHQ_eye_mouth_landmarks_512.pth`: `{key: {'left_eye' | 'right_eye' |
'mouth': [cx, cy, half_len]}}` with numpy float64 values, where the centre is the mean of the part's
68-point landmarks and `half_len` half of its larger side (width, for eyes and mouths): on FFHQ image 0
this reproduces upstream's entry within about a pixel. Keys are file stems (`component_key: name` of the
dataset) or `'%08d'` sorted indices (`component_key: index`, upstream's convention).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from gfpgan.face.alignment import face_template
from gfpgan.face.detection import LEFT_EYE_68, MOUTH_68, RIGHT_EYE_68, DlibFaceDetector
from gfpgan.utils.checkpoint_io import atomic_write, save_checkpoint
from gfpgan.utils.image_io import imread, is_image_file

PARTS = {'left_eye': LEFT_EYE_68, 'right_eye': RIGHT_EYE_68, 'mouth': MOUTH_68}


def components_from_68(points: np.ndarray) -> dict[str, list[np.float64]]:
    """68 landmarks -> `{part: [cx, cy, half_len]}` (numpy float64, as upstream's file stores them)."""
    points = np.asarray(points, np.float64)
    out = {}
    for name, idx in PARTS.items():
        part = points[idx]
        cx, cy = part.mean(0)
        out[name] = [np.float64(cx), np.float64(cy), np.float64(np.ptp(part, axis=0).max() / 2)]
    return out


def _template_box(h: int, w: int) -> list[float]:
    """The face box dlib reports on FFHQ-aligned crops, scaled: a fallback when detection misses."""
    t = face_template(512)
    half = 1.23 * (t[4, 1] - t[0, 1])  # ~ 155 px at 512, dlib's box half side on these crops
    cx, cy = t[:, 0].mean(), t[:, 1].mean() - 0.1 * half
    sx, sy = w / 512, h / 512
    return [(cx - half) * sx, (cy - half) * sy, (cx + half) * sx, (cy + half) * sy]


def face_components(img: np.ndarray, detector: DlibFaceDetector) -> tuple[dict, bool]:
    """Components of the face nearest the centre of an aligned crop; second value: fallback box used."""
    h, w = img.shape[:2]
    found = detector.detect_68(img)
    if found:
        centre = np.array([w / 2, h / 2])
        _, points, _ = min(found, key=lambda f: np.linalg.norm((f[0][:2] + f[0][2:]) / 2 - centre))
        return components_from_68(points), False
    return components_from_68(detector.landmarks68(img, _template_box(h, w))), True


def list_images(folder: str | os.PathLike) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image_file(p))


def build_component_table(files: Iterable[Path], key: str = 'name', detector: DlibFaceDetector | None = None,
                          progress: bool = True) -> tuple[dict, list[str]]:
    """`{key: components}` for every file, and the names whose face needed the fallback box."""
    if key not in ('name', 'index'):
        raise ValueError(f"key must be 'name' (file stem) or 'index' ('%08d' of the sorted position), got {key!r}.")
    files = list(files)
    detector = detector or DlibFaceDetector()
    if progress:
        from tqdm import tqdm

        files_iter = tqdm(files, desc='Landmarks', unit='img')
    else:
        files_iter = files
    table, fallbacks, seen = {}, [], {}
    for index, path in enumerate(files_iter):
        name = path.stem if key == 'name' else f'{index:08d}'
        if name in seen:
            raise ValueError(f'{path} and {seen[name]} share the key {name!r}; use key=index or rename one.')
        seen[name] = path
        comps, used_fallback = face_components(imread(path), detector)
        table[name] = comps
        if used_fallback:
            fallbacks.append(str(path))
    return table, fallbacks


def save_component_table(table: dict, path: str | os.PathLike) -> None:
    """Write atomically: `.json` as plain floats, anything else as a torch file like upstream's."""
    if str(path).endswith('.json'):
        plain = {k: {p: [float(x) for x in v] for p, v in parts.items()} for k, parts in table.items()}
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(plain, indent=1)))
    else:
        save_checkpoint(table, path)
