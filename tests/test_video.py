"""Video restoration: tracking, zero-lag landmark smoothing, PyAV round trips with audio, the CLI on videos.

Clips are built from the shared FFHQ photo (skipped when ../shared is absent) at 0.6 scale (307 px
frames, ~180 px faces) so dlib detects a frame in ~20 ms; the generator is the tiny random-weight
GFPGANv1Clean of test_restorer.
"""
from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

av = pytest.importorskip('av')

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from test_restorer import save_tiny_generator  # noqa: E402

import inference_gfpgan  # noqa: E402
from gfpgan.face.alignment import estimate_alignment, inverse_affine  # noqa: E402
from gfpgan.face.detection import DetectedFace, DlibFaceDetector  # noqa: E402
from gfpgan.restorer import GFPGANer  # noqa: E402
from gfpgan.video import VideoRestorer  # noqa: E402
from gfpgan.video.faces_json import read_faces_json  # noqa: E402
from gfpgan.video.io import VideoError, is_variable_rate, probe, read_frames, write_video  # noqa: E402
from gfpgan.video.scene import SceneCutDetector  # noqa: E402
from gfpgan.video.smoothing import SmoothingOptions, smooth_path  # noqa: E402
from gfpgan.video.tracking import FaceTracker, smoothed_faces  # noqa: E402

SAMPLE_RATE = 16000


def make_clip(path: Path, frames: list[np.ndarray], fps: int = 25, audio: bool = False,
              pts: list[int] | None = None, rotation: int = 0) -> Path:
    """H.264 clip of BGR `frames` (time base 1/fps unless `pts` say otherwise), optionally with an AAC sine
    and a display rotation (degrees counter-clockwise)."""
    with av.open(str(path), 'w') as out:
        video = out.add_stream('libx264', rate=fps)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], 'yuv420p'
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream('aac', rate=SAMPLE_RATE) if audio else None
        if sound is not None:
            sound.layout = 'mono'
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format='bgr24')
            frame.pts, frame.time_base = (pts[i] if pts else i), Fraction(1, fps)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            n = SAMPLE_RATE * len(frames) // fps
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / SAMPLE_RATE)).astype(np.float32)[None]
            for k in range(0, n, 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, k:k + 1024]), format='fltp',
                                                   layout='mono')
                chunk.sample_rate, chunk.pts = SAMPLE_RATE, k
                for packet in sound.encode(chunk):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
    return path


def audio_packets(path: Path) -> list[tuple[bytes, int]]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [(bytes(p), p.pts) for p in container.demux(stream) if p.dts is not None]


