"""GANModel's BEGAN branch: an autoencoder discriminator trained with BEGAN's equilibrium loss.

`train.began_opt: {type: BEGANLoss, gamma: 0.5, lambda_k: 0.001}` with a `network_d` that declares
`is_autoencoder` (`BEGANDiscriminator`) replaces the adversarial loss: D minimises L(x) - k L(G(z)), G
minimises L(G(z)) (L: D's reconstruction error), and k follows its control loop once per iteration from the
rank-averaged L(x) and L(G(z)), so every rank keeps the same k. `k` is training state (saved, resumed).
Logged: `l_d`, `l_d_real` (L(x)), `l_d_fake` (L(G(z))), `l_g`, `k` and the convergence measure `M`.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from pydantic import Field

from gfpgan.losses import build_loss
from gfpgan.models.adversarial import AdversarialTrainOptions
from gfpgan.models.networks import set_requires_grad
from gfpgan.utils.option_schema import LossBlock


class BEGANTrainOptions(AdversarialTrainOptions):
    began_opt: LossBlock = Field(None, description='{type: BEGANLoss, gamma, lambda_k}: BEGAN with an autoencoder D')


class BEGANMixin:
    """Expects GANModel (its micro-batching, autocast and scalers)."""

    def setup_began(self) -> bool:
        """Build `cri_began` when `train.began_opt` is set (and check D fits it); True when BEGAN is on."""
        train = self.train_opt
        is_ae = bool(getattr(self.get_bare_model(self.net_d), 'is_autoencoder', False))
        self.cri_began = build_loss(train.began_opt, 'train.began_opt').to(self.device) if train.began_opt else None
        if is_ae != (self.cri_began is not None):
            raise KeyError('train.began_opt and an autoencoder network_d (BEGANDiscriminator) go together: set both '
                           'or neither.')
        if self.cri_began is None:
            return False
        unused = [k for k in ('gan_opt', 'diffaug', 'info_opt') if getattr(train, k)]
        unused += [k for k in ('gp_weight', 'dragan_weight', 'r1_reg_weight', 'aux_32_weight') if getattr(train, k)]
        if unused:
            raise KeyError(f'train.{", train.".join(unused)}: not used with train.began_opt (BEGAN judges by '
                           'reconstruction error); remove them.')
        self.gan_type, self.cri_gan, self.cri_r1 = None, None, None
        self.net_d_iters, self.net_d_init_iters = train.net_d_iters, train.net_d_init_iters
        self.net_d_reg_every = train.net_d_reg_every
        return True

    def began_backward_d(self, real: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        bare_g = self.get_bare_model(self.net_g)
        logs: dict[str, torch.Tensor] = OrderedDict()
        for real_i, z_i in self._micro_batches(self.net_d, real, z):
            with torch.no_grad(), self.autocast():
                fake_i = bare_g(z_i).float()
            with self.autocast():
                terms = self.cri_began(real_i, self.net_d(real_i), fake_i, self.net_d(fake_i))
            for key, value in zip(('l_d', 'l_d_real', 'l_d_fake'), terms):
                logs[key] = logs.get(key, 0) + value.detach().float() / self.accumulate
            self.scaler_d.scale(terms.l_d / self.accumulate).backward()
        return logs

    def began_backward_g(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        bare_d = self.get_bare_model(self.net_d)
        logs: dict[str, torch.Tensor] = OrderedDict()
        set_requires_grad(bare_d, False)
        try:
            for (z_i,) in self._micro_batches(self.net_g, z):
                with self.autocast():
                    fake_i = self.net_g(z_i).float()
                    l_g = self.cri_began.g_loss(fake_i, bare_d(fake_i))
                logs['l_g'] = logs.get('l_g', 0) + l_g.detach().float() / self.accumulate
                self.scaler_g.scale(l_g / self.accumulate).backward()
        finally:
            set_requires_grad(bare_d, True)
        return logs

    def began_update(self, logs: dict[str, torch.Tensor]) -> None:
        """k's control step from this iteration's rank-averaged L(x), L(G(z)); logs k (after) and M."""
        mean = self.reduce_loss_dict({'real': logs['l_d_real'], 'fake': logs['l_d_fake']})
        logs['M'] = torch.tensor(self.cri_began.update(mean['real'], mean['fake']))
        logs['k'] = self.cri_began.k.detach().clone()
