"""Reading and writing video with PyAV: exact frame timestamps in, the audio track copied out untouched.

PyAV (FFmpeg's libraries in the wheel) rather than imageio-ffmpeg (a piped ffmpeg executable): frames
come with their own timestamps, so variable-frame-rate clips keep every frame where it was, and the
audio track is remuxed packet by packet (no decode, no re-encode: the samples survive bit for bit).
Video is encoded with libx264 (H.264, `crf` quality) in the input's container, VP9 for WebM.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from gfpgan.utils.checkpoint_io import atomic_write

VIDEO_EXTENSIONS = ('.mp4', '.m4v', '.mov', '.mkv', '.avi', '.webm')
CONTAINER_FORMATS = {'.mp4': 'mp4', '.m4v': 'mp4', '.mov': 'mov', '.mkv': 'matroska', '.avi': 'avi',
                     '.webm': 'webm'}


class VideoError(RuntimeError):
    """A video that cannot be read or written; the message names the file."""


def _import_av():
    try:
        import av
    except ImportError as err:
        raise ImportError('Video input needs PyAV: pip install "av>=14" (or pip install gfpgan[video]).') from err
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What the writer copies from the source: size, rate, time base and the audio track's presence."""

    path: Path
    width: int  # as stored, before any display rotation
    height: int
    fps: Fraction
    time_base: Fraction
    frames: int  # from the container header, 0 when it does not say
    has_audio: bool


def _open(path: Path):
    av = _import_av()
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoError(f'{path}: not a readable video ({err}).') from err
    if not container.streams.video:
        container.close()
        raise VideoError(f'{path}: holds no video frames (it has no video stream).')
    return container


def probe(path: str | Path) -> VideoInfo:
    """Header facts of `path`'s first video stream (raises `VideoError` naming the file)."""
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not fps:
            raise VideoError(f'{path}: the video stream states no frame rate.')
        return VideoInfo(path, stream.codec_context.width, stream.codec_context.height, Fraction(fps),
                         Fraction(stream.time_base or Fraction(1, 90000)), int(stream.frames or 0),
                         bool(container.streams.audio))


def read_frames(path: str | Path) -> Iterator[tuple[np.ndarray, int | None]]:
    """(BGR uint8 frame, pts in the stream's time base) for every frame; a decoding error names the frame.

    A frame stored sideways with a display rotation (phone clips) comes out upright, as players show it:
    faces are detected upright and the output, written without the rotation, displays the same.
    """
    av = _import_av()
    path = Path(path)
    index = 0
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = 'AUTO'
        try:
            for frame in container.decode(stream):
                img = frame.to_ndarray(format='bgr24')
                quarter_turns = round(getattr(frame, 'rotation', 0) / 90) % 4  # counter-clockwise, for display
                if quarter_turns:
                    img = np.ascontiguousarray(np.rot90(img, quarter_turns))
                yield img, frame.pts
                index += 1
        except av.error.FFmpegError as err:
            raise VideoError(f'{path}: truncated or damaged: decoding failed after {index} frames ({err}).') \
                from err


def frame_timestamps(pts: list[int | None], info: VideoInfo) -> list[int]:
    """The frames' own timestamps, or (when the container gives none) evenly spaced ones at `info.fps`."""
    if all(p is not None for p in pts) and all(b > a for a, b in zip(pts, pts[1:])):
        return list(pts)
    step = 1 / (info.fps * info.time_base)
    return [round(i * step) for i in range(len(pts))]


def is_variable_rate(timestamps: list[int], tolerance: float = 0.02) -> bool:
    """True when the frame intervals differ by more than `tolerance` of the median interval (and a tick)."""
    if len(timestamps) < 3:
        return False
    steps = np.diff(np.asarray(timestamps, np.float64))
    median = float(np.median(steps))
    return bool(np.abs(steps - median).max() > max(tolerance * median, 1.0))


def write_video(dst: str | Path, frames: Iterable[tuple[np.ndarray, int]], like: VideoInfo, crf: int = 18,
                preset: str = 'medium') -> int:
    """Encode `(BGR frame, pts)` pairs to `dst` (written under a temporary name, renamed when complete).

    Timestamps are in `like.time_base`; the audio track of `like.path`, if any, is copied packet by
    packet. Returns the number of frames written.
    """
    dst = Path(dst)
    fmt = CONTAINER_FORMATS.get(dst.suffix.lower())
    if fmt is None:
        raise VideoError(f'{dst}: cannot write {dst.suffix!r} video; use one of {", ".join(VIDEO_EXTENSIONS)}.')
    written = 0

    def encode(tmp: str) -> None:
        nonlocal written
        written = _encode(tmp, fmt, frames, like, crf, preset)

    atomic_write(dst, encode)
    return written


def _encode(tmp: str, fmt: str, frames: Iterable[tuple[np.ndarray, int]], like: VideoInfo, crf: int,
            preset: str) -> int:
    av = _import_av()
    source = _open(like.path) if like.has_audio else None
    out = av.open(tmp, 'w', format=fmt)
    try:
        audio_in = source.streams.audio[0] if source else None
        audio_out = out.add_stream_from_template(audio_in) if audio_in else None
        audio = (p for p in source.demux(audio_in) if p.dts is not None) if audio_in else iter(())
        pending = next(audio, None)
        video = None
        count = 0
        for img, pts in frames:
            if video is None:
                video = _video_stream(out, fmt, img.shape[1], img.shape[0], like, crf, preset)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format='bgr24')
            frame.pts, frame.time_base = pts, like.time_base
            for packet in video.encode(frame):
                out.mux(packet)
            count += 1
            now = pts * like.time_base
            while pending is not None and _packet_time(pending) <= now:
                pending.stream = audio_out
                out.mux(pending)
                pending = next(audio, None)
        if video is None:
            raise VideoError(f'{like.path}: no frames to write.')
        for packet in video.encode(None):
            out.mux(packet)
        while pending is not None:
            pending.stream = audio_out
            out.mux(pending)
            pending = next(audio, None)
    finally:
        out.close()
        if source is not None:
            source.close()
    return count


def _packet_time(packet) -> Fraction:
    return (packet.pts if packet.pts is not None else packet.dts) * packet.time_base


def _video_stream(out, fmt: str, width: int, height: int, like: VideoInfo, crf: int, preset: str):
    if fmt == 'webm':
        stream = out.add_stream('libvpx-vp9', rate=like.fps, options={'crf': str(crf), 'b': '0'})
    else:
        stream = out.add_stream('libx264', rate=like.fps, options={'crf': str(crf), 'preset': preset})
    stream.width, stream.height = width, height
    # 4:2:0 chroma needs even sides; an odd-sized output keeps full chroma instead of losing a pixel.
    stream.pix_fmt = 'yuv420p' if width % 2 == 0 and height % 2 == 0 else 'yuv444p'
    stream.time_base = like.time_base
    stream.codec_context.time_base = like.time_base
    return stream
