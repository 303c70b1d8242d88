"""Procedurally drawn colored shapes: an image distribution for GAN tests and demos that needs no files.

Every image is a pure function of (`seed`, index): the same index always gives the same picture, in
any worker or process, so FID statistics of the "real" set are reproducible and cacheable.
"""
from __future__ import annotations

from typing import Literal, Union

import cv2
import numpy as np
import torch
from pydantic import Field, model_validator
from torch.utils.data import Dataset

from gfpgan.utils.option_schema import DatasetOptions
from gfpgan.utils.registry import DATASET_REGISTRY

SHAPES = ('circle', 'square', 'triangle')


def draw_shapes(rng: np.random.Generator, size: int, shapes: tuple[str, ...], num_shapes: tuple[int, int],
                radius_range: tuple[float, float]) -> np.ndarray:
    """One RGB float32 image in [0, 1]: a two-tone vertical gradient and `num_shapes` filled shapes."""
    top, bottom = rng.uniform(0.0, 0.35, 3), rng.uniform(0.0, 0.35, 3)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    img = np.ascontiguousarray(np.broadcast_to(top * (1 - ramp) + bottom * ramp, (size, size, 3)), dtype=np.float32)
    scale = 4  # draw at 4x with sub-pixel precision, so edges are anti-aliased after shifting
    for _ in range(int(rng.integers(num_shapes[0], num_shapes[1] + 1))):
        kind = shapes[int(rng.integers(len(shapes)))]
        color = tuple(float(c) for c in rng.uniform(0.45, 1.0, 3))
        r = rng.uniform(*radius_range) * size
        cx, cy = rng.uniform(r, size - r, 2)
        if kind == 'circle':
            cv2.circle(img, (round(cx * 2 ** scale), round(cy * 2 ** scale)), round(r * 2 ** scale), color,
                       -1, cv2.LINE_AA, scale)
            continue
        if kind == 'square':
            angle = rng.uniform(0, np.pi / 2)
            corners = [angle + np.pi / 4 + k * np.pi / 2 for k in range(4)]
        elif kind == 'triangle':
            angle = rng.uniform(0, 2 * np.pi)
            corners = [angle + k * 2 * np.pi / 3 for k in range(3)]
        else:
            raise ValueError(f"SyntheticShapesDataset: unknown shape {kind!r}; choose from {', '.join(SHAPES)}.")
        pts = np.array([[cx + r * np.cos(a), cy + r * np.sin(a)] for a in corners]) * 2 ** scale
        cv2.fillPoly(img, [np.round(pts).astype(np.int32)], color, cv2.LINE_AA, scale)
    return np.clip(img, 0.0, 1.0)


class SyntheticShapesOptions(DatasetOptions):
    image_size: int = Field(32, ge=8, description='image side')
    num_samples: int = Field(1024, ge=1, description='number of images')
    seed: int = Field(0, description='image i is a pure function of (seed, i)')
    shapes: Union[list[Literal['circle', 'square', 'triangle']], None] = Field(None, description='default: all three')
    num_shapes: tuple[int, int] = Field((1, 2), description='shapes per image: [low, high]')
    radius_range: tuple[float, float] = Field((0.15, 0.3), description='radius as a fraction of the side')
    cache_in_memory: bool = Field(True, description='draw each image once per process')
    class_labels: bool = Field(False, description="return 'label': image i shows only shape i % len(shapes)")

    @model_validator(mode='after')
    def _radius(self) -> SyntheticShapesOptions:
        low, high = self.radius_range
        if not 0 < low <= high < 0.5:
            raise ValueError(f'radius_range: must satisfy 0 < low <= high < 0.5, got {list(self.radius_range)}')
        return self


@DATASET_REGISTRY.register()
class SyntheticShapesDataset(Dataset):
    """`num_samples` images of side `image_size` with 1..n colored circles/squares/triangles.

    Options: `SyntheticShapesOptions` (drawing costs ~1 ms, a tiny GAN step about as much per image, hence
    `cache_in_memory`). Returns `{'gt': RGB CHW float tensor in [0, 1], 'gt_path': 'shapes_<seed>_<index>'}`
    like `ImageFolderDataset`; with `class_labels` also `'label'` (int64), the index of the one kind of shape the
    image shows (class-conditional GANs: the classes differ visibly, by shape).
    """

    options = SyntheticShapesOptions

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.o = o = self.options.parse(opt, type(self).__name__)
        self.image_size, self.num_samples, self.seed = o.image_size, o.num_samples, o.seed
        self.shapes = tuple(o.shapes or SHAPES)
        self.num_shapes, self.radius_range = o.num_shapes, o.radius_range
        self.cache: dict[int, torch.Tensor] | None = {} if o.cache_in_memory else None
        self.class_labels = o.class_labels
        self.classes = list(self.shapes) if o.class_labels else []

    @property
    def num_classes(self) -> int:
        """Number of classes (the shapes, with class_labels; else 0): what `network_g.num_classes` must be."""
        return len(self.classes)

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if not 0 <= index < self.num_samples:
            raise IndexError(f'SyntheticShapesDataset: index {index} out of range [0, {self.num_samples}).')
        img = self.cache.get(index) if self.cache is not None else None
        if img is None:
            rng = np.random.default_rng([self.seed, index])
            shapes = (self.shapes[index % len(self.shapes)],) if self.class_labels else self.shapes
            drawn = draw_shapes(rng, self.image_size, shapes, self.num_shapes, self.radius_range)
            img = torch.from_numpy(np.ascontiguousarray(drawn.transpose(2, 0, 1)))
            if self.cache is not None:
                self.cache[index] = img
        out = {'gt': img.clone(), 'gt_path': f'shapes_{self.seed}_{index:06d}'}
        if self.class_labels:
            out['label'] = torch.tensor(index % len(self.shapes), dtype=torch.long)
        return out
