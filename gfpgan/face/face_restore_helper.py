"""Read -> detect -> align -> (the caller restores) -> inverse-warp -> blend: one image's face pipeline.

Method names follow upstream's `FaceRestoreHelper` so existing scripts read the same, but the state is
plain attributes and every step is also a function in `alignment` / `paste`.
"""
from __future__ import annotations

import cv2
import numpy as np

from gfpgan.face.alignment import estimate_alignment, inverse_affine, warp_face
from gfpgan.face.detection import DetectedFace, FaceDetector, build_detector
from gfpgan.face.paste import paste_face
from gfpgan.utils.image_io import to_bgr


class FaceRestoreHelper:
    """Holds one image and its faces through the restore pipeline.

    Args:
        upscale: output size / input size; faces are pasted into the input enlarged this much.
        face_size: side of the aligned crops (512 for the FFHQ template GFPGAN is trained on).
        detector: a `FaceDetector`, or a name for `build_detector` ('dlib' is offline; 'retinaface'
            needs its weight file in `weights_folder`).
        min_eye_distance: faces whose eyes are closer than this (pixels) are skipped, as upstream.
        parser: optional face parser returning a crop-space float mask (`gfpgan.face.parsing`);
            without one the crop square is blended with feathered edges.
    """

    def __init__(self, upscale: float = 2, face_size: int = 512, detector: FaceDetector | str = 'dlib',
                 min_eye_distance: float = 5.0, parser=None, weights_folder=None) -> None:
        if upscale <= 0:
            raise ValueError(f'upscale must be > 0, got {upscale}.')
        self.upscale = upscale
        self.face_size = face_size
        self._detector = detector  # a name is built on first use: aligned-only runs never load it
        self._weights_folder = weights_folder
        self.min_eye_distance = min_eye_distance
        self.parser = parser
        self.clean_all()

    @property
    def detector(self) -> FaceDetector:
        if isinstance(self._detector, str):
            self._detector = build_detector(self._detector, self._weights_folder)
        return self._detector

    def clean_all(self) -> None:
        self.input_img: np.ndarray | None = None
        self.faces: list[DetectedFace] = []
        self.affine_matrices: list[np.ndarray] = []
        self.inverse_affine_matrices: list[np.ndarray] = []
        self.cropped_faces: list[np.ndarray] = []
        self.restored_faces: list[np.ndarray] = []

    def read_image(self, img: np.ndarray) -> None:
        """Take a decoded image (any of gray, BGRA, 16-bit, float) and keep it as BGR uint8."""
        self.input_img = to_bgr(img)

    def get_face_landmarks_5(self, only_center_face: bool = False) -> int:
        """Detect faces, drop those with eyes closer than `min_eye_distance`; return how many remain."""
        if self.input_img is None:
            raise RuntimeError('Call read_image() before get_face_landmarks_5().')
        faces = [f for f in self.detector.detect(self.input_img)
                 if np.linalg.norm(f.landmarks[0] - f.landmarks[1]) >= self.min_eye_distance]
        faces.sort(key=lambda f: (f.box[0], f.box[1]))  # left to right: stable output names
        if only_center_face and len(faces) > 1:
            h, w = self.input_img.shape[:2]
            centre = np.array([w / 2, h / 2])
            faces = [min(faces, key=lambda f: np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre))]
        self.faces = faces
        return len(faces)

    def align_warp_face(self) -> list[np.ndarray]:
        """Cut one aligned `face_size` crop per detected face."""
        self.affine_matrices = [estimate_alignment(f.landmarks, self.face_size) for f in self.faces]
        self.cropped_faces = [warp_face(self.input_img, m, self.face_size) for m in self.affine_matrices]
        return self.cropped_faces

    def add_restored_face(self, face: np.ndarray) -> None:
        self.restored_faces.append(face)

    def get_inverse_affine(self) -> list[np.ndarray]:
        self.inverse_affine_matrices = [inverse_affine(m, self.upscale) for m in self.affine_matrices]
        return self.inverse_affine_matrices

    def upscaled_size(self) -> tuple[int, int]:
        h, w = self.input_img.shape[:2]
        return max(1, round(h * self.upscale)), max(1, round(w * self.upscale))

    def paste_faces_to_input_image(self, upsample_img: np.ndarray | None = None) -> np.ndarray:
        """Blend every restored face into the enlarged background (a plain resize unless given)."""
        if len(self.restored_faces) != len(self.affine_matrices):
            raise RuntimeError(f'{len(self.restored_faces)} restored faces for {len(self.affine_matrices)} detected '
                               'faces; add one restored face per cropped face.')
        out_h, out_w = self.upscaled_size()
        if upsample_img is None:
            upsample_img = cv2.resize(self.input_img, (out_w, out_h), interpolation=cv2.INTER_LANCZOS4)
        elif upsample_img.shape[:2] != (out_h, out_w):
            upsample_img = cv2.resize(upsample_img, (out_w, out_h), interpolation=cv2.INTER_LANCZOS4)
        canvas = np.ascontiguousarray(upsample_img).copy()
        if not self.inverse_affine_matrices:
            self.get_inverse_affine()
        for face, inv in zip(self.restored_faces, self.inverse_affine_matrices):
            mask = self.parser(face) if self.parser is not None else None
            paste_face(canvas, face, inv, mask)
        return canvas
