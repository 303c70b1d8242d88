"""GFPGAN's training data: aligned FFHQ faces as gt, a synthetic blind degradation of each as lq.

Upstream options and order (`../shared/reference/upstream-facts.md`), with upstream bugs fixed: the flip
never edits the cached component table, disk paths are sorted, JPEG quality is an integer, component
files load with `weights_only=True`, and every random draw comes from one per-sample generator.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Literal, Union

import cv2
import numpy as np
import torch
from pydantic import Field, model_validator
from torch.utils.data import Dataset

from gfpgan.data import degradations as deg
from gfpgan.data.degradations_torch import color_jitter_pt, normalize
from gfpgan.data.file_client import build_file_client, is_lmdb, paths_from_folder, read_meta_info, read_or_skip
from gfpgan.utils.image_io import imfrombytes, img2tensor
from gfpgan.utils.option_schema import ImageFilesOptions
from gfpgan.utils.registry import DATASET_REGISTRY

PARTS = ('left_eye', 'right_eye', 'mouth')


def load_components(path: str | os.PathLike) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Read an eye/mouth landmark file: `{key: {part: (cx, cy, half_len)}}` as plain floats.

    `.json` files are read as JSON; others with `torch.load(weights_only=True)`, allowing only the numpy
    scalar/array types upstream's files contain (its values are numpy float64).
    """
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Component file {path} not found; make one with scripts/make_component_landmarks.py.')
    if path.endswith('.json'):
        with open(path) as f:
            raw = json.load(f)
    else:
        core = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
        allowed = [(core.scalar, 'numpy.core.multiarray.scalar'), core.scalar, np.dtype,
                   (core._reconstruct, 'numpy.core.multiarray._reconstruct'), core._reconstruct, np.ndarray]
        allowed += [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32)]
        try:
            with torch.serialization.safe_globals(allowed):
                raw = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as err:
            raise RuntimeError(f'Could not load component file {path} safely: {err}. It must map keys to '
                               '{left_eye|right_eye|mouth: [cx, cy, half_len]} (numbers, arrays or tensors).') from err
    try:
        return {str(k): {p: tuple(float(x) for x in v[p][:3]) for p in PARTS} for k, v in raw.items()}
    except (KeyError, TypeError, AttributeError, IndexError) as err:
        raise ValueError(f'Component file {path}: entries must hold {PARTS} as [cx, cy, half_len] ({err!r}).') from err


