"""RestorationModel: a network trained with pixel (and optional perceptual) losses, with an EMA copy.

The plain recipe (BasicSR's SRModel): the baseline for paired restoration and the model behind the
framework's smoke tests and README demo.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from gfpgan.archs import build_network
from gfpgan.losses import build_loss
from gfpgan.models.base_model import BaseModel
from gfpgan.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class RestorationModel(BaseModel):
    """`network_g` maps `lq` to `gt`; losses `train.pixel_opt` and/or `train.perceptual_opt`."""

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.net_g = self.model_to_device(build_network(opt['network_g'], 'network_g'))
        self.print_network(self.net_g)
        path = opt.get('path') or {}
        if path.get('pretrain_network_g'):
            self.load_network(
                self.net_g,
                path['pretrain_network_g'],
                path.get('strict_load_g', True),
                path.get('param_key_g', 'params'),
            )
        if self.is_train:
            self.init_training_settings()

    def init_training_settings(self) -> None:
        train_opt = self.opt['train']
        self.net_g.train()
        self.ema_decay = train_opt.get('ema_decay', 0)
        if self.ema_decay > 0:
            self.net_g_ema = build_network(self.opt['network_g'], 'network_g').to(self.device)
            path = self.opt.get('path') or {}
            if path.get('pretrain_network_g'):
                self.load_network(self.net_g_ema, path['pretrain_network_g'], True, 'params_ema')
            else:
                self.model_ema(0)
            self.net_g_ema.eval()
        self.cri_pix = build_loss(train_opt['pixel_opt'], 'train.pixel_opt') if train_opt.get('pixel_opt') else None
        self.cri_perceptual = (
            build_loss(train_opt['perceptual_opt'], 'train.perceptual_opt') if train_opt.get('perceptual_opt') else None
        )
        if self.cri_pix is None and self.cri_perceptual is None:
            raise ValueError('RestorationModel: set train.pixel_opt and/or train.perceptual_opt.')
        self.cri_pix = self.cri_pix.to(self.device) if self.cri_pix else None
        self.cri_perceptual = self.cri_perceptual.to(self.device) if self.cri_perceptual else None
        self.setup_optimizers()
        self.setup_schedulers()

    def setup_optimizers(self) -> None:
        optim_opt = dict(self.opt['train']['optim_g'])
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        self.optimizer_g = self.get_optimizer(optim_opt.pop('type'), params, **optim_opt)
        self.optimizers.append(self.optimizer_g)

    def feed_data(self, data: dict) -> None:
        self.lq = data['lq'].to(self.device)
        self.gt = data['gt'].to(self.device) if 'gt' in data else None

    def optimize_parameters(self, current_iter: int) -> None:
        self.optimizer_g.zero_grad(set_to_none=True)
        self.output = self.net_g(self.lq)
        losses = OrderedDict()
        total = 0
        if self.cri_pix is not None:
            losses['l_pix'] = self.cri_pix(self.output, self.gt)
            total = total + losses['l_pix']
        if self.cri_perceptual is not None:
            percep, style = self.cri_perceptual(self.output, self.gt)
            for key, value in (('l_percep', percep), ('l_style', style)):
                if value is not None:
                    losses[key] = value
                    total = total + value
        total.backward()
        self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(losses)
        if self.ema_decay > 0:
            self.model_ema(self.ema_decay)

    @torch.no_grad()
    def test(self) -> None:
        net = self.net_g_ema if getattr(self, 'net_g_ema', None) is not None else self.net_g
        was_training = net.training
        net.eval()
        self.output = net(self.lq)
        net.train(was_training)

    def get_current_visuals(self) -> dict:
        visuals = OrderedDict(lq=self.lq.detach().cpu(), result=self.output.detach().cpu())
        if self.gt is not None:
            visuals['gt'] = self.gt.detach().cpu()
        return visuals

    def save(self, epoch: int, current_iter: int) -> None:
        if getattr(self, 'net_g_ema', None) is not None:
            self.save_network([self.net_g, self.net_g_ema], 'net_g', current_iter, ['params', 'params_ema'])
        else:
            self.save_network(self.net_g, 'net_g', current_iter)
