"""Pieces of the `gfpgan_iter` benchmark: one GFPGAN training iteration through `GFPGANModel`, and the
same iteration written the way upstream GFPGAN's `GFPGANModel.optimize_parameters` runs it, to time against.

The reference copies the weights of a freshly built model, so both start from the same numbers and the
first iteration's losses can be compared key by key. Seed the RNG before each call: the generator draws
its noise maps in the same order in both.
"""
from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import torch
import torch.nn.functional as F

from gfpgan.archs.identity_embedding import gray_resize_for_identity
from gfpgan.losses.basic_loss import gram_matrix
from gfpgan.ops.roi_align import roi_align
from gfpgan.utils.options import yaml_load

REPO = Path(__file__).resolve().parents[1]
COMPONENTS = ('left_eye', 'right_eye', 'mouth')
# upstream's options/train_gfpgan_v1.yml weights; lr 1e-5 because upstream's 2e-3 makes random weights on
# random data diverge within a few steps (and denormal numbers are slow on CPU)
UPSTREAM_TRAIN = dict(
    pixel_opt={'type': 'L1Loss', 'loss_weight': 0.1, 'reduction': 'mean'},
    L1_opt={'type': 'L1Loss', 'loss_weight': 1, 'reduction': 'mean'},
    pyramid_loss_weight=1, remove_pyramid_loss=50000,
    perceptual_opt={'type': 'PerceptualLoss', 'vgg_type': 'vgg19', 'use_input_norm': True, 'range_norm': True,
                    'layer_weights': {'conv1_2': 0.1, 'conv2_2': 0.1, 'conv3_4': 1, 'conv4_4': 1, 'conv5_4': 1},
                    'perceptual_weight': 1.0, 'style_weight': 50, 'criterion': 'l1', 'allow_random_vgg': True},
    gan_opt={'type': 'GANLoss', 'gan_type': 'wgan_softplus', 'loss_weight': 0.1},
    r1_reg_weight=10, net_d_reg_every=16,
    gan_component_opt={'type': 'GANLoss', 'gan_type': 'vanilla', 'real_label_val': 1.0, 'fake_label_val': 0.0,
                       'loss_weight': 1},
    comp_style_weight=200, identity_weight=10, net_d_iters=1, net_d_init_iters=0,
    optim_g={'type': 'Adam', 'lr': 1e-5}, optim_d={'type': 'Adam', 'lr': 1e-5},
    optim_component={'type': 'Adam', 'lr': 1e-5},
)


def iteration_options(network_g: dict, tmp: Path, **top: object) -> dict:
    """options/train_gfpgan_tiny.yml with `network_g` at its size, a 0.5-narrow StyleGAN2 discriminator,
    an ArcFace-18 identity net, upstream's loss weights and folders in `tmp`; `top` adds top-level keys
    (`channels_last`, `amp`, `compile`)."""
    opt = yaml_load(REPO / 'options' / 'train_gfpgan_tiny.yml')
    size = network_g['out_size']
    for ds in opt['datasets'].values():
        ds['dataroot_gt'] = str((REPO / ds['dataroot_gt']).resolve())
        if ds.get('component_path'):
            ds['component_path'] = str((REPO / ds['component_path']).resolve())
        ds['out_size'] = size
    opt['network_g'] = dict(network_g, type='GFPGANv1Clean')
    opt['network_d'] = {'type': 'StyleGAN2Discriminator', 'out_size': size, 'channel_multiplier': 1, 'narrow': 0.5}
    opt['network_identity'] = {'type': 'ResNetArcFace', 'block': 'IRBlock', 'layers': [2, 2, 2, 2], 'use_se': False}
    opt['train'] = dict(UPSTREAM_TRAIN, total_iter=1000, warmup_iter=-1)
    opt.update(is_train=True, dist=False, rank=0, world_size=1, **top)
    opt['path'].update(models=str(tmp / 'models'), training_states=str(tmp / 'states'),
                       visualization=str(tmp / 'vis'))
    return opt


def synthetic_batch(size: int, batch: int, seed: int = 1) -> dict[str, torch.Tensor]:
    """Random gt in [-1, 1], a noisy lq, and upstream's eye / mouth boxes (x1, y1, x2, y2) scaled to `size`."""
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    lq = (gt + 0.2 * torch.randn(gt.shape, generator=g)).clamp(-1, 1)
    r = size / 512
    boxes = {'left_eye': (150, 200, 230, 280), 'right_eye': (280, 200, 360, 280), 'mouth': (190, 330, 310, 450)}
    locs = {f'loc_{c}': torch.tensor([[v * r for v in box]] * batch) for c, box in boxes.items()}
    return {'gt': gt, 'lq': lq, **locs}