def video_pts(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [frame.pts for frame in container.decode(video=0)]


@pytest.fixture(scope='module')
def photo(data_dir) -> np.ndarray:
    img = cv2.imread(str(data_dir / 'ffhq_512' / '00000000.png'))
    return cv2.resize(img, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)


def noisy_pan(photo: np.ndarray, n: int, speed: float, seed: int = 0, sigma: float = 4.0) -> list[np.ndarray]:
    """`n` frames of a window sliding `speed` px per frame right over `photo` (the face moves left), each
    with its own Gaussian noise; speed 0 is a static clip."""
    rng = np.random.default_rng(seed)
    h, w = photo.shape[:2]
    h, width = h - h % 2, (w - int(np.ceil(speed * n)) - 2) // 2 * 2  # even sides for 4:2:0 test clips
    frames = []
    for t in range(n):
        shifted = cv2.warpAffine(photo, np.float32([[1, 0, -speed * t], [0, 1, 0]]), (width, h),
                                 flags=cv2.INTER_LINEAR)
        frames.append(np.clip(shifted + rng.normal(0, sigma, shifted.shape), 0, 255).astype(np.uint8))
    return frames


def detect_and_smooth(frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(raw detector landmarks, tracked + smoothed landmarks with the default options), both (T, 5, 2)."""
    detector = DlibFaceDetector()
    tracker = FaceTracker()
    raw = []
    for i, frame in enumerate(frames):
        faces = detector.detect(frame)
        assert len(faces) == 1, f'frame {i}: {len(faces)} faces'
        tracker.update(i, faces)
        raw.append(faces[0].landmarks)
    per_frame = smoothed_faces(tracker.tracks, len(frames), SmoothingOptions())
    assert [[f['track'] for f in faces] for faces in per_frame] == [[0]] * len(frames)
    return np.array(raw, np.float64), np.array([faces[0]['landmarks'] for faces in per_frame])


def rms_from_mean(points: np.ndarray) -> float:
    """RMS 2-D distance of each landmark from its mean over all frames (first and last included)."""
    return float(np.sqrt(((points - points.mean(0)) ** 2).sum(-1).mean()))


def line_fit(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-coordinate least-squares straight line over the frames: (slopes (5, 2), fitted (T, 5, 2))."""
    t = np.arange(len(points), dtype=np.float64)
    design = np.stack([t, np.ones_like(t)], 1)
    coef, *_ = np.linalg.lstsq(design, points.reshape(len(points), -1), rcond=None)
    return coef[0].reshape(5, 2), (design @ coef).reshape(points.shape)


def test_static_clip_smoothed_landmarks_hold_still(photo):
    raw, smooth = detect_and_smooth(noisy_pan(photo, 30, 0.0))
    # Every frame counts, the first ones included, and the mean is over the whole clip.
    assert rms_from_mean(raw) > 0.3  # the detector really jitters (about 0.5 px here)
    assert rms_from_mean(smooth) <= 0.15
    np.testing.assert_allclose(smooth.mean(0), raw.mean(0), atol=0.2)  # smoothed, not moved


def test_panning_clip_followed_without_lag(photo):
    speed = 1.5
    raw, smooth = detect_and_smooth(noisy_pan(photo, 30, speed, seed=1))
    slopes, fitted = line_fit(smooth)
    np.testing.assert_allclose(slopes[:, 0], -speed, atol=0.2)  # x: 1.5 px per frame, leftwards
    np.testing.assert_allclose(slopes[:, 1], 0.0, atol=0.2)
    steps = np.diff(smooth[:, :, 0], axis=0)  # every frame-to-frame step, the first frames included
    assert np.all(np.abs(steps + speed) <= 0.2), steps.min(1)
    assert float(np.sqrt(((smooth - fitted) ** 2).sum(-1).mean())) <= 0.3
    # No lag: a lagging filter trails the detections by a constant offset against the motion.
    lag = (smooth - raw)[:, :, 0].mean()
    assert abs(lag) < 0.15, lag
    raw_fit = line_fit(raw)[1]
    assert float(np.abs(smooth - raw_fit).max()) < 0.5


def test_smoother_keeps_straight_lines_and_bridges_gaps():
    t = np.arange(20, dtype=np.float64)
    path = np.stack([3.0 + 2.0 * t, 10.0 - 0.5 * t], 1)[:, None]  # (T, 1, 2), exact constant velocity
    np.testing.assert_allclose(smooth_path(path), path, atol=1e-4)
    gappy = path.copy()
    gappy[5:8] = np.nan
    np.testing.assert_allclose(smooth_path(gappy), path, atol=1e-4)  # missed frames filled on the line
    np.testing.assert_array_equal(smooth_path(path + 0.3 * (t % 2)[:, None, None], SmoothingOptions(motion_noise=0)),
                                  path + 0.3 * (t % 2)[:, None, None])  # 0 = raw detections
    with pytest.raises(ValueError, match='first and last'):
        smooth_path(gappy[5:])
    with pytest.raises(ValueError, match='landmark_noise'):
        SmoothingOptions(landmark_noise=0)


def face_at(x: float, y: float = 50.0, size: float = 40.0) -> DetectedFace:
    box = np.array([x, y, x + size, y + size], np.float32)
    points = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]], np.float32) * size
    return DetectedFace(box, points + box[:2])


