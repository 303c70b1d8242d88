"""One restorer service shared by every request of the app: each model is loaded and prepared once.

A model choice (a release version, or a local weight file named on the command line) is loaded
the first time a request needs it and kept; requests then borrow a `GFPGANer` wrapper around that one
already-prepared network. `GFPGANer.enhance` keeps per-image state in its face helper, so two requests
running at once each borrow their own wrapper. There are never more than `concurrency` wrappers (each
holds one face detector, ~100 MB for dlib's landmark model): a request for another model takes over an
idle wrapper's detector, a request over the limit waits for one to come back, and the upscale is set on
the borrowed wrapper per request.
"""
from __future__ import annotations

import copy
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from gfpgan.face.face_restore_helper import FaceRestoreHelper
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
    """Load-once models and the pool of per-request `GFPGANer` wrappers around them.

    Args:
        local_models: weight files offered besides the release versions (shown first).
        weights_dir: where release weights are looked up (see `gfpgan.face.weights`).
        device / dtype: None picks CUDA + bf16 when present, else CPU + fp32.
        detector: face detector name for whole photos ('dlib' works offline).
        concurrency: wrappers (so face detectors) that may exist at once, over all models; a request
            beyond it waits until one is returned. The app passes its `--concurrency`.
    """

    def __init__(self, local_models: list[LocalModel] | None = None, weights_dir: str | None = None,
                 device: str | None = None, dtype: str | None = None, detector: str = 'dlib',
                 concurrency: int = 1) -> None:
        self.local_models = {m.label: m for m in local_models or []}
        for model in self.local_models.values():
            if model.arch not in ARCH_TYPES:
                raise ValueError(f"{model.path}: unknown arch {model.arch!r}; choose one of {', '.join(ARCH_TYPES)}.")
            if not Path(model.path).is_file():
                raise FileNotFoundError(f'--model_path {model.path} does not exist.')
        if concurrency < 1:
            raise ValueError(f'concurrency must be >= 1, got {concurrency}.')
        self.weights_dir = weights_dir
        self.device, self.dtype = default_device_and_dtype(device, dtype)
        self.detector = detector
        self.concurrency = concurrency
        self._nets: dict[str, GFPGANer] = {}  # the loaded network of each choice (its own helper unused)
        self._idle: dict[str, list[GFPGANer]] = {}  # returned wrappers, per choice
        self.wrappers = 0  # wrappers that exist (idle or borrowed), at most `concurrency`
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)
        self._load_locks: dict[str, threading.Lock] = {}
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
        """The restorer that owns `choice`'s network, loaded from disk and prepared once."""
        with self._lock:
            load_lock = self._load_locks.setdefault(choice, threading.Lock())
        with load_lock:  # two first requests for one model load it once
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

    def _take(self, choice: str) -> tuple[GFPGANer | None, object]:
        """An idle wrapper of `choice`, else (None, the detector to reuse or the detector name) once a
        wrapper may be made; waits while `concurrency` wrappers are all borrowed."""
        with self._returned:
            while True:
                if self._idle.get(choice):
                    return self._idle[choice].pop(), None
                if self.wrappers < self.concurrency:
                    self.wrappers += 1
                    return None, self.detector
                other = next((c for c, idle in self._idle.items() if idle), None)
                if other is not None:  # an idle wrapper of another model gives its detector up
                    return None, self._idle[other].pop().face_helper._detector  # built, or still a name
                self._returned.wait()

    def _wrap(self, owner: GFPGANer, detector: object) -> GFPGANer:
        """A wrapper sharing `owner`'s prepared network (a shallow copy: no second prepare_for_inference)
        with a face helper of its own around `detector`."""
        wrapper = copy.copy(owner)
        wrapper.face_helper = FaceRestoreHelper(owner.upscale, face_size=owner.face_size, detector=detector,
                                                weights_folder=self.weights_dir, parser=owner.face_helper.parser)
        return wrapper

    @contextmanager
    def restorer(self, choice: str, upscale: float) -> Iterator[GFPGANer]:
        """Borrow a restorer of `choice` set to `upscale` for one request (built around the shared network)."""
        if upscale <= 0:
            raise ValueError(f'upscale must be > 0, got {upscale}.')
        owner = self._loaded(choice)
        restorer, detector = self._take(choice)
        try:
            if restorer is None:
                restorer = self._wrap(owner, detector)
            restorer.upscale = upscale
            restorer.face_helper.set_upscale_factor(upscale)
        except BaseException:
            with self._returned:
                self.wrappers -= 1
                self._returned.notify()
            raise
        try:
            yield restorer
        finally:
            restorer.face_helper.clean_all()  # the request's image is not kept while idle
            with self._returned:
                self._idle.setdefault(choice, []).append(restorer)
                self._returned.notify()

    def restore(self, image: np.ndarray, choice: str, upscale: float = 2, weight: float = 1.0,
                only_center_face: bool = False, aligned: bool = False) -> Restored:
        """Restore the faces of one BGR uint8 image (an aligned face crop when `aligned`)."""
        with self.restorer(choice, upscale) as restorer:
            cropped, faces, whole = restorer.enhance(image, has_aligned=aligned, only_center_face=only_center_face,
                                                     paste_back=True, weight=weight)
        return Restored(image, whole, list(cropped), list(faces))