class UpstreamGFPGANStep:
    """Upstream GFPGAN's training iteration on copies of `model`'s networks: a G step (D frozen), the EMA,
    a D step, then each component discriminator's own step, every loss written out as upstream computes
    it (lazy R1 is left out: the benchmark's iterations are not R1 iterations)."""

    def __init__(self, model, data: dict[str, torch.Tensor]) -> None:
        self.net_g = copy.deepcopy(model.get_bare_model(model.net_g))
        self.net_g_ema = copy.deepcopy(model.net_g_ema)
        self.net_d = copy.deepcopy(model.get_bare_model(model.net_d))
        self.comp_d = {c: copy.deepcopy(model.get_bare_model(model.net_d_comp[c])) for c in COMPONENTS}
        self.arcface = copy.deepcopy(model.network_identity)
        self.vgg = copy.deepcopy(model.cri_perceptual.vgg)
        self.percep = model.cri_perceptual
        self.ema_decay, self.eye_size, self.mouth_size = model.ema_decay, model.eye_size, model.mouth_size
        train = model.opt['train']
        self.w = dict(pix=train['pixel_opt']['loss_weight'], pyramid=train['pyramid_loss_weight'],
                      gan=train['gan_opt']['loss_weight'], comp=train['gan_component_opt']['loss_weight'],
                      comp_style=train['comp_style_weight'], identity=train['identity_weight'])

        def adam_like(opt: torch.optim.Optimizer, params) -> torch.optim.Adam:
            group = opt.param_groups[0]
            return torch.optim.Adam(params, lr=group['lr'], betas=group['betas'], eps=group['eps'])

        self.opt_g = adam_like(model.optimizer_g, self.net_g.parameters())
        self.opt_d = adam_like(model.optimizer_d, self.net_d.parameters())
        self.opt_c = {c: adam_like(model.optimizer_d_comp[c], self.comp_d[c].parameters()) for c in COMPONENTS}
        self.gt, self.lq = data['gt'].to(model.device), data['lq'].to(model.device)
        idx = torch.arange(self.gt.shape[0], dtype=torch.float32).unsqueeze(1)
        self.boxes = {c: torch.cat([idx, data[f'loc_{c}'].float()], 1).to(model.device) for c in COMPONENTS}

    def _crops(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        return {c: roi_align(img, self.boxes[c], self.mouth_size if c == 'mouth' else self.eye_size, 1.0, -1, False)
                for c in COMPONENTS}

    def _identity(self, img: torch.Tensor) -> torch.Tensor:
        return self.arcface(gray_resize_for_identity(img))

    def step(self) -> dict[str, float]:
        logs: dict[str, torch.Tensor] = {}
        gt, w = self.gt, self.w
        self.net_d.requires_grad_(False)
        self.opt_g.zero_grad()
        output, out_rgbs = self.net_g(self.lq, return_rgb=True)
        crops, crops_gt = self._crops(output), self._crops(gt)
        pyramid = [gt]
        for _ in range(len(out_rgbs) - 1):
            pyramid.insert(0, F.interpolate(pyramid[0], scale_factor=0.5, mode='bilinear', align_corners=False))
        l_g_total = logs['l_g_pix'] = F.l1_loss(output, gt) * w['pix']
        for rgb, level in zip(out_rgbs, pyramid):
            logs[f'l_p_{level.shape[-1]}'] = F.l1_loss(rgb, level) * w['pyramid']
            l_g_total = l_g_total + logs[f'l_p_{level.shape[-1]}']
        x_feats, gt_feats = self.vgg(output), self.vgg(gt.detach())
        layers = self.percep.layer_weights
        logs['l_g_percep'] = sum(F.l1_loss(x_feats[k], gt_feats[k]) * v for k, v in layers.items()) \
            * self.percep.perceptual_weight
        logs['l_g_style'] = sum(F.l1_loss(gram_matrix(x_feats[k]), gram_matrix(gt_feats[k])) * v
                                for k, v in layers.items()) * self.percep.style_weight
        logs['l_g_gan'] = F.softplus(-self.net_d(output)).mean() * w['gan']
        l_g_total = l_g_total + logs['l_g_percep'] + logs['l_g_style'] + logs['l_g_gan']
        style = 0
        for c in COMPONENTS:
            pred, feats = self.comp_d[c](crops[c], return_feats=True)
            logs[f'l_g_gan_{c}'] = F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred)) * w['comp']
            l_g_total = l_g_total + logs[f'l_g_gan_{c}']
            _, feats_gt = self.comp_d[c](crops_gt[c], return_feats=True)
            style = style + F.l1_loss(gram_matrix(feats[0]), gram_matrix(feats_gt[0].detach())) * 0.5 \
                + F.l1_loss(gram_matrix(feats[1]), gram_matrix(feats_gt[1].detach()))
        logs['l_g_comp_style_loss'] = style * w['comp_style']
        logs['l_identity'] = F.l1_loss(self._identity(output), self._identity(gt).detach()) * w['identity']
        l_g_total = l_g_total + logs['l_g_comp_style_loss'] + logs['l_identity']
        l_g_total.backward()
        self.opt_g.step()
        with torch.no_grad():  # upstream's model_ema
            for p_ema, p in zip(self.net_g_ema.parameters(), self.net_g.parameters()):
                p_ema.mul_(self.ema_decay).add_(p, alpha=1 - self.ema_decay)

        self.net_d.requires_grad_(True)
        self.opt_d.zero_grad()
        fake_pred, real_pred = self.net_d(output.detach()), self.net_d(gt)
        logs['l_d'] = F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()
        logs['l_d'].backward()
        self.opt_d.step()
        for c in COMPONENTS:
            self.opt_c[c].zero_grad()
            fake_pred, _ = self.comp_d[c](crops[c].detach())
            real_pred, _ = self.comp_d[c](crops_gt[c])
            logs[f'l_d_{c}'] = (F.binary_cross_entropy_with_logits(real_pred, torch.ones_like(real_pred))
                                + F.binary_cross_entropy_with_logits(fake_pred, torch.zeros_like(fake_pred)))
            logs[f'l_d_{c}'].backward()
            self.opt_c[c].step()
        return {k: float(v.detach()) for k, v in logs.items()}


