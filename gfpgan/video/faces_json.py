"""`clip.faces.json`: per frame, every face's track id, box and the smoothed landmarks that aligned it.

`{"fps": F, "frames": [{"index": i, "faces": [{"track": id, "box": [x1, y1, x2, y2],
"landmarks": [[x, y] x 5]}]}]}`, in input pixels. Coordinates are rounded to `DECIMALS` places before
the alignment uses them, so the file holds exactly what was used.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gfpgan.utils.checkpoint_io import atomic_write

DECIMALS = 3


def round_face(face: dict) -> dict:
    """The face with its box and landmarks rounded to the precision the file stores."""
    return {**face, 'box': np.round(np.asarray(face['box'], np.float64), DECIMALS),
            'landmarks': np.round(np.asarray(face['landmarks'], np.float64), DECIMALS)}


def faces_document(fps: float, frames: list[list[dict]]) -> dict:
    """The JSON document of per-frame face lists (as built by `tracking.smoothed_faces`)."""
    def entry(face: dict) -> dict:
        face = round_face(face)
        return {'track': int(face['track']), 'box': face['box'].tolist(), 'landmarks': face['landmarks'].tolist()}

    return {'fps': float(fps), 'frames': [{'index': i, 'faces': [entry(f) for f in faces]}
                                          for i, faces in enumerate(frames)]}


def write_faces_json(path: str | Path, fps: float, frames: list[list[dict]]) -> None:
    text = json.dumps(faces_document(fps, frames), separators=(',', ':'))
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def read_faces_json(path: str | Path) -> tuple[float, list[list[dict]]]:
    """(fps, per-frame faces with numpy `box` (4,) and `landmarks` (5, 2)) from a faces.json file."""
    try:
        doc = json.loads(Path(path).read_text())
        frames = [[] for _ in doc['frames']]
        for frame in doc['frames']:
            frames[frame['index']] = [{'track': f['track'], 'box': np.array(f['box'], np.float64),
                                       'landmarks': np.array(f['landmarks'], np.float64).reshape(5, 2)}
                                      for f in frame['faces']]
        return float(doc['fps']), frames
    except (OSError, ValueError, KeyError, IndexError, TypeError) as err:
        raise ValueError(f'{path}: not a faces.json file ({type(err).__name__}: {err}).') from err