def test_tracker_ids_entering_leaving_gaps_and_scene_cuts():
    tracker = FaceTracker(iou_threshold=0.3, max_missed=2)
    for i in range(12):
        faces = []
        if i not in (3, 4):  # face A moves right 1 px per frame, missed for 2 frames (bridged)
            faces.append(face_at(10 + i))
        if 2 <= i < 6 or i >= 10:  # face B leaves after frame 5 and a new face appears there at frame 10
            faces.append(face_at(200))
        tracker.update(i, faces[::-1] if i % 2 else faces, scene_cut=i == 8)
    frames = smoothed_faces(tracker.tracks, 12, SmoothingOptions())
    ids = [[f['track'] for f in faces] for faces in frames]
    assert ids == [[0], [0], [0, 1], [0, 1], [0, 1], [0, 1], [0], [0], [2], [2], [2, 3], [2, 3]]
    bridged = frames[3][0]['box'][0]
    assert abs(bridged - 13) < 1e-3  # the gap lies on the track's line
    # Face A stops at frame 7, before the cut: frame 8 starts track 2 although the boxes overlap; face B's
    # return after 4 missed frames (more than max_missed) is a new track too.
    assert tracker.tracks[0].last == 7 and tracker.tracks[2].first == 8 and tracker.tracks[1].last == 5


def test_scene_cut_detector(photo, data_dir):
    other = cv2.imread(str(data_dir / 'whole_imgs' / 'Blake_Lively.jpg'))
    other = cv2.resize(other, (photo.shape[1], photo.shape[0]))
    frames = noisy_pan(photo, 4, 1.5) + [np.clip(other + np.random.default_rng(0).normal(0, 4, other.shape), 0,
                                                 255).astype(np.uint8) for _ in range(2)]
    detector = SceneCutDetector()
    assert [detector.is_cut(f) for f in frames] == [False, False, False, False, True, False]


def test_audio_survives_a_round_trip_with_exact_timestamps(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(15)]
    src = make_clip(tmp_path / 'src.mp4', frames, fps=25, audio=True)
    info = probe(src)
    assert (info.fps, info.frames, info.has_audio, info.width, info.height) == (25, 15, True, 64, 48)
    decoded = list(read_frames(src))
    odd = [(cv2.resize(img, (65, 49)), pts) for img, pts in decoded]  # odd sides: 4:4:4 keeps them
    dst = tmp_path / 'out' / 'dst.mp4'
    assert write_video(dst, odd, info) == 15
    out = probe(dst)
    assert (out.fps, out.frames, out.width, out.height) == (25, 15, 65, 49)
    assert video_pts(dst) == [p for _, p in decoded]
    assert audio_packets(dst) == audio_packets(src) and len(audio_packets(src)) > 5
    assert [p.name for p in dst.parent.iterdir()] == ['dst.mp4']  # no temporary file left behind


def test_rotated_phone_clip_is_read_upright(photo, tmp_path):
    if not hasattr(av.video.stream.VideoStream, 'set_display_rotation'):
        pytest.skip(f'PyAV {av.__version__} cannot write a display rotation (PyAV >= 18 can)')
    upright = noisy_pan(photo, 3, 0.0, sigma=0.0)
    src = make_clip(tmp_path / 'phone.mp4', [np.ascontiguousarray(np.rot90(f, -1)) for f in upright], rotation=90)
    decoded = [img for img, _ in read_frames(src)]
    assert decoded[0].shape == upright[0].shape
    assert np.abs(decoded[0].astype(np.float32) - upright[0]).mean() < 5  # codec loss only (4:2:0, crf 23)
    assert np.abs(decoded[0].astype(np.float32) - upright[0][::-1, ::-1]).mean() > 20  # not upside down


def test_variable_rate_detection():
    assert not is_variable_rate([0, 512, 1024, 1536, 2048])
    assert is_variable_rate([0, 512, 1024, 2048, 2560])


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('weights') / 'tiny_gfpgan.pth'
    save_tiny_generator(path)
    return path


