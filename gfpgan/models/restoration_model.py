"""RestorationModel: a network trained with pixel (and optional perceptual) losses, with an EMA copy.

The plain recipe (BasicSR's SRModel): the baseline for paired restoration and the model behind the
framework's smoke tests and README demo. Everything but the recipe is BaseModel's.
"""

from __future__ import annotations

from collections import OrderedDict

from pydantic import Field

from gfpgan.losses import build_loss
from gfpgan.models.base_model import BaseModel
from gfpgan.utils.option_schema import LossBlock, TrainOptionsBase
from gfpgan.utils.registry import MODEL_REGISTRY


class RestorationTrainOptions(TrainOptionsBase):
    """`train:` keys of RestorationModel."""

    pixel_opt: LossBlock = Field(None, description='pixel loss, e.g. {type: L1Loss, loss_weight: 1}')
    perceptual_opt: LossBlock = Field(None, description='perceptual/style loss, e.g. {type: PerceptualLoss, ...}')
    ema_decay: float = Field(0.0, ge=0, lt=1, description='EMA of the network; 0: no EMA generator')


@MODEL_REGISTRY.register()
class RestorationModel(BaseModel):
    """`network_g` maps `lq` to `gt`; losses `train.pixel_opt` and/or `train.perceptual_opt`."""

    train_options = RestorationTrainOptions

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.net_g = self.build_net('network_g')
        if self.is_train:
            self.init_training_settings()

    def init_training_settings(self) -> None:
        self.net_g.train()
        self.setup_ema(self.train_opt.ema_decay)
        self.setup_losses()
        self.keep_best_target()  # a wrong val.keep_best fails here, not after the first validation
        self.setup_optimizers()
        self.setup_schedulers()

    def setup_losses(self) -> None:
        """`cri_pix` / `cri_perceptual` from `train.pixel_opt` / `train.perceptual_opt` (at least one)."""
        train = self.train_opt
        self.cri_pix = build_loss(train.pixel_opt, 'train.pixel_opt').to(self.device) if train.pixel_opt else None
        self.cri_perceptual = (
            build_loss(train.perceptual_opt, 'train.perceptual_opt').to(self.device) if train.perceptual_opt else None
        )
        if self.cri_pix is None and self.cri_perceptual is None:
            raise ValueError(f'{type(self).__name__}: set train.pixel_opt and/or train.perceptual_opt.')

    def setup_optimizers(self) -> None:
        """`optimizer_g` over the trainable generator parameters (a GAN recipe adds its discriminator's)."""
        self.optimizer_g = self.make_optimizer('optim_g', [p for p in self.net_g.parameters() if p.requires_grad])
        self.scaler_g = self.grad_scaler('g')

    def feed_data(self, data: dict) -> None:
        data = self.degrade_on_device(data)
        self.lq = self.to_device(data['lq'])
        self.gt = self.to_device(data['gt']) if 'gt' in data else None

    def optimize_parameters(self, current_iter: int) -> None:
        self.optimizer_g.zero_grad(set_to_none=True)
        with self.autocast():
            self.output = self.net_g(self.lq)
            losses = OrderedDict()
            if self.cri_pix is not None:
                losses['l_pix'] = self.cri_pix(self.output, self.gt)
            if self.cri_perceptual is not None:
                percep, style = self.cri_perceptual(self.output, self.gt)
                for key, value in (('l_percep', percep), ('l_style', style)):
                    if value is not None:
                        losses[key] = value
        self.output = self.output.float()
        self.scaler_g.scale(sum(v.float() for v in losses.values())).backward()
        self.scaler_g.step(self.optimizer_g)
        self.scaler_g.update()
        self.log_dict = self.reduce_loss_dict(losses)
        if hasattr(self, 'net_g_ema'):
            self.model_ema(self.ema_decay)

    def save(self, epoch: int, current_iter: int) -> None:
        self.save_generator(current_iter)
