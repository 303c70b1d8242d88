"""Read -> detect -> align -> (the caller restores) -> inverse-warp -> blend: one image's face pipeline.

The constructor arguments, methods and attributes are facexlib's `FaceRestoreHelper` ones (`upscale_factor`,
`det_model`, `use_parse`, `model_rootpath`, `save_ext`; `all_landmarks_5`, `det_faces`, `affine_matrices`,
`cropped_faces`, `restored_faces`, `face_det`, `face_parse`, ...), so scripts written against facexlib run
with `from gfpgan.utils import FaceRestoreHelper`. Each step is also a plain function in `alignment` /
`paste`. Differences from facexlib: the default detector is dlib's (offline; `det_model='retinaface_resnet50'`
loads facexlib's RetinaFace file), crops are square (`crop_ratio` (1, 1)), `template_3points` and `pad_blur`
are not offered (each raises), faces with eyes closer than 5 px are dropped unless `eye_dist_threshold`
says otherwise, and the inverse warp is exact for any upscale (see `alignment.inverse_affine`).
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from gfpgan.face.alignment import estimate_alignment, face_template, inverse_affine, warp_face
from gfpgan.face.detection import DetectedFace, FaceDetector, build_detector
from gfpgan.face.paste import paste_face
from gfpgan.utils.checkpoint_io import save_checkpoint
from gfpgan.utils.image_io import imread, imwrite, to_bgr

# facexlib's det_model names -> this project's detectors
DET_MODELS = {'dlib': 'dlib', 'retinaface': 'retinaface', 'retinaface_resnet50': 'retinaface'}
BORDER_MODES = {'constant': cv2.BORDER_CONSTANT, 'reflect101': cv2.BORDER_REFLECT101, 'reflect': cv2.BORDER_REFLECT}


def _one_of(ours, theirs, our_name: str, their_name: str):
    """The value of a setting that has this project's name and facexlib's; giving both differently is an error."""
    if ours is not None and theirs is not None and ours != theirs:
        raise ValueError(f'FaceRestoreHelper: {our_name}={ours!r} and {their_name}={theirs!r} name the same setting; '
                         'give one of them.')
    return ours if ours is not None else theirs


class FaceRestoreHelper:
    """Holds one image and its faces through the restore pipeline.

    Args (facexlib's, in facexlib's order):
        upscale_factor: output size / input size; faces are pasted into the input enlarged this much.
        face_size: side of the aligned crops (512 for the FFHQ template GFPGAN is trained on).
        crop_ratio: (h, w) crop ratio; only (1, 1): GFPGAN-family networks take square crops.
        det_model: 'dlib' (default, offline) or 'retinaface_resnet50' / 'retinaface' (facexlib's
            `detection_Resnet50_Final.pth` in the weights folder).
        save_ext: extension of the files the `save_*` arguments write.
        template_3points, pad_blur: must stay False (not offered here).
        use_parse: blend with a ParseNet face mask (`parsing_parsenet.pth` in the weights folder).
        device: where RetinaFace and ParseNet run (default: CUDA when present).
        model_rootpath: the weights folder (see `gfpgan.face.weights`).
    This project's names (keywords): `detector` (a `FaceDetector` or a name; same as det_model),
    `min_eye_distance` (default eye-distance threshold, 5 px as upstream GFPGAN passes), `parser`
    (any callable crop -> float mask), `weights_folder` (same as model_rootpath).
    """

    def __init__(self, upscale_factor: float = 2, face_size: int = 512, crop_ratio: tuple = (1, 1),
                 det_model: str | None = None, save_ext: str = 'png', template_3points: bool = False,
                 pad_blur: bool = False, use_parse: bool = False, device=None,
                 model_rootpath: str | os.PathLike | None = None, *, detector: FaceDetector | str | None = None,
                 min_eye_distance: float = 5.0, parser=None, weights_folder: str | os.PathLike | None = None) -> None:
        if upscale_factor <= 0:
            raise ValueError(f'upscale must be > 0, got {upscale_factor}.')
        if tuple(crop_ratio) != (1, 1):
            raise ValueError(f'FaceRestoreHelper: crop_ratio {tuple(crop_ratio)} is not supported; only (1, 1) '
                             '(square crops, what every GFPGAN-family network takes).')
        for name, value in (('template_3points', template_3points), ('pad_blur', pad_blur)):
            if value:
                raise ValueError(f'FaceRestoreHelper: {name}=True is not supported; the crops follow the '
                                 'five-point FFHQ template of the input image as it is.')
        if det_model is not None and det_model not in DET_MODELS:
            raise ValueError(f'FaceRestoreHelper: unknown det_model {det_model!r}; choose one of '
                             f'{", ".join(DET_MODELS)}.')
        self.upscale = upscale_factor
        self.face_size = face_size
        self.crop_ratio = (1, 1)
        self.save_ext = save_ext
        self.template_3points = self.pad_blur = False
        self.face_template = face_template(face_size)
        self.device = device
        self._weights_folder = _one_of(weights_folder, model_rootpath, 'weights_folder', 'model_rootpath')
        # a name is built on first use: aligned-only runs never load a detector
        self._detector = _one_of(detector, DET_MODELS.get(det_model), 'detector', 'det_model') or 'dlib'
        self.min_eye_distance = min_eye_distance
        if parser is None and use_parse:
            from gfpgan.face.parsing import FaceParser

            parser = FaceParser(weights_folder=self._weights_folder, device=device)
        self.parser = parser
        self.clean_all()

    # facexlib's names for the same state
    @property
    def upscale_factor(self) -> float:
        return self.upscale

    @upscale_factor.setter
    def upscale_factor(self, value: float) -> None:
        self.upscale = value

    def set_upscale_factor(self, upscale_factor: float) -> None:
        self.upscale = upscale_factor

    @property
    def use_parse(self) -> bool:
        return self.parser is not None

    @property
    def face_parse(self):
        return self.parser

    @property
    def detector(self) -> FaceDetector:
        if isinstance(self._detector, str):
            self._detector = build_detector(self._detector, self._weights_folder, self.device)
        return self._detector

    face_det = detector

    def clean_all(self) -> None:
        self.input_img: np.ndarray | None = None
        self.faces: list[DetectedFace] = []
        self.all_landmarks_5: list[np.ndarray] = []
        self.det_faces: list[np.ndarray] = []
        self.affine_matrices: list[np.ndarray] = []
        self.inverse_affine_matrices: list[np.ndarray] = []
        self.cropped_faces: list[np.ndarray] = []
        self.restored_faces: list[np.ndarray] = []
        self.pad_input_imgs: list[np.ndarray] = []  # facexlib's pad_blur inputs: always empty here

    def read_image(self, img: np.ndarray | str | os.PathLike) -> None:
        """Take an image file path or a decoded image (gray, BGRA, 16-bit, float) and keep it as BGR uint8."""
        self.input_img = imread(img) if isinstance(img, (str, os.PathLike)) else to_bgr(img)

    def get_face_landmarks_5(self, only_keep_largest: bool = False, only_center_face: bool = False,
                             resize: int | None = None, blur_ratio: float = 0.01,
                             eye_dist_threshold: float | None = None) -> int:
        """Detect faces and their five landmarks; return how many are kept.

        Faces with eyes closer than `eye_dist_threshold` (default `min_eye_distance`) are dropped; the
        rest are ordered left to right, or reduced to the largest / the most central one. `resize`
        detects on an enlarged copy whose short side is `resize` px when the image is smaller (as facexlib:
        never shrunk; coordinates are scaled back). `blur_ratio`
        belongs to facexlib's pad_blur, which is not offered, so it changes nothing.
        """
        if self.input_img is None:
            raise RuntimeError('Call read_image() before get_face_landmarks_5().')
        img, scale = self.input_img, 1.0
        if resize:  # facexlib only enlarges (small faces get found); a big image is detected as it is
            h, w = img.shape[:2]
            scale = max(1.0, resize / min(h, w))
            if scale > 1:
                img = cv2.resize(img, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_LINEAR)
        faces = [DetectedFace(f.box / scale, f.landmarks / scale, f.score) for f in self.detector.detect(img)]
        threshold = self.min_eye_distance if eye_dist_threshold is None else eye_dist_threshold
        faces = [f for f in faces if np.linalg.norm(f.landmarks[0] - f.landmarks[1]) >= threshold]
        faces.sort(key=lambda f: (f.box[0], f.box[1]))  # left to right: stable output names
        h, w = self.input_img.shape[:2]
        if only_keep_largest and faces:
            def area(f: DetectedFace) -> float:
                x1, y1, x2, y2 = np.clip(f.box, 0, [w, h, w, h])
                return (x2 - x1) * (y2 - y1)
            faces = [max(faces, key=area)]
        elif only_center_face and len(faces) > 1:
            centre = np.array([w / 2, h / 2])
            faces = [min(faces, key=lambda f: np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre))]
        self.set_faces(faces)
        return len(faces)

    def set_faces(self, faces: list[DetectedFace]) -> None:
        """Use `faces` (detected here, or given: e.g. landmarks smoothed over video frames) for alignment."""
        self.faces = list(faces)
        self.all_landmarks_5 = [np.array(f.landmarks, np.float32) for f in self.faces]
        self.det_faces = [np.append(f.box, f.score).astype(np.float32) for f in self.faces]  # x1, y1, x2, y2, score

    def align_warp_face(self, save_cropped_path: str | os.PathLike | None = None,
                        border_mode: str = 'constant') -> list[np.ndarray]:
        """Cut one aligned `face_size` crop per entry of `all_landmarks_5` (which a caller may edit first).

        With `save_cropped_path`, crop i is also written to `<path without extension>_<i:02d>.<save_ext>`.
        """
        if border_mode not in BORDER_MODES:
            raise ValueError(f'border_mode must be one of {", ".join(BORDER_MODES)}, got {border_mode!r}.')
        self.affine_matrices = [estimate_alignment(lm, self.face_size) for lm in self.all_landmarks_5]
        self.cropped_faces = [warp_face(self.input_img, m, self.face_size, BORDER_MODES[border_mode])
                              for m in self.affine_matrices]
        if save_cropped_path is not None:
            stem = os.path.splitext(str(save_cropped_path))[0]
            for idx, crop in enumerate(self.cropped_faces):
                imwrite(crop, f'{stem}_{idx:02d}.{self.save_ext}')
        return self.cropped_faces

    def add_restored_face(self, face: np.ndarray) -> None:
        self.restored_faces.append(face)

    def get_inverse_affine(self, save_inverse_affine_path: str | os.PathLike | None = None) -> list[np.ndarray]:
        """Crop -> enlarged-input matrices; with a path, matrix i is saved as a float64 tensor to
        `<path without extension>_<i:02d>.pth` (loads with `torch.load(weights_only=True)`)."""
        self.inverse_affine_matrices = [inverse_affine(m, self.upscale) for m in self.affine_matrices]
        if save_inverse_affine_path is not None:
            import torch

            stem = os.path.splitext(str(save_inverse_affine_path))[0]
            for idx, inv in enumerate(self.inverse_affine_matrices):
                save_checkpoint(torch.from_numpy(np.ascontiguousarray(inv)), f'{stem}_{idx:02d}.pth')
        return self.inverse_affine_matrices

    def upscaled_size(self) -> tuple[int, int]:
        h, w = self.input_img.shape[:2]
        return max(1, round(h * self.upscale)), max(1, round(w * self.upscale))

    def paste_faces_to_input_image(self, save_path: str | os.PathLike | None = None,
                                   upsample_img: np.ndarray | None = None) -> np.ndarray:
        """Blend every restored face into the enlarged background (a plain resize unless given).

        Arguments in facexlib's order; with `save_path` the result is also written to
        `<path without extension>.<save_ext>`.
        """
        if save_path is not None and not isinstance(save_path, (str, os.PathLike)):
            raise TypeError(f'paste_faces_to_input_image: save_path must be a file path, got a '
                            f'{type(save_path).__name__}; pass the background as upsample_img=.')
        if len(self.restored_faces) != len(self.affine_matrices):
            raise RuntimeError(f'{len(self.restored_faces)} restored faces for {len(self.affine_matrices)} detected '
                               'faces; add one restored face per cropped face.')
        out_h, out_w = self.upscaled_size()
        if upsample_img is None:
            upsample_img = cv2.resize(self.input_img, (out_w, out_h), interpolation=cv2.INTER_LANCZOS4)
        elif upsample_img.shape[:2] != (out_h, out_w):
            upsample_img = cv2.resize(upsample_img, (out_w, out_h), interpolation=cv2.INTER_LANCZOS4)
        canvas = np.ascontiguousarray(upsample_img).copy()
        if len(self.inverse_affine_matrices) != len(self.affine_matrices):
            self.get_inverse_affine()
        for face, inv in zip(self.restored_faces, self.inverse_affine_matrices):
            mask = self.parser(face) if self.parser is not None else None
            paste_face(canvas, face, inv, mask)
        if save_path is not None:
            imwrite(canvas, f'{os.path.splitext(str(save_path))[0]}.{self.save_ext}')
        return canvas