def test_enhance_video_api(tiny_ckpt, photo, tmp_path):
    src = make_clip(tmp_path / 'clip.mp4', noisy_pan(photo, 10, 1.5), audio=True)
    restorer = GFPGANer(str(tiny_ckpt), upscale=2, device='cpu', batch_size=4)
    batches, generator = [], restorer._generator

    def counting(x, **kwargs):
        batches.append(len(x))
        return generator(x, **kwargs)

    restorer._generator = counting
    result = restorer.enhance_video(src, tmp_path / 'out' / 'clip.mp4', motion_noise=0.05)
    assert batches == [4, 4, 2]  # one face per frame: faces of 4 frames per network call
    assert (result.frames, result.faces, result.tracks, result.scene_cuts, result.has_audio, result.copied) == (
        10, 10, 1, 0, True, False)
    info = probe(result.dst)
    assert (info.frames, info.fps, info.width, info.height) == (10, 25, 2 * probe(src).width, 2 * probe(src).height)
    fps, faces = read_faces_json(result.faces_json)
    assert fps == 25.0 and len(faces) == 10 and all(len(f) == 1 and f[0]['track'] == 0 for f in faces)
    doc = json.loads(result.faces_json.read_text())
    assert set(doc) == {'fps', 'frames'} and set(doc['frames'][0]) == {'index', 'faces'}
    assert set(doc['frames'][0]['faces'][0]) == {'track', 'box', 'landmarks'}
    # Outside the crop square that faces.json's landmarks align, the frame is the plain resize (up to the
    # codec's loss); inside, the restored face.
    first = cv2.blur(next(read_frames(result.dst))[0], (9, 9)).astype(np.float32)  # blur: compare past the
    plain = cv2.blur(cv2.resize(next(read_frames(src))[0], (info.width, info.height),  # noise H.264 drops
                                interpolation=cv2.INTER_LANCZOS4), (9, 9))
    inv = inverse_affine(estimate_alignment(faces[0][0]['landmarks'], 512), 2)
    corners = np.array([[0, 0], [512, 0], [512, 512], [0, 512]], np.float64) @ inv[:, :2].T + inv[:, 2]
    square = np.zeros(first.shape[:2], np.uint8)
    cv2.fillConvexPoly(square, np.round(corners).astype(np.int32), 1)
    outside = cv2.dilate(square, np.ones((25, 25), np.uint8)) == 0
    inside = cv2.erode(square, np.ones((25, 25), np.uint8)) == 1
    assert outside.mean() > 0.05 and inside.mean() > 0.2
    assert np.abs(first - plain)[outside].mean() < 2
    assert np.abs(first - plain)[inside].mean() > 10
    with pytest.raises(TypeError, match='motion_nois'):
        restorer.enhance_video(src, tmp_path / 'x.mp4', motion_nois=0.1)
    with pytest.raises(ValueError, match='crf must be in'):
        restorer.enhance_video(src, tmp_path / 'x.mp4', crf=70)

    class Cancelled(Exception):
        pass

    def cancel(stage: str, done: int, total: int) -> None:
        seen.append((stage, done, total))
        if stage == 'restoring' and done == 3:
            raise Cancelled

    seen: list = []
    with pytest.raises(Cancelled):
        restorer.enhance_video(src, tmp_path / 'cancelled' / 'clip.mp4', progress=cancel)
    assert seen[:2] == [('tracking', 1, 10), ('tracking', 2, 10)] and seen[-1] == ('restoring', 3, 10)
    assert not any((tmp_path / 'cancelled').iterdir())  # no temporary file left behind


