"""One restorer service shared by every request of the app: each model is loaded once.

A model choice (a release version, or a local weight file named on the command line) is loaded
the first time a request needs it and kept; requests then borrow a `GFPGANer` built around that one
network. `GFPGANer.enhance` keeps per-image state in its face helper, so two requests running at once
(the queue's concurrency) each borrow their own wrapper; the wrappers share the network's weights,
so memory grows by one face detector per concurrent request, not by one model.
"""
from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from gfpgan.face.weights import load_file_from_url
from gfpgan.restorer import ARCH_TYPES, MODEL_VERSIONS, GFPGANer


class ModelError(RuntimeError):
    """A model that cannot be loaded (missing or unreadable weights); the message says what to do."""


@dataclass(frozen=True)
class LocalModel:
    """A weight file the operator named on the command line, with the arch it holds."""

    path: str
    arch: str = 'clean'
    channel_multiplier: int = 2

    @property
    def label(self) -> str:
        return f'local: {Path(self.path).name}'


@dataclass
class Restored:
    """One restored photo: the input (BGR), the restored whole image (None for aligned input), the faces."""

    image: np.ndarray
    restored: np.ndarray | None
    cropped_faces: list[np.ndarray]
    restored_faces: list[np.ndarray]

    @property
    def result(self) -> np.ndarray:
        """The image to show and download: the pasted-back photo, or the restored face of an aligned crop."""
        if self.restored is not None:
            return self.restored
        if not self.restored_faces:
            raise ValueError('Nothing was restored.')
        return self.restored_faces[0]


def default_device_and_dtype(device: str | None, dtype: str | None) -> tuple[str, str]:
    """CUDA with bf16 when a GPU is there (and supports it), else the CPU in fp32; explicit values win."""
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if dtype is None:
        on_gpu = device.startswith('cuda')
        dtype = 'bf16' if on_gpu and torch.cuda.is_bf16_supported() else 'fp32'
    return device, dtype


class RestorerService:
    """Load-once models and per-request `GFPGANer` wrappers around them.

    Args:
        local_models: weight files offered besides the release versions (shown first).
        weights_dir: where release weights are looked up (see `gfpgan.face.weights`).
        device / dtype: None picks CUDA + bf16 when present, else CPU + fp32.
        detector: face detector name for whole photos ('dlib' works offline).
        max_idle: idle wrappers kept (each holds a face detector); the least recently used go first, so
            API callers sending many different upscales cannot grow memory without bound.
    """

    def __init__(self, local_models: list[LocalModel] | None = None, weights_dir: str | None = None,
                 device: str | None = None, dtype: str | None = None, detector: str = 'dlib',
                 max_idle: int = 8) -> None:
        self.local_models = {m.label: m for m in local_models or []}
        for model in self.local_models.values():
            if model.arch not in ARCH_TYPES:
                raise ValueError(f"{model.path}: unknown arch {model.arch!r}; choose one of {', '.join(ARCH_TYPES)}.")
            if not Path(model.path).is_file():
                raise FileNotFoundError(f'--model_path {model.path} does not exist.')
        self.weights_dir = weights_dir
        self.device, self.dtype = default_device_and_dtype(device, dtype)
        self.detector = detector
        self._nets: dict[str, GFPGANer] = {}
        self.max_idle = max_idle
        self._idle: OrderedDict[tuple[str, float], list[GFPGANer]] = OrderedDict()
        self._lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self.loads = 0  # networks loaded from disk so far (one per model choice)

    @property
    def choices(self) -> list[str]:
        """Model choices for the page: local files first, then the release versions."""
        return [*self.local_models, *MODEL_VERSIONS]

    @property
    def default_choice(self) -> str:
        return next(iter(self.local_models), '1.4')

    def _model_file(self, choice: str) -> tuple[str, str, int]:
        if choice in self.local_models:
            model = self.local_models[choice]
            return model.path, model.arch, model.channel_multiplier
        if choice not in MODEL_VERSIONS:
            raise ModelError(f"Unknown model {choice!r}; choose one of {', '.join(self.choices)}.")
        arch, channel_multiplier, url = MODEL_VERSIONS[choice]
        try:
            return load_file_from_url(url, self.weights_dir), arch, channel_multiplier
        except FileNotFoundError as err:
            raise ModelError(f'Model {choice}: {err}') from err

    def _loaded(self, choice: str) -> GFPGANer:
        """The first restorer of `choice`, which owns its network (loaded from disk once)."""
        with self._load_locks[choice]:  # two first requests for one model load it once
            if choice not in self._nets:
                path, arch, channel_multiplier = self._model_file(choice)
                try:
                    self._nets[choice] = GFPGANer(path, upscale=1, arch=arch, channel_multiplier=channel_multiplier,
                                                  device=self.device, dtype=self.dtype, detector=self.detector,
                                                  weights_dir=self.weights_dir)
                except (OSError, RuntimeError, KeyError, ValueError) as err:
                    raise ModelError(f'Model {choice} ({path}) could not be loaded: {err}') from err
                self.loads += 1
            return self._nets[choice]

    @contextmanager
    def restorer(self, choice: str, upscale: float) -> Iterator[GFPGANer]:
        """Borrow a restorer of `choice` at `upscale` for one request (built around the shared network)."""
        if upscale <= 0:
            raise ValueError(f'upscale must be > 0, got {upscale}.')
        key = (choice, float(upscale))
        with self._lock:
            restorer = self._idle[key].pop() if self._idle.get(key) else None
        if restorer is None:
            owner = self._loaded(choice)
            restorer = GFPGANer(None, upscale=upscale, net=owner.gfpgan, net_opt={'out_size': owner.out_size},
                                device=self.device, dtype=self.dtype, detector=self.detector,
                                weights_dir=self.weights_dir)
        try:
            yield restorer
        finally:
            with self._lock:
                self._idle.setdefault(key, []).append(restorer)
                self._idle.move_to_end(key)
                while sum(map(len, self._idle.values())) > self.max_idle:
                    oldest = next(iter(self._idle))
                    self._idle[oldest].pop(0)
                    if not self._idle[oldest]:
                        del self._idle[oldest]

    def restore(self, image: np.ndarray, choice: str, upscale: float = 2, weight: float = 1.0,
                only_center_face: bool = False, aligned: bool = False) -> Restored:
        """Restore the faces of one BGR uint8 image (an aligned face crop when `aligned`)."""
        with self.restorer(choice, upscale) as restorer:
            cropped, faces, whole = restorer.enhance(image, has_aligned=aligned, only_center_face=only_center_face,
                                                     paste_back=True, weight=weight)
        return Restored(image, whole, list(cropped), list(faces))
