"""Zero-lag temporal smoothing of face landmarks: a constant-velocity Kalman filter and its RTS smoother.

Every coordinate (x or y of a landmark or box corner) follows the same model: position and velocity,
moved by a random acceleration of `motion_noise` px/frame^2 and observed with `landmark_noise` px of
detector jitter. The forward Kalman pass alone would trail a moving face; the backward
Rauch-Tung-Striebel pass uses the later frames too, so a face moving at constant speed is followed with
no lag at all (constant velocity is the model's own prediction) and a still face is averaged over many
frames. Only the ratio of the two noises sets how strongly the path is smoothed; both are in input pixels.
Frames without a detection (NaN rows) are bridged by the model's prediction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SmoothingOptions:
    """`landmark_noise`: detector jitter (px, std); `motion_noise`: how fast a face may change speed
    (px/frame^2, std). Smaller `motion_noise` smooths more; 0 disables smoothing (raw detections)."""

    landmark_noise: float = 0.5
    motion_noise: float = 0.02

    def __post_init__(self) -> None:
        if not self.landmark_noise > 0:
            raise ValueError(f'landmark_noise must be > 0 px, got {self.landmark_noise}.')
        if not self.motion_noise >= 0:
            raise ValueError(f'motion_noise must be >= 0 px/frame^2 (0 = no smoothing), got {self.motion_noise}.')


def smooth_path(points: np.ndarray, options: SmoothingOptions = SmoothingOptions()) -> np.ndarray:
    """Smooth a (T, ...) array of coordinates over its first axis; NaN entries of a frame mean "not seen".

    The first and last frames must be observed (tracks start and end on a detection). Returns float64
    of the same shape.
    """
    obs = np.asarray(points, np.float64)
    shape = obs.shape
    obs = obs.reshape(len(obs), -1)
    seen = ~np.isnan(obs).any(axis=1)
    if len(obs) == 0 or not (seen[0] and seen[-1]):
        raise ValueError('smooth_path needs a path whose first and last frames are observed.')
    if options.motion_noise == 0 or len(obs) == 1:
        return _bridge(obs, seen).reshape(shape)
    n = len(obs)
    F = np.array([[1.0, 1.0], [0.0, 1.0]])
    q = options.motion_noise ** 2
    Q = q * np.array([[0.25, 0.5], [0.5, 1.0]])  # white acceleration over one frame
    r = options.landmark_noise ** 2
    # All coordinates share F, Q, r and the same observed frames, so one 2x2 covariance serves them all.
    x_pred = np.empty((n, 2, obs.shape[1]))
    x_filt = np.empty_like(x_pred)
    P_pred = np.empty((n, 2, 2))
    P_filt = np.empty_like(P_pred)
    x = np.stack([obs[0], np.zeros(obs.shape[1])])
    P = np.diag([r, 1e4])  # velocity unknown at the start: the first frames fix it
    for t in range(n):
        if t:
            x, P = F @ x, F @ P @ F.T + Q
        x_pred[t], P_pred[t] = x, P
        if seen[t]:
            gain = P[:, 0] / (P[0, 0] + r)
            x = x + gain[:, None] * (obs[t] - x[0])[None]
            P = P - np.outer(gain, P[0])
        x_filt[t], P_filt[t] = x, P
    out = np.empty((n, obs.shape[1]))
    x_s = x_filt[-1]
    out[-1] = x_s[0]
    for t in range(n - 2, -1, -1):
        C = P_filt[t] @ F.T @ np.linalg.inv(P_pred[t + 1])
        x_s = x_filt[t] + C @ (x_s - x_pred[t + 1])
        out[t] = x_s[0]
    return out.reshape(shape)


def _bridge(obs: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Unsmoothed path: detections as they are, missing frames linearly interpolated."""
    t = np.arange(len(obs))
    return np.stack([np.interp(t, t[seen], obs[seen, k]) for k in range(obs.shape[1])], axis=1)
