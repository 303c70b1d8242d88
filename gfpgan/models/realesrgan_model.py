"""Real-ESRGAN's recipes: RealESRNetModel (pixel losses) and RealESRGANModel (+ U-Net discriminator).

Both degrade each training batch themselves, on the model's device: RealESRGANDataset gives gt and the
three kernels of each sample, `feed_data` runs the second-order degradation (`RealESRGANDegrader`, the
top-level keys of Real-ESRGAN's option files), crops one random `gt_size` window of the whole batch and
passes the pair through the training-pair pool (`queue_size`). Every random choice comes from one CPU
`torch.Generator` seeded with `manual_seed + rank`; the generator and the pool are saved in each training
state, so a resumed run sees the very batches the uninterrupted one would have.

USM-sharpened gt: RealESRNetModel trains against it with `gt_usm: true`; RealESRGANModel always degrades
the sharpened gt and picks the target of each loss with `l1_gt_usm`, `percep_gt_usm`, `gan_gt_usm`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from gfpgan.data.pair_pool import TrainingPairPool
from gfpgan.data.realesrgan_degradations_torch import DEFAULTS, RealESRGANDegrader, USMSharp, random_paired_crop
from gfpgan.models.sr_model import SRModel
from gfpgan.models.srgan_model import SRGANModel
from gfpgan.utils.dist import get_dist_info
from gfpgan.utils.option_schema import ModelTopLevelOptions
from gfpgan.utils.registry import MODEL_REGISTRY


def _range(key: str, what: str) -> Any:
    return Field(list(DEFAULTS[key]), min_length=2, max_length=2, description=what)


class RealESRGANDegradationOptions(ModelTopLevelOptions):
    """Top-level keys of Real-ESRGAN's files that its models read (x4plus values by default)."""

    gt_size: int = Field(256, ge=1, description='gt crop of the degraded batch (lq: gt_size / scale)')
    queue_size: int = Field(180, ge=1, description='training-pair pool size (a multiple of batch_size_per_gpu)')
    high_order_degradation: bool = Field(True, description='degrade gt on the device; false: train on paired lq/gt')
    resize_prob: list[float] = Field(list(DEFAULTS['resize_prob']), min_length=3, max_length=3,
                                     description='first resize: probabilities of up, down, keep')
    resize_range: list[float] = _range('resize_range', 'first resize: scale range')
    gaussian_noise_prob: float = Field(DEFAULTS['gaussian_noise_prob'], ge=0, le=1,
                                       description='first noise: Gaussian (else Poisson) probability')
    noise_range: list[float] = _range('noise_range', 'first noise: Gaussian sigma range (0..255)')
    poisson_scale_range: list[float] = _range('poisson_scale_range', 'first noise: Poisson scale range')
    gray_noise_prob: float = Field(DEFAULTS['gray_noise_prob'], ge=0, le=1, description='first noise: gray noise')
    jpeg_range: list[float] = _range('jpeg_range', 'first JPEG: quality range')
    second_blur_prob: float = Field(DEFAULTS['second_blur_prob'], ge=0, le=1, description='second blur probability')
    resize_prob2: list[float] = Field(list(DEFAULTS['resize_prob2']), min_length=3, max_length=3,
                                      description='second resize: probabilities of up, down, keep')
    resize_range2: list[float] = _range('resize_range2', 'second resize: scale range')
    gaussian_noise_prob2: float = Field(DEFAULTS['gaussian_noise_prob2'], ge=0, le=1,
                                        description='second noise: Gaussian (else Poisson) probability')
    noise_range2: list[float] = _range('noise_range2', 'second noise: Gaussian sigma range (0..255)')
    poisson_scale_range2: list[float] = _range('poisson_scale_range2', 'second noise: Poisson scale range')
    gray_noise_prob2: float = Field(DEFAULTS['gray_noise_prob2'], ge=0, le=1, description='second noise: gray noise')
    jpeg_range2: list[float] = _range('jpeg_range2', 'final JPEG: quality range')
    filter_method: Literal['auto', 'direct', 'fft'] = Field('auto', description='blur convolution (auto: by size)')


class RealESRNetTopOptions(RealESRGANDegradationOptions):
    gt_usm: bool = Field(False, description='train against the USM-sharpened gt (it is also what is degraded)')


class RealESRGANTopOptions(RealESRGANDegradationOptions):
    l1_gt_usm: bool = Field(True, description='pixel loss against the USM-sharpened gt (else the gt)')
    percep_gt_usm: bool = Field(True, description='perceptual loss against the USM-sharpened gt (else the gt)')
    gan_gt_usm: bool = Field(False, description="discriminator's real images: the USM-sharpened gt (else the gt)")


