"""`datasets.train.degrade_on: device`: the model degrades the gt batch itself, on its device.

The dataset then returns only gt (RGB in [0, 1]) and component boxes; `feed_data` runs the batched
`GPUFFHQDegrader` built from the *same* train dataset block (same recipe options, plus `jpeg_mode`), so
CPU workers only decode and flip. Each batch's degradation is seeded by one draw from torch's global CPU
generator: that generator is saved in every training state and restored on resume, so a resumed run
degrades exactly as the uninterrupted one.
"""

from __future__ import annotations

import torch


class DeviceDegradationMixin:
    """Expects `opt`, `device`, `is_train`."""

    def setup_device_degradation(self) -> None:
        datasets = self.opt.get('datasets') or {}
        for phase, ds in datasets.items():
            if phase.split('_')[0] != 'train' and (ds or {}).get('degrade_on') == 'device':
                raise ValueError(f"datasets.{phase}.degrade_on: 'device' is for train sets; a validation set is "
                                 "degraded in its workers (with its fixed seed). Remove degrade_on there.")
        train = datasets.get('train') or {}
        self.degrader = None
        if self.is_train and train.get('degrade_on') == 'device':
            from gfpgan.data.degradations_torch import GPUFFHQDegrader

            self.degrader = GPUFFHQDegrader(train)

    def degrade_on_device(self, data: dict) -> dict:
        """`data` with `lq` (and normalised `gt`) made on the device when the batch has gt only."""
        if getattr(self, 'degrader', None) is None or 'lq' in data:
            return data
        seed = int(torch.randint(0, 2**62, (1,)).item())
        return {**data, **self.degrader(data['gt'].to(self.device, non_blocking=True), seed=seed)}
