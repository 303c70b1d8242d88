"""GANModel's conditional and multi-head parts: class labels into G and D, and the losses of D's extra heads.

What the networks declare decides the wiring (see `gfpgan.archs.conditional_gan_arch`,
`lightweight_gan_arch`): `takes_labels` on G or D (a conditional generator, a projection discriminator)
passes labels to it; a discriminator with a `heads` attribute is always called with `return_heads=True`, so
every head's parameters get gradients on every step (DDP needs that). Reals carry the dataset's `label`;
fakes draw `y_fake` uniformly next to their latents. Losses of the heads:

    gan_opt: {type: ACGANLoss, gan_type: hinge, class_weight: 1}  # ACGAN: adversarial + CE of `class_logits`
    gan_opt: {type: DualContrastiveLoss}                 # lightweight-gan's dual contrastive loss
    info_opt: {type: MutualInformationLoss, cat_dims: [10], cont_dim: 2}  # InfoGAN codes in G's latent
    aux_32_weight: 0.5   # lightweight-gan's 32 px head (`logits_32`), judged by the same loss as the main output

With `info_opt`, `network_g.latent_dim` is the noise size plus the codes' (`sum(cat_dims) + cont_dim`); the
codes are the last columns of every latent (grids and FID draw them too).
"""
from __future__ import annotations

import torch
from pydantic import Field

from gfpgan.losses import build_loss
from gfpgan.losses.conditional_gan_loss import ACGANLoss
from gfpgan.losses.contrastive_loss import DualContrastiveLoss
from gfpgan.models.adversarial import AdversarialTrainOptions
from gfpgan.models.gan_sampling import sample_inputs
from gfpgan.utils.option_schema import LossBlock


class GANHeadsTrainOptions(AdversarialTrainOptions):
    """`train:` keys of the label and head losses (see the module docstring)."""

    info_opt: LossBlock = Field(None, description='{type: MutualInformationLoss, cat_dims, cont_dim}: InfoGAN codes')
    aux_32_weight: float = Field(0.0, ge=0, description="weight of the discriminator's 32 px head (logits_32)")


