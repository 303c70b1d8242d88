"""Real-ESRGAN's training-pair pool: mixes degraded pairs across iterations, so that one batch is not all
degraded with the same per-batch choices (resize factor and mode, noise kind, second blur, order).
"""
from __future__ import annotations

import torch


class TrainingPairPool:
    """Holds `queue_size` (lq, gt) pairs on the batch's device.

    Until it is full, each batch is stored and returned unchanged. Once full, the pool is shuffled, its
    first B pairs are returned and replaced by the new batch. `state_dict()` / `load_state_dict()`
    carry the pool over a resume.
    """

    def __init__(self, queue_size: int = 180) -> None:
        if queue_size <= 0:
            raise ValueError(f'queue_size must be positive, got {queue_size}.')
        self.queue_size = queue_size
        self.lq: torch.Tensor | None = None
        self.gt: torch.Tensor | None = None
        self.filled = 0

    @torch.no_grad()
    def __call__(self, lq: torch.Tensor, gt: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        b = lq.shape[0]
        if self.lq is None:
            if self.queue_size % b:
                raise ValueError(f'queue_size {self.queue_size} must be divisible by the batch size {b} '
                                 '(batch_size_per_gpu).')
            self.lq = lq.new_zeros(self.queue_size, *lq.shape[1:])
            self.gt = gt.new_zeros(self.queue_size, *gt.shape[1:])
        if self.lq.shape[1:] != lq.shape[1:] or self.gt.shape[1:] != gt.shape[1:]:
            raise ValueError(f'TrainingPairPool holds pairs of {tuple(self.lq.shape[1:])} / '
                             f'{tuple(self.gt.shape[1:])}, got {tuple(lq.shape[1:])} / {tuple(gt.shape[1:])}; '
                             'all batches must have one size.')
        if self.filled < self.queue_size:
            self.lq[self.filled : self.filled + b] = lq
            self.gt[self.filled : self.filled + b] = gt
            self.filled += b
            return lq, gt
        order = torch.randperm(self.queue_size, generator=generator).to(self.lq.device)
        self.lq, self.gt = self.lq[order], self.gt[order]
        out_lq, out_gt = self.lq[:b].clone(), self.gt[:b].clone()
        self.lq[:b], self.gt[:b] = lq, gt
        return out_lq, out_gt

    def state_dict(self) -> dict:
        return {'queue_size': self.queue_size, 'filled': self.filled,
                'lq': None if self.lq is None else self.lq.cpu(), 'gt': None if self.gt is None else self.gt.cpu()}

    def load_state_dict(self, state: dict, device: torch.device | str = 'cpu') -> None:
        if state['queue_size'] != self.queue_size:
            raise ValueError(f"Saved pool has queue_size {state['queue_size']}, this run {self.queue_size}.")
        self.filled = int(state['filled'])
        self.lq = None if state['lq'] is None else state['lq'].to(device)
        self.gt = None if state['gt'] is None else state['gt'].to(device)