def component_boxes(
    comp: dict[str, tuple[float, float, float]], hflip: bool, width: float, scale: float = 1.0,
    eye_enlarge_ratio: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Boxes `[x1, y1, x2, y2] = [c - h + 1, c + h]` for `loc_left_eye`, `loc_right_eye`, `loc_mouth`.

    On a flipped image the eyes swap roles and x mirrors to `width - x` (upstream's convention), computed
    on copies. `scale` maps the file's coordinates to the output size; eyes grow by `eye_enlarge_ratio`.
    """
    left, right, mouth = comp['left_eye'], comp['right_eye'], comp['mouth']
    if hflip:
        left, right = right, left
        left, right, mouth = ((width - p[0], p[1], p[2]) for p in (left, right, mouth))
    out = {}
    for name, (cx, cy, half) in zip(PARTS, (left, right, mouth)):
        half = half * (eye_enlarge_ratio if name.endswith('eye') else 1.0) * scale
        cx, cy = cx * scale, cy * scale
        out[f'loc_{name}'] = torch.tensor([cx - half + 1, cy - half + 1, cx + half, cy + half], dtype=torch.float32)
    return out


class FFHQDegradationOptions(ImageFilesOptions):
    """Upstream's keys (defaults: upstream's train_gfpgan_v1.yml) plus `hflip_prob`, `seed`, `component_key`,
    `skip_bad_images`, `degrade_on` and `jpeg_mode`."""

    dataroot_gt: str = Field(description='folder (or .lmdb) of aligned square faces')
    out_size: int = Field(512, ge=8, description='gt/lq side; other sizes are resized to it')
    use_hflip: bool = Field(True, description='random horizontal flip (eyes swap roles)')
    hflip_prob: float = Field(0.5, ge=0, le=1, description='probability of the flip')
    seed: Union[int, None] = Field(None, description='each index always draws the same degradation (validation)')
    blur_kernel_size: int = Field(41, ge=1, description='side of the random blur kernel')
    kernel_list: list[str] = Field(['iso', 'aniso'], description='blur kernel kinds (iso, aniso)')
    kernel_prob: list[float] = Field([0.5, 0.5], description='probability of each kernel kind')
    blur_sigma: list[float] = Field([0.1, 10], min_length=2, max_length=2, description='blur sigma range')
    downsample_range: list[float] = Field([0.8, 8], min_length=2, max_length=2, description='downsampling factors')
    noise_range: Union[list[float], None] = Field([0, 20], description='Gaussian noise sigma range (0..255); none: off')
    jpeg_range: Union[list[float], None] = Field([60, 100], description='JPEG quality range; none: off')
    color_jitter_prob: Union[float, None] = Field(None, ge=0, le=1, description='probability of a color shift')
    color_jitter_shift: float = Field(20, ge=0, description='largest color shift (0..255)')
    color_jitter_pt_prob: Union[float, None] = Field(None, ge=0, le=1, description='probability of tensor jitter')
    brightness: tuple[float, float] = Field((0.5, 1.5), description='tensor color jitter: brightness range')
    contrast: tuple[float, float] = Field((0.5, 1.5), description='tensor color jitter: contrast range')
    saturation: tuple[float, float] = Field((0, 1.5), description='tensor color jitter: saturation range')
    hue: tuple[float, float] = Field((-0.1, 0.1), description='tensor color jitter: hue range')
    gray_prob: Union[float, None] = Field(None, ge=0, le=1, description='probability of a gray lq')
    gt_gray: bool = Field(False, description='make gt gray too when lq is')
    crop_components: bool = Field(False, description='return eye/mouth boxes (needs component_path)')
    component_path: Union[str, None] = Field(None, description='eye/mouth landmark file (.pth or .json)')
    component_key: Literal['name', 'index'] = Field('name', description="name: file stem; index: upstream's %08d")
    eye_enlarge_ratio: float = Field(1, gt=0, description='eye boxes grow by this factor')
    degrade_on: Literal['worker', 'device'] = Field(
        'worker', description='device: return gt only; the model degrades whole batches on its device'
    )
    jpeg_mode: Literal['opencv', 'skip'] = Field('opencv', description='degrade_on device: JPEG via OpenCV, or skip')

    @model_validator(mode='after')
    def _consistent(self) -> FFHQDegradationOptions:
        if self.crop_components and not self.component_path:
            raise ValueError('component_path: crop_components needs the eye/mouth landmark file')
        if self.degrade_on == 'device' and self.phase != 'train':
            raise ValueError('degrade_on: device degrades training batches only; validation sets degrade in workers')
        return self


@DATASET_REGISTRY.register()
class FFHQDegradationDataset(Dataset):
    """Aligned faces (gt) and their blind degradation (lq): blur, downsample, noise, JPEG, color.

    Options: `FFHQDegradationOptions` (upstream's, plus `hflip_prob`; `seed`: each index then always gets
    the same draw, for validation and tests, while without it the draw follows numpy's global RNG, which
    `SeededDataset` seeds per sample; `component_key`; `skip_bad_images`; `degrade_on: device`, which
    returns only gt in [0, 1] and boxes for the model to degrade whole batches with `GPUFFHQDegrader`).
    gt images whose size differs from `out_size` are resized to it (component boxes scaled to match).
    Returns `lq`, `gt` (RGB CHW float), `gt_path` and, with `crop_components`, the three `loc_*` boxes.
    """

    options = FFHQDegradationOptions

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.o = o = self.options.parse(opt, type(self).__name__)
        self.gt_folder = o.dataroot_gt
        self.io_backend = self.io_backend_opt = dict(o.io_backend or {'type': 'disk'})
        self.mean, self.std = o.mean, o.std
        self.out_size = o.out_size
        self.use_hflip, self.hflip_prob = o.use_hflip, o.hflip_prob
        self.kernel_size, self.kernel_list, self.kernel_prob = o.blur_kernel_size, o.kernel_list, o.kernel_prob
        self.blur_kernel_size = self.kernel_size  # upstream's name
        self.blur_sigma, self.downsample_range = o.blur_sigma, o.downsample_range
        self.noise_range, self.jpeg_range = o.noise_range, o.jpeg_range
        self.color_jitter_prob = o.color_jitter_prob
        self.color_jitter_shift = o.color_jitter_shift / 255.0
        self.color_jitter_pt_prob = o.color_jitter_pt_prob
        self.gray_prob, self.gt_gray = o.gray_prob, o.gt_gray
        self.seed = o.seed
        self.skip_bad_images = o.skip_bad_images
        self.crop_components = o.crop_components
        self.eye_enlarge_ratio = o.eye_enlarge_ratio
        self.degrade_on = o.degrade_on
        self.component_key = o.component_key
        if self.crop_components:
            self.components = self.components_list = load_components(o.component_path)  # ours, upstream's

        if not os.path.exists(self.gt_folder):
            raise FileNotFoundError(
                f'datasets: dataroot_gt {self.gt_folder} does not exist. Download FFHQ (images1024x1024 from '
                'https://github.com/NVlabs/ffhq-dataset), resize it to 512x512 and point dataroot_gt at the folder; '
                'optionally pack it with scripts/create_lmdb.py (io_backend type lmdb). The eye/mouth file for '
                'crop_components is FFHQ_eye_mouth_landmarks_512.pth from the GFPGAN release, or make it with '
                'scripts/make_component_landmarks.py.'
            )
        if is_lmdb(self.io_backend):
            if not self.gt_folder.endswith('.lmdb'):
                raise ValueError(f"'dataroot_gt' should end with '.lmdb' for the lmdb backend, got {self.gt_folder}.")
            self.paths = read_meta_info(self.gt_folder)
            self.file_client = build_file_client(self.io_backend, [self.gt_folder], ['gt'])
        else:
            self.paths = paths_from_folder(self.gt_folder)
            self.file_client = build_file_client(self.io_backend)

    def __len__(self) -> int:
        return len(self.paths)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([int(self.seed), index]) if self.seed is not None else deg.as_rng(None)

    def _read(self, index: int) -> tuple[int, np.ndarray]:
        path = self.paths[index]
        return index, imfrombytes(self.file_client.get(path, 'gt'), float32=True, source=path)

    def __getitem__(self, index: int) -> dict:
        index, img_gt = read_or_skip(self._read, index, len(self.paths), self.skip_bad_images, 'FFHQDegradationDataset')
        gt_path = self.paths[index]
        rng = self._rng(index)
        src_w = img_gt.shape[1]
        if img_gt.shape[:2] != (self.out_size, self.out_size):
            if img_gt.shape[0] != src_w:
                raise ValueError(f'{gt_path}: {img_gt.shape[0]}x{src_w} is not square; FFHQDegradationDataset takes '
                                 f'aligned square faces (resized to out_size {self.out_size}).')
            interp = cv2.INTER_AREA if self.out_size < src_w else cv2.INTER_LINEAR
            img_gt = cv2.resize(img_gt, (self.out_size, self.out_size), interpolation=interp)
        hflip = self.use_hflip and rng.random() < self.hflip_prob
        if hflip:
            img_gt = cv2.flip(img_gt, 1)  # one contiguous copy (OpenCV cannot filter a reversed view)
        h, w = img_gt.shape[:2]
        out = {}
        if self.crop_components:
            out.update(component_boxes(self._components(index, gt_path), hflip, src_w, w / src_w,
                                       self.eye_enlarge_ratio))

        if self.degrade_on == 'device':  # the model degrades the batch with GPUFFHQDegrader(dataset options)
            out['gt'], out['gt_path'] = img2tensor(img_gt, bgr2rgb=True, float32=True), gt_path
            return out
        img_lq = self._degrade(img_gt, rng)
        if self.gray_prob and rng.uniform() < self.gray_prob:
            img_lq = deg.to_gray3(img_lq)
            if self.gt_gray:
                img_gt = deg.to_gray3(img_gt)
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        if self.color_jitter_pt_prob is not None and rng.uniform() < self.color_jitter_pt_prob:
            o = self.o
            img_lq = color_jitter_pt(img_lq, o.brightness, o.contrast, o.saturation, o.hue, rng)
        img_lq = (img_lq * 255.0).round_().clamp_(0, 255).div_(255.0)
        out['lq'], out['gt'] = normalize(img_lq, self.mean, self.std), normalize(img_gt, self.mean, self.std)
        out['gt_path'] = gt_path
        return out

    def _degrade(self, img_gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Blur -> downsample -> noise -> JPEG -> resize back -> color jitter (numpy, BGR float32)."""
        h, w = img_gt.shape[:2]
        kernel = deg.random_mixed_kernels(self.kernel_list, self.kernel_prob, self.kernel_size, self.blur_sigma,
                                          self.blur_sigma, (-math.pi, math.pi), noise_range=None, rng=rng)
        img_lq = deg.filter2d(img_gt, kernel)
        scale = rng.uniform(self.downsample_range[0], self.downsample_range[1])
        img_lq = cv2.resize(img_lq, (max(1, int(w // scale)), max(1, int(h // scale))), interpolation=cv2.INTER_LINEAR)
        if self.noise_range is not None:
            img_lq = deg.random_add_gaussian_noise(img_lq, self.noise_range, rng=rng)
        if self.jpeg_range is not None:
            img_lq = deg.random_add_jpg_compression(img_lq, self.jpeg_range, rng=rng)
        img_lq = cv2.resize(img_lq, (w, h), interpolation=cv2.INTER_LINEAR)
        if self.color_jitter_prob is not None and rng.uniform() < self.color_jitter_prob:
            img_lq = deg.color_jitter(img_lq, self.color_jitter_shift, rng)
        return img_lq

    def _components(self, index: int, gt_path: str) -> dict:
        key = Path(gt_path).stem if self.component_key == 'name' else f'{index:08d}'
        try:
            return self.components[key]
        except KeyError:
            raise KeyError(f"No eye/mouth entry '{key}' for {gt_path} in {self.opt['component_path']} "
                           f"(component_key: {self.component_key}); regenerate it for this dataset with "
                           'scripts/make_component_landmarks.py.') from None