@pytest.fixture(scope='module')
def video_folder(tmp_path_factory, photo) -> Path:
    folder = tmp_path_factory.mktemp('videos')
    make_clip(folder / 'clip.mp4', noisy_pan(photo, 8, 1.0), audio=True)
    blank = [np.full((64, 96, 3), 90 + i, np.uint8) for i in range(6)]
    make_clip(folder / 'blank.mp4', blank)
    make_clip(folder / 'vfr.mkv', noisy_pan(photo, 6, 0.0), pts=[0, 1, 2, 4, 5, 8])
    data = (folder / 'clip.mp4').read_bytes()
    (folder / 'truncated.mp4').write_bytes(data[:len(data) // 2])
    (folder / 'empty.mp4').write_bytes(b'')
    zero = av.open(str(folder / 'zero.mov'), 'w')
    stream = zero.add_stream('libx264', rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 64, 'yuv420p'
    zero.start_encoding()
    zero.close()
    cv2.imwrite(str(folder / 'still.png'), photo)
    return folder


def test_cli_restores_videos_beside_images_and_reports_bad_ones(tiny_ckpt, video_folder, tmp_path, capsys):
    out = tmp_path / 'results'
    code = inference_gfpgan.main(['-i', str(video_folder), '-o', str(out), '--model_path', str(tiny_ckpt),
                                  '--device', 'cpu', '-s', '1'])
    stdout, stderr = capsys.readouterr()
    assert code == 1
    assert 'Done: 1 images, 6 videos, ' in stdout and '3 failed' in stdout
    assert f'{video_folder / "truncated.mp4"}: not a readable video' in stdout
    assert f'{video_folder / "empty.mp4"}: not a readable video' in stdout
    assert f'{video_folder / "zero.mov"}: holds no video frames' in stdout
    assert f'note: no face found in {video_folder / "blank.mp4"}; copied it unchanged' in stderr
    assert f'note: {video_folder / "vfr.mkv"} has a variable frame rate' in stderr
    assert 'frames/s' in stderr  # the progress bar's rate
    videos = out / 'restored_videos'
    assert sorted(p.name for p in videos.iterdir()) == [
        'blank.faces.json', 'blank.mp4', 'clip.faces.json', 'clip.mp4', 'vfr.faces.json', 'vfr.mkv']
    assert (videos / 'blank.mp4').read_bytes() == (video_folder / 'blank.mp4').read_bytes()
    clip, restored = probe(video_folder / 'clip.mp4'), probe(videos / 'clip.mp4')
    assert (restored.frames, restored.fps, restored.width, restored.height) == (8, clip.fps, clip.width, clip.height)
    assert audio_packets(videos / 'clip.mp4') == audio_packets(video_folder / 'clip.mp4')
    assert video_pts(videos / 'vfr.mkv') == video_pts(video_folder / 'vfr.mkv')
    assert (out / 'restored_imgs' / 'still.png').is_file()
    code = inference_gfpgan.main(['-i', str(video_folder / 'clip.mp4'), '-o', str(tmp_path / 'aligned'),
                                  '--model_path', str(tiny_ckpt), '--device', 'cpu', '--aligned'])
    assert code == 1 and '--aligned takes aligned face crops, not videos' in capsys.readouterr().out


def test_truncated_video_that_opens_fails_clearly(photo, tmp_path):
    src = make_clip(tmp_path / 'clip.mp4', noisy_pan(photo, 12, 0.0))
    faststart = tmp_path / 'faststart.mp4'  # index first, so the cut file still opens
    with av.open(str(src)) as inp, av.open(str(faststart), 'w', options={'movflags': 'faststart'}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    data = faststart.read_bytes()
    restorer = GFPGANer(None, net=_tiny_net(), upscale=1, device='cpu')
    for fraction in (0.5, 0.9):  # cut in the first frame (decoding fails) or later (fewer frames than listed)
        cut = tmp_path / f'cut{fraction}.mp4'
        cut.write_bytes(data[:int(len(data) * fraction)])
        with pytest.raises(VideoError, match=rf'cut{fraction}\.mp4: truncated or damaged: .* frames'):
            restorer.enhance_video(cut, tmp_path / 'out' / cut.name)
    assert not (tmp_path / 'out').exists() or not any((tmp_path / 'out').iterdir())


def _tiny_net():
    from test_restorer import TINY

    from gfpgan.archs import build_network

    return build_network(TINY)


def test_scene_cut_starts_new_tracks_in_the_first_pass(tiny_ckpt, photo, data_dir, tmp_path):
    other = cv2.imread(str(data_dir / 'whole_imgs' / 'Blake_Lively.jpg'))[:, 380:]  # one face
    other = cv2.resize(other, (photo.shape[1] // 2 * 2, photo.shape[0] // 2 * 2))
    shot_a = noisy_pan(photo, 4, 0.0)
    shot_b = [np.clip(other + np.random.default_rng(i).normal(0, 4, other.shape), 0, 255).astype(np.uint8)
              for i in range(4)]
    src = make_clip(tmp_path / 'cut.mp4', [cv2.resize(f, (other.shape[1], other.shape[0])) for f in shot_a] + shot_b)
    restorer = GFPGANer(str(tiny_ckpt), upscale=1, device='cpu')
    video = VideoRestorer(restorer)
    faces, stamps, n_tracks, n_cuts = video.track(src, probe(src))
    assert (len(stamps), n_tracks, n_cuts) == (8, 2, 1)
    assert [[f['track'] for f in frame] for frame in faces] == [[0]] * 4 + [[1]] * 4
