"""Cheap scene-cut detection: colour-histogram change between consecutive frames.

Each frame is shrunk to a thumbnail and binned into an 8x8x8 BGR histogram; the total-variation
distance (half the L1 distance of the normalised histograms, 0 = same colours, 1 = disjoint) to the
previous frame above `threshold` is a cut. Sensor noise, camera motion and faces moving change it by a
few hundredths; a cut to another shot usually by well over half.
"""
from __future__ import annotations

import cv2
import numpy as np


def colour_histogram(frame: np.ndarray, bins: int = 8, thumb: int = 64) -> np.ndarray:
    """Normalised (bins^3,) histogram of a BGR uint8 frame."""
    small = cv2.resize(frame, (thumb, thumb), interpolation=cv2.INTER_AREA)
    idx = (small // (256 // bins)).reshape(-1, 3).astype(np.int64)
    hist = np.bincount((idx[:, 0] * bins + idx[:, 1]) * bins + idx[:, 2], minlength=bins ** 3)
    return hist / hist.sum()


class SceneCutDetector:
    """`is_cut(frame)`: True when `frame` starts a new shot (never for the first frame)."""

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f'scene cut threshold must be in (0, 1] (1 = never cut), got {threshold}.')
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def is_cut(self, frame: np.ndarray) -> bool:
        hist = colour_histogram(frame)
        previous, self._previous = self._previous, hist
        if previous is None:
            return False
        return 0.5 * float(np.abs(hist - previous).sum()) > self.threshold