# ---------------------------------------------------------------- lightweight GAN
def lightweight_gan_options(size: int, batch: int, tmp: Path, **top: object) -> dict:
    """options/train_lightweight_gan.yml's networks at `size` px on the tiny file's synthetic data, a fixed
    DiffAugment probability (0.5), no sample grids; `top` adds top-level keys (`channels_last`, `amp`)."""
    full = yaml_load(REPO / 'options' / 'train_lightweight_gan.yml')
    opt = yaml_load(REPO / 'options' / 'train_lightweight_gan_tiny.yml')
    opt['network_g'] = dict(full['network_g'], image_size=size)
    opt['network_d'] = dict(full['network_d'], image_size=size)
    for ds in opt['datasets'].values():
        ds['image_size'] = size
    opt['datasets']['train']['batch_size_per_gpu'] = batch
    opt['train'].update(accumulate_grad_batches=1, ema_decay=full['train']['ema_decay'], ema_start_iter=0,
                        diffaug={'policy': full['train']['diffaug']['policy'], 'prob': 0.5})
    opt['val']['grids']['freq'] = 0
    opt['logger']['print_freq'] = 10 ** 6
    opt.update(is_train=True, dist=False, rank=0, world_size=1, **top)
    opt['path'].update(models=str(tmp / 'models'), training_states=str(tmp / 'states'),
                       visualization=str(tmp / 'vis'))
    return opt


@contextlib.contextmanager
def patched(patches: list[tuple[object, str, object]]):
    """Set `owner.name = value` for each (owner, name, value) and restore the originals on exit (a name that
    was inherited, not set on the owner itself, is deleted again). The upstream-structure references use it."""
    saved = [(owner, name, vars(owner).get(name)) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            if value is None:
                delattr(owner, name)
            else:
                setattr(owner, name, value)


def lightweight_upstream_structure():
    """GANModel's step as upstream lightweight-gan's `Trainer.train` structures it: the real batch always
    requires a gradient (upstream sets it for its gradient penalty, also on the steps without one), so the D
    step's backward runs down to the image; and D is not frozen for the G step, so that backward also
    computes D's weight gradients (thrown away by the next D step's zero_grad). Everything else (one no-grad
    G forward for the D step, separate real and fake D calls, a fresh G forward for the G step) is already
    upstream's order, so the losses are equal."""
    from gfpgan.models import gan_model

    feed_data = gan_model.GANModel.feed_data

    def feed_data_requiring_grad(self, data: dict) -> None:
        feed_data(self, data)
        self.real.requires_grad_(True)

    return patched([(gan_model, 'set_requires_grad', lambda nets, flag: None),
                    (gan_model.GANModel, 'feed_data', feed_data_requiring_grad)])
