"""Face tracks across video frames: detections linked by box overlap, each track's path smoothed in time.

A detection joins the live track whose last box overlaps it most (IoU at least `iou_threshold`, each
track taking at most one detection per frame); the rest start new tracks with the next id. A track
that finds no detection for more than `max_missed` frames has ended (the face left, or the detector
lost it for good); shorter gaps are bridged by the smoother. A scene cut ends every track, so a face
is never smoothed across two shots.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gfpgan.face.detection import DetectedFace
from gfpgan.video.smoothing import SmoothingOptions, smooth_path


@dataclass
class Track:
    """One face through consecutive frames: raw detections keyed by frame index."""

    id: int
    detections: dict[int, DetectedFace] = field(default_factory=dict)

    @property
    def first(self) -> int:
        return min(self.detections)

    @property
    def last(self) -> int:
        return max(self.detections)

    def smoothed(self, options: SmoothingOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frame indices, boxes (T, 4), landmarks (T, 5, 2)) for every frame from first to last, smoothed."""
        frames = np.arange(self.first, self.last + 1)
        path = np.full((len(frames), 7, 2), np.nan)
        for i, face in self.detections.items():
            path[i - self.first, :2] = np.asarray(face.box, np.float64).reshape(2, 2)
            path[i - self.first, 2:] = face.landmarks
        path = smooth_path(path, options)
        return frames, path[:, :2].reshape(-1, 4), path[:, 2:]


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


class FaceTracker:
    """Feed it each frame's detections in order (`update`), then read `tracks`."""

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 3) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f'iou_threshold must be in (0, 1], got {iou_threshold}.')
        if max_missed < 0:
            raise ValueError(f'max_missed must be >= 0 frames, got {max_missed}.')
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self._live: list[Track] = []

    def update(self, index: int, faces: list[DetectedFace], scene_cut: bool = False) -> None:
        """Link frame `index`'s faces to the live tracks; `scene_cut` ends all tracks first."""
        if scene_cut:
            self._live = []
        self._live = [t for t in self._live if index - t.last <= self.max_missed + 1]
        pairs = sorted(((box_iou(t.detections[t.last].box, f.box), ti, fi)
                        for ti, t in enumerate(self._live) for fi, f in enumerate(faces)), reverse=True)
        used_tracks, used_faces = set(), set()
        for iou, ti, fi in pairs:
            if iou < self.iou_threshold:
                break
            if ti in used_tracks or fi in used_faces:
                continue
            self._live[ti].detections[index] = faces[fi]
            used_tracks.add(ti)
            used_faces.add(fi)
        for fi, face in enumerate(faces):
            if fi not in used_faces:
                track = Track(len(self.tracks), {index: face})
                self.tracks.append(track)
                self._live.append(track)


def smoothed_faces(tracks: list[Track], n_frames: int, options: SmoothingOptions) -> list[list[dict]]:
    """Per frame, the list of `{'track', 'box', 'landmarks'}` (numpy arrays) of the faces shown in it."""
    frames: list[list[dict]] = [[] for _ in range(n_frames)]
    for track in tracks:
        indices, boxes, landmarks = track.smoothed(options)
        for i, box, points in zip(indices, boxes, landmarks):
            frames[i].append({'track': track.id, 'box': box, 'landmarks': points})
    for faces in frames:
        faces.sort(key=lambda f: f['track'])
    return frames
