"""Restore every face of a video with a `GFPGANer`, faces tracked and their landmarks smoothed in time.

Two passes over the clip. The first decodes and detects every frame, links the faces into tracks
(`tracking`) and smooths each track's landmarks with a zero-lag smoother (`smoothing`), which needs a
track's later frames as well as its earlier ones. The second decodes again and aligns each face with its
smoothed landmarks, restores faces of several frames in one network batch, pastes them back through
the restorer's own paste-back (its mask then moves with the smoothed landmarks too) and encodes,
decoding, restoring and encoding running in overlapping threads. The audio track is copied unchanged.
Writes `dst` and `dst` with `.faces.json` (see `faces_json`); both under temporary names until complete.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from gfpgan.face.detection import DetectedFace
from gfpgan.face.face_restore_helper import FaceRestoreHelper
from gfpgan.utils.checkpoint_io import atomic_write
from gfpgan.video.background import prefetch
from gfpgan.video.faces_json import round_face, write_faces_json
from gfpgan.video.io import VideoError, VideoInfo, frame_timestamps, is_variable_rate, probe, read_frames, write_video
from gfpgan.video.scene import SceneCutDetector
from gfpgan.video.smoothing import SmoothingOptions
from gfpgan.video.tracking import FaceTracker, smoothed_faces

if TYPE_CHECKING:
    from gfpgan.restorer import GFPGANer

Progress = Callable[[str, int, int], None]  # (stage 'tracking' | 'restoring', frames done, frames total or 0)


@dataclass(frozen=True)
class VideoOptions:
    """Tracking, smoothing and encoding options of `GFPGANer.enhance_video` (all keyword arguments there).

    landmark_noise, motion_noise: the smoother's detector jitter (px) and face acceleration (px/frame^2);
        smaller `motion_noise` smooths more, 0 keeps the raw detections (see `smoothing`).
    iou_threshold: box overlap with a track's last box for a detection to continue that track.
    max_missed: frames a track may go undetected and still continue (bridged by the smoother).
    scene_cut: colour-histogram change (0-1) that counts as a cut and ends every track (1 = never).
    crf, preset: H.264 quality (lower = better, 18 ~ visually lossless) and x264 speed preset.
    queue_size: frames each pipeline stage may run ahead of the next.
    """

    landmark_noise: float = 0.5
    motion_noise: float = 0.02
    iou_threshold: float = 0.3
    max_missed: int = 3
    scene_cut: float = 0.5
    crf: int = 18
    preset: str = 'medium'
    queue_size: int = 8

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 51:
            raise ValueError(f'crf must be in [0, 51] (H.264 quality, lower = better), got {self.crf}.')
        if self.queue_size < 1:
            raise ValueError(f'queue_size must be >= 1 frame, got {self.queue_size}.')

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass
class VideoResult:
    """What `enhance_video` did: counts, rate, and whether the output is a plain copy (no face found)."""

    dst: Path
    faces_json: Path
    frames: int
    fps: float
    faces: int  # face crops restored, over all frames
    tracks: int
    scene_cuts: int
    has_audio: bool
    variable_frame_rate: bool
    copied: bool  # no face in the clip and nothing to upscale: `dst` is a byte copy of the input
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def tqdm_progress() -> Progress:
    """A `Progress` that draws one tqdm bar per stage (frames/s and ETA) on stderr."""
    import sys

    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total or None, desc=stage.capitalize(), unit='frame', file=sys.stderr)
        bar.update(done - bar.n)
        if total and done >= total:
            bar.close()

    return update


class VideoRestorer:
    """Video front end of a `GFPGANer` (its network, detector, upscale, background upsampler, paste-back)."""

    def __init__(self, restorer: GFPGANer, options: VideoOptions = VideoOptions()) -> None:
        self.restorer = restorer
        self.options = options
        self.smoothing = SmoothingOptions(options.landmark_noise, options.motion_noise)
        FaceTracker(options.iou_threshold, options.max_missed)  # check the options now, not after decoding
        SceneCutDetector(options.scene_cut)

    def track(self, src: Path, info: VideoInfo, only_center_face: bool = False,
              progress: Progress | None = None) -> tuple[list[list[dict]], list[int], int, int]:
        """First pass: (per-frame smoothed faces, frame timestamps, number of tracks, number of scene cuts)."""
        helper = self.restorer.face_helper
        tracker = FaceTracker(self.options.iou_threshold, self.options.max_missed)
        cuts = SceneCutDetector(self.options.scene_cut)
        pts, n_cuts, centre = [], 0, None
        for index, (frame, stamp) in enumerate(prefetch(read_frames(src), self.options.queue_size)):
            if index == 0:
                self.restorer.check_size(frame)
                centre = np.array([frame.shape[1], frame.shape[0]]) / 2
            cut = cuts.is_cut(frame)
            n_cuts += cut
            helper.read_image(frame)
            helper.get_face_landmarks_5()
            tracker.update(index, helper.faces, scene_cut=cut)
            pts.append(stamp)
            if progress:
                progress('tracking', index + 1, info.frames)
        helper.clean_all()
        if not pts:
            raise VideoError(f'{src}: has no frames.')
        if info.frames > len(pts):
            raise VideoError(f'{src}: truncated or damaged: its header lists {info.frames} frames but only '
                             f'{len(pts)} decode.')
        if progress and info.frames != len(pts):
            progress('tracking', len(pts), len(pts))
        frames = smoothed_faces(tracker.tracks, len(pts), self.smoothing)
        frames = [[round_face(f) for f in faces] for faces in frames]
        if only_center_face:
            frames = [[min(faces, key=lambda f: np.linalg.norm((f['box'][:2] + f['box'][2:]) / 2 - centre))]
                      if faces else [] for faces in frames]
        return frames, frame_timestamps(pts, info), len(tracker.tracks), n_cuts

    def _restore_frames(self, src: Path, faces: list[list[dict]], weight: float) -> Iterator[np.ndarray]:
        """Second pass: restored frames in order; faces of consecutive frames share network batches."""
        restorer = self.restorer
        group: list[tuple[np.ndarray, FaceRestoreHelper]] = []
        n_faces = 0
        frames = prefetch((frame for frame, _ in read_frames(src)), self.options.queue_size)
        for index, frame in enumerate(frames):
            if index >= len(faces):
                raise VideoError(f'{src}: decoded more frames the second time ({index + 1}) than the first.')
            helper = FaceRestoreHelper(restorer.upscale, restorer.face_size, detector=restorer.face_helper.detector,
                                       parser=restorer.face_helper.parser)
            helper.read_image(frame)
            helper.set_faces([DetectedFace(f['box'].astype(np.float32), f['landmarks'].astype(np.float32))
                              for f in faces[index]])
            helper.align_warp_face()
            group.append((frame, helper))
            n_faces += len(helper.faces)
            if n_faces >= restorer.batch_size or len(group) >= max(restorer.batch_size, self.options.queue_size):
                yield from self._finish(group, weight)
                group, n_faces = [], 0
        yield from self._finish(group, weight)

    def _finish(self, group: list[tuple[np.ndarray, FaceRestoreHelper]], weight: float) -> Iterator[np.ndarray]:
        crops = [crop for _, helper in group for crop in helper.cropped_faces]
        restored = self.restorer.restore_faces(crops, weight) if crops else []
        start = 0
        for frame, helper in group:
            helper.restored_faces = restored[start:start + len(helper.cropped_faces)]
            start += len(helper.cropped_faces)
            yield self.restorer.paste_back(helper, frame)

    def run(self, src: str | Path, dst: str | Path, weight: float = 1.0, only_center_face: bool = False,
            progress: Progress | bool | None = None) -> VideoResult:
        """Restore `src` into `dst` (any of `io.VIDEO_EXTENSIONS`) and write `dst`'s `.faces.json` beside it.

        `progress(stage, done, total)` is called after every frame of each pass; an exception it raises
        cancels the run and leaves neither file behind.
        """
        src, dst = Path(src), Path(dst)
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f'weight must be in [0, 1] (1 = restored face only, 0 = input), got {weight}.')
        if progress is True:
            progress = tqdm_progress()
        start = time.perf_counter()
        info = probe(src)
        faces, stamps, n_tracks, n_cuts = self.track(src, info, only_center_face, progress or None)
        fps = float(info.fps)
        variable = is_variable_rate(stamps)
        n_faces = sum(len(f) for f in faces)
        json_path = dst.with_name(dst.stem + '.faces.json')
        restorer = self.restorer
        copied = n_faces == 0 and restorer.upscale == 1 and restorer.bg_upsampler is None \
            and dst.suffix.lower() == src.suffix.lower()
        if copied:
            atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))
        else:
            restored = prefetch(self._restore_frames(src, faces, weight), self.options.queue_size)
            written = write_video(dst, self._counted(zip(restored, stamps), len(stamps), progress or None), info,
                                  crf=self.options.crf, preset=self.options.preset)
            if written != len(stamps):
                raise VideoError(f'{src}: decoded {len(stamps)} frames the first time but {written} the second.')
        write_faces_json(json_path, fps, faces)
        return VideoResult(dst, json_path, len(stamps), fps, n_faces, n_tracks, n_cuts, info.has_audio, variable,
                           copied, time.perf_counter() - start)

    @staticmethod
    def _counted(items: Iterable, total: int, progress: Progress | None) -> Iterator:
        for done, item in enumerate(items, 1):
            yield item
            if progress:
                progress('restoring', done, total)

