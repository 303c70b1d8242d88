"""The app's private temporary folder: uploads, gradio's cache and results live there, and only there.

Created fresh at start (mode 0700); a daemon thread sweeps result folders older than `max_age_s` every
`sweep_every_s` seconds, whether or not requests come in (gradio sweeps its own upload folder on the same
schedule: `delete_cache` in `gfpgan.app.ui`); the whole folder is removed when the app stops, so photos
people upload do not outlive the session.
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path


class Workspace:
    """`root/gradio` is gradio's upload and cache folder (GRADIO_TEMP_DIR); `root/results/<id>` one request's files.

    sweep_every_s: how often the sweeper runs (default: a tenth of `max_age_s`, between 1 s and 60 s), so a
    result is gone at most that long after it turned `max_age_s` old.
    """

    def __init__(self, max_age_s: float = 3600.0, parent: str | None = None,
                 sweep_every_s: float | None = None) -> None:
        if max_age_s <= 0:
            raise ValueError(f'max_age_s must be > 0, got {max_age_s}.')
        self.root = Path(tempfile.mkdtemp(prefix='gfpgan-app-', dir=parent)).resolve()
        self.max_age_s = max_age_s
        self.sweep_every_s = sweep_every_s or min(60.0, max(1.0, max_age_s / 10))
        self.gradio_dir = self.root / 'gradio'
        self.results_dir = self.root / 'results'
        self.gradio_dir.mkdir()
        self.results_dir.mkdir()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def new_request_dir(self) -> Path:
        """A fresh folder for one request's results."""
        folder = self.results_dir / uuid.uuid4().hex
        folder.mkdir()
        return folder

    def sweep(self) -> None:
        """Remove request folders older than `max_age_s`."""
        deadline = time.time() - self.max_age_s
        for folder in self.results_dir.iterdir():
            try:
                if folder.stat().st_mtime < deadline:
                    shutil.rmtree(folder, ignore_errors=True)
            except FileNotFoundError:  # removed meanwhile
                continue

    def start_sweeping(self) -> None:
        """Sweep every `sweep_every_s` seconds on a daemon thread until `remove()`."""
        if self._sweeper is None:
            self._sweeper = threading.Thread(target=self._sweep_loop, name='gfpgan-app-sweeper', daemon=True)
            self._sweeper.start()

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.sweep_every_s):
            try:
                self.sweep()
            except OSError:  # the folder is being removed (app stopping), or a file is busy: try next time
                continue

    def remove(self) -> None:
        """Stop the sweeper and delete the whole folder."""
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