class GANHeadsMixin:
    """Expects GANModel: `net_g`, `net_d`, `train_opt` (GANHeadsTrainOptions), `cri_gan`, `device`."""

    def setup_heads(self) -> None:
        train = self.train_opt
        bare_d = self.get_bare_model(self.net_d)
        self.d_takes_labels = bool(getattr(bare_d, 'takes_labels', False))
        self.d_heads = tuple(getattr(bare_d, 'heads', ()) or ())
        self.d_returns_heads = hasattr(bare_d, 'heads')
        self.cri_cls = self.cri_gan if isinstance(self.cri_gan, ACGANLoss) else None
        self.adv = self.cri_cls.adversarial if self.cri_cls is not None else self.cri_gan
        self.cri_info = build_loss(train.info_opt, 'train.info_opt').to(self.device) if train.info_opt else None
        self.aux_32_weight = train.aux_32_weight
        self.dual_contrast = isinstance(self.cri_gan, DualContrastiveLoss)
        need = {'class_logits': ('gan_opt (ACGANLoss)', self.cri_cls is not None),
                'code_logits': ('info_opt', self.cri_info is not None and bool(self.cri_info.cat_dims)),
                'code_mu': ('info_opt', self.cri_info is not None and bool(self.cri_info.cont_dim)),
                'logits_32': ('aux_32_weight', self.aux_32_weight > 0)}
        for head, (key, used) in need.items():
            if used and head not in self.d_heads:
                raise KeyError(f'train.{key} is set but network_d ({type(bare_d).__name__}) has no {head!r} head '
                               f'(its heads: {list(self.d_heads) or "none"}); add the head to network_d.')
            if head in self.d_heads and not used:
                raise KeyError(f'network_d has a {head!r} head that nothing trains; set train.{key.split()[0]} '
                               'or remove the head.')
        if self.d_takes_labels and (self.cri_gp is not None or self.cri_dragan is not None):
            raise KeyError('train.gp_weight / dragan_weight: the gradient penalties call network_d without labels; '
                           'a projection discriminator cannot take them (use r1_reg_weight).')
        d_classes = int(getattr(bare_d, 'num_classes', 0) or 0)
        if self.num_classes and d_classes and d_classes != self.num_classes:
            raise ValueError(f'network_g.num_classes ({self.num_classes}) differs from network_d.num_classes '
                             f'({d_classes}); both must be the number of classes of the data.')
        if (self.cri_cls is not None or self.d_takes_labels) and not self.num_classes:
            raise KeyError('ACGANLoss / a projection network_d need class labels: network_g must be '
                           'class-conditional (e.g. ConditionalDCGANGenerator with num_classes).')

    # ------------------------------------------------------------------ inputs
    def read_labels(self, data: dict) -> None:
        """`self.labels`: the batch's class labels when G is conditional (the dataset's `label`)."""
        self.labels = None
        if self.num_classes:
            if 'label' not in data:
                raise KeyError(f'network_g is class-conditional ({self.num_classes} classes) but the train dataset '
                               "gives no 'label'; use ImageFolderDataset with class_labels: true (class folders) "
                               'or SyntheticShapesDataset with class_labels: true.')
            self.labels = self.to_device(data['label']).long()

    def sample_fakes(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None, tuple | None]:
        """(latents, labels for G or None, InfoGAN (categories, continuous) or None) for `n` fakes."""
        z, y, codes = sample_inputs(n, self.latent_dim, self.num_classes, self.info_dims())
        return z.to(self.device), None if y is None else y.to(self.device), \
            None if codes is None else tuple(c.to(self.device) for c in codes)

    def info_dims(self) -> tuple[list[int], int] | None:
        info = (self.opt.get('train') or {}).get('info_opt') or None
        return (list(info.get('cat_dims') or []), int(info.get('cont_dim') or 0)) if info else None

    # ------------------------------------------------------------------ networks
    def run_g(self, net: torch.nn.Module, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return net(z, y) if y is not None else net(z)

    def judge(self, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None, recon: bool = False
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D's (logits, heads) on `x` (labels for a projection D); `recon`: also its reconstruction loss,
        as `heads['recon_loss']`."""
        kwargs = {'labels': y} if self.d_takes_labels else {}
        if recon and self.d_has_aux:
            kwargs['calc_aux_loss'] = True
        if self.d_returns_heads:
            logits, heads = net(x, return_heads=True, **kwargs)
            return logits.float(), dict(heads)
        out = net(x, **kwargs)
        if recon and self.d_has_aux:
            return out[0].float(), {'recon_loss': out[1]}
        return out.float(), {}

    # ------------------------------------------------------------------ losses
    def adversarial_d(self, real_pred: torch.Tensor, fake_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's (real term, fake term); the dual contrastive loss is one term over both (logged as real)."""
        if self.dual_contrast:
            return self.cri_gan(real_pred, fake_pred, True), torch.zeros((), device=real_pred.device)
        return self.adv(real_pred, True, is_disc=True), self.adv(fake_pred, False, is_disc=True)

    def adversarial_g(self, fake_pred: torch.Tensor, real_pred: torch.Tensor | None) -> torch.Tensor:
        return self.cri_gan(real_pred, fake_pred, False) if self.dual_contrast else self.adv(fake_pred, True,
                                                                                             is_disc=False)

    def head_losses_d(self, heads_r: dict, heads_f: dict, y_real: torch.Tensor | None, y_fake: torch.Tensor | None,
                      codes: tuple | None) -> dict[str, torch.Tensor]:
        """D's losses of its extra heads on reals (`heads_r`) and fakes (`heads_f`), by log key."""
        out = {}
        if self.cri_cls is not None:
            out['l_d_cls'] = self.cri_cls.class_weight * (self.cri_cls.class_loss(heads_r['class_logits'], y_real)
                                                          + self.cri_cls.class_loss(heads_f['class_logits'], y_fake))
        if self.cri_info is not None:
            out['l_d_info'] = self._info_loss(heads_f, codes)
        if self.aux_32_weight > 0:
            out['l_d_32'] = self.aux_32_weight * sum(self.adversarial_d(heads_r['logits_32'].float(),
                                                                        heads_f['logits_32'].float()))
        return out

    def head_losses_g(self, heads_f: dict, heads_r: dict | None, y_fake: torch.Tensor | None,
                      codes: tuple | None) -> dict[str, torch.Tensor]:
        """G's losses through D's extra heads on its fakes (`heads_r`: D's on reals, for the dual contrastive)."""
        out = {}
        if self.cri_cls is not None:
            out['l_g_cls'] = self.cri_cls.class_weight * self.cri_cls.class_loss(heads_f['class_logits'], y_fake)
        if self.cri_info is not None:
            out['l_g_info'] = self._info_loss(heads_f, codes)
        if self.aux_32_weight > 0:
            real_32 = heads_r['logits_32'].float() if heads_r else None
            out['l_g_32'] = self.aux_32_weight * self.adversarial_g(heads_f['logits_32'].float(), real_32)
        return out

    def _info_loss(self, heads: dict, codes: tuple) -> torch.Tensor:
        cat, cont = codes
        return self.cri_info(cat, heads.get('code_logits'), cont, heads.get('code_mu'), heads.get('code_logvar'))
