"""Face detection with five landmarks, offline by default.

The default detector is dlib's HOG detector plus its 68-point shape predictor: both weight files ship
inside the `face-recognition-models` wheel, so nothing is downloaded at run time. The 68 points are
reduced to the five points the FFHQ template uses (eye centres, nose tip, mouth corners), ordered as
RetinaFace orders them: image-left eye, image-right eye, nose, image-left and image-right mouth corner.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

import cv2
import numpy as np

# dlib 68-point indices (iBUG 300-W): 36-41 and 42-47 are the eyes (image left, image right),
# 30 the nose tip and 33 the base of the nose, 60 and 64 the inner mouth corners, 48-67 the mouth.
# RetinaFace's "nose" point sits between 30 and 33: their mean matches the FFHQ template on crops
# that upstream aligned with RetinaFace (tests/test_face_alignment.py checks it).
LEFT_EYE_68 = slice(36, 42)
RIGHT_EYE_68 = slice(42, 48)
NOSE_68 = (30, 33)
MOUTH_CORNERS_68 = (60, 64)
MOUTH_68 = slice(48, 68)


@dataclass
class DetectedFace:
    """One face: `box` (x1, y1, x2, y2), `landmarks` (5, 2) float32 in image pixels, detector `score`."""

    box: np.ndarray
    landmarks: np.ndarray
    score: float = 1.0


class FaceDetector(Protocol):
    """What the face helper needs from a detector: BGR uint8 image in, faces out."""

    def detect(self, img: np.ndarray) -> list[DetectedFace]: ...


def five_from_68(points: np.ndarray) -> np.ndarray:
    """68 iBUG landmarks -> 5 points (eye centres, nose, mouth corners), float32 (5, 2)."""
    points = np.asarray(points, np.float64)
    return np.stack([
        points[LEFT_EYE_68].mean(0),
        points[RIGHT_EYE_68].mean(0),
        points[list(NOSE_68)].mean(0),
        points[MOUTH_CORNERS_68[0]],
        points[MOUTH_CORNERS_68[1]],
    ]).astype(np.float32)


def dlib_models_dir() -> Path:
    """The `models/` folder of the `face-recognition-models` wheel, found without importing it.

    Importing that package calls `pkg_resources`, which setuptools >= 81 no longer ships; its data files
    are all we need, so locate the package folder through the import system's spec instead.
    """
    spec = importlib.util.find_spec('face_recognition_models')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The default face detector needs the 'face-recognition-models' package (dlib's detector and "
            "landmark weights): pip install face-recognition-models dlib-bin"
        )
    return Path(next(iter(spec.submodule_search_locations))) / 'models'


@lru_cache(maxsize=2)
def _shape_predictor(path: str):
    import dlib

    return dlib.shape_predictor(path)


@lru_cache(maxsize=1)
def _hog_detector():
    import dlib

    return dlib.get_frontal_face_detector()


def _import_dlib():
    try:
        import dlib
    except ImportError as err:
        raise ImportError('The default face detector needs dlib: pip install dlib-bin face-recognition-models') from err
    return dlib


class DlibFaceDetector:
    """dlib HOG face detector + 68-point landmarks, reduced to five points.

    Args:
        upsample: how often dlib upsamples the image before detecting (finds smaller faces, ~4x slower
            per step); 'auto' tries 0 and, only when nothing is found, 1.
        max_side: large images are shrunk to this longest side for the detector (the landmarks are
            then fitted on the full-resolution image), which bounds detection time and memory.
        models_dir: folder with `shape_predictor_68_face_landmarks.dat` (default: the wheel's).
    """

    def __init__(self, upsample: int | str = 'auto', max_side: int = 2000,
                 models_dir: str | Path | None = None) -> None:
        dlib = _import_dlib()
        self._dlib = dlib
        self.upsample = upsample
        self.max_side = max_side
        path = Path(models_dir) if models_dir else dlib_models_dir()
        predictor = path / 'shape_predictor_68_face_landmarks.dat'
        if not predictor.is_file():
            raise FileNotFoundError(f'dlib landmark model not found: {predictor}. Reinstall face-recognition-models.')
        self.predictor = _shape_predictor(str(predictor))
        self.detector = _hog_detector()

    def _boxes(self, rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = rgb if scale == 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)),
                                                    interpolation=cv2.INTER_AREA)
        tries = (0, 1) if self.upsample == 'auto' else (int(self.upsample),)
        for up in tries:
            rects, scores, _ = self.detector.run(small, up, 0.0)
            if len(rects):
                break
        return [(np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32) / scale, float(s))
                for r, s in zip(rects, scores)]

    def landmarks68(self, img: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """68 landmarks (68, 2) float32 of the face in `box` (x1, y1, x2, y2) of a BGR image."""
        rgb = np.ascontiguousarray(img[:, :, ::-1])
        return self._landmarks68_rgb(rgb, box)

    def _landmarks68_rgb(self, rgb: np.ndarray, box: Sequence[float]) -> np.ndarray:
        rect = self._dlib.rectangle(*(int(round(v)) for v in box))
        shape = self.predictor(rgb, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)

    def detect_68(self, img: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """(box, 68 landmarks, score) of every face in a BGR uint8 image."""
        if img.ndim != 3 or min(img.shape[:2]) < 16:  # nothing a detector could find
            return []
        rgb = np.ascontiguousarray(img[:, :, ::-1])
        return [(box, self._landmarks68_rgb(rgb, box), score) for box, score in self._boxes(rgb)]

    def detect(self, img: np.ndarray) -> list[DetectedFace]:
        return [DetectedFace(box, five_from_68(points), score) for box, points, score in self.detect_68(img)]


def build_detector(name: str = 'dlib', weights_folder: str | Path | None = None, device=None) -> FaceDetector:
    """'dlib' (offline default, CPU) or 'retinaface' (needs `detection_Resnet50_Final.pth` in the weights
    folder; runs on `device`, by default CUDA when present)."""
    if name == 'dlib':
        return DlibFaceDetector()
    if name == 'retinaface':
        from gfpgan.face.retinaface import RetinaFaceDetector

        return RetinaFaceDetector(weights_folder=weights_folder, device=device)
    raise ValueError(f"Unknown face detector {name!r}; choose 'dlib' or 'retinaface'.")