class RealESRGANBatchMixin:
    """The on-device degradation, crop and pool of the training batch, and their state in training states."""

    top_level_options: ClassVar[type[RealESRGANDegradationOptions]] = RealESRGANDegradationOptions

    def setup_degradation(self) -> None:
        self.top = self.top_level_options.of(self.opt)
        self.scale = int(self.opt.get('scale') or DEFAULTS['scale'])
        self.sr_degrader = RealESRGANDegrader({**self.top.model_dump(), 'scale': self.scale})
        self.usm_sharpener = USMSharp()
        self.pair_pool = TrainingPairPool(self.top.queue_size)
        seed = self.opt.get('manual_seed')
        seed = int(torch.randint(2**62, (1,)).item()) if seed is None else int(seed)
        self.pair_generator = torch.Generator().manual_seed(seed + get_dist_info()[0])

    def init_training_settings(self) -> None:
        self.setup_degradation()
        super().init_training_settings()

    def feed_data(self, data: dict) -> None:
        if not self.is_degraded_batch(data):
            return super().feed_data(data)
        self.lq, self.gt = self.degraded_pair(*self.degradation_source_and_target(self.to_device(data['gt'])), data)

    def degradation_source_and_target(self, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(image the degradation starts from, training target) for a gt batch: the recipe's choice."""
        raise NotImplementedError

    def is_degraded_batch(self, data: dict) -> bool:
        """A training batch of RealESRGANDataset (gt + kernels) that this model degrades."""
        return self.is_train and self.top.high_order_degradation and 'kernel1' in data

    def degraded_pair(self, source: torch.Tensor, gt: torch.Tensor, data: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(lq, gt): `source` degraded with the batch's kernels, one random crop of both, then the pool."""
        g = self.pair_generator
        k1, k2, sinc = (data[k].to(self.device, non_blocking=True) for k in ('kernel1', 'kernel2', 'sinc_kernel'))
        lq = self.sr_degrader.degrade(source, k1, k2, sinc, self.sr_degrader.draw(source.shape[0], g))
        (gt,), lq = random_paired_crop([gt], lq, self.top.gt_size, self.scale, g)
        lq, gt = self.pair_pool(lq.contiguous(), gt.contiguous(), g)
        return self.to_device(lq), self.to_device(gt)

    # ------------------------------------------------------------------ exact resume
    def save_training_state(self, epoch: int, current_iter: int, extra: dict | None = None) -> str | None:
        """Also the pair generator and pool of every rank (each rank degrades and pools its own batches)."""
        mine = {'generator': self.pair_generator.get_state(), 'pool': self.pair_pool.state_dict()}
        rank, world = get_dist_info()
        per_rank = {0: mine}
        if world > 1 and current_iter != -1:
            import torch.distributed as dist

            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, mine)
            per_rank = dict(enumerate(gathered))
        return super().save_training_state(epoch, current_iter, {**(extra or {}), 'pair_pool_per_rank': per_rank})

    def resume_training(self, resume_state: dict) -> None:
        super().resume_training(resume_state)
        saved = (resume_state.get('pair_pool_per_rank') or {}).get(get_dist_info()[0])
        if saved is None:
            self.logger.warning(f'{type(self).__name__}: the training state holds no pair pool / degradation '
                                'generator for this rank: the resumed batches differ from an uninterrupted run.')
            return
        self.pair_generator.set_state(saved['generator'])
        self.pair_pool.load_state_dict(saved['pool'], self.device)


@MODEL_REGISTRY.register()
class RealESRNetModel(RealESRGANBatchMixin, SRModel):
    """SRModel on batches degraded on the device; `gt_usm: true` trains against the sharpened gt."""

    top_level_options = RealESRNetTopOptions

    def degradation_source_and_target(self, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.top.gt_usm:
            gt = self.usm_sharpener(gt)
        return gt, gt


@MODEL_REGISTRY.register()
class RealESRGANModel(RealESRGANBatchMixin, SRGANModel):
    """SRGANModel (UNetDiscriminatorSN in the recipe) on batches degraded from the USM-sharpened gt."""

    top_level_options = RealESRGANTopOptions

    def degradation_source_and_target(self, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.usm_sharpener(gt), gt

    def loss_targets(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per loss the gt or its sharpened version, sharpened after the pool (pairs leave it reordered)."""
        top = self.top
        gt_usm = self.usm_sharpener(self.gt) if top.l1_gt_usm or top.percep_gt_usm or top.gan_gt_usm else None
        return tuple(gt_usm if use else self.gt for use in (top.l1_gt_usm, top.percep_gt_usm, top.gan_gt_usm))
