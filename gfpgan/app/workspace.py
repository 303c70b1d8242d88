"""The app's private temporary folder: uploads, gradio's cache and results live there, and only there.

Created fresh at start (mode 0700), swept of results older than `max_age_s` as requests come in, and
removed whole when the app stops, so photos people upload do not outlive the session.
"""
from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path


class Workspace:
    """`root/gradio` is gradio's upload and cache folder (GRADIO_TEMP_DIR); `root/results/<id>` one request's files."""

    def __init__(self, max_age_s: float = 3600.0, parent: str | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix='gfpgan-app-', dir=parent)).resolve()
        self.max_age_s = max_age_s
        self.gradio_dir = self.root / 'gradio'
        self.results_dir = self.root / 'results'
        self.gradio_dir.mkdir()
        self.results_dir.mkdir()

    def new_request_dir(self) -> Path:
        """A fresh folder for one request's results (older request folders are removed first)."""
        self.sweep()
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
            except FileNotFoundError:  # another request swept it first
                continue

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
