"""Losses: hand-computed values and gradient signs, reductions, options and error messages."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.archs.identity_embedding import gray_resize_for_identity
from gfpgan.losses import build_loss
from gfpgan.losses.basic_loss import CharbonnierLoss, L1Loss, MSELoss, PerceptualLoss, gram_matrix
from gfpgan.losses.gan_loss import GANLoss
from gfpgan.losses.identity_loss import IdentityLoss
from gfpgan.losses.regularizers import dragan_penalty, g_path_regularize, gradient_penalty_loss, r1_penalty
from gfpgan.utils.checkpoint_io import save_checkpoint

LOGITS = (2.0, -1.0)


def _sp(v: float) -> float:  # softplus
    return math.log1p(math.exp(v))


def _sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


# (gan_type, target_is_real, is_disc) -> per-element losses and d(loss_i)/d(x_i) for x = LOGITS
HAND = {
    ('vanilla', True, True): ([_sp(-2), _sp(1)], [-_sig(-2), -_sig(1)]),
    ('vanilla', False, True): ([_sp(2), _sp(-1)], [_sig(2), _sig(-1)]),
    ('vanilla', True, False): ([_sp(-2), _sp(1)], [-_sig(-2), -_sig(1)]),
    ('lsgan', True, True): ([1.0, 4.0], [2.0, -4.0]),
    ('lsgan', False, True): ([4.0, 1.0], [4.0, -2.0]),
    ('lsgan', True, False): ([1.0, 4.0], [2.0, -4.0]),
    ('wgan', True, True): ([-2.0, 1.0], [-1.0, -1.0]),
    ('wgan', False, True): ([2.0, -1.0], [1.0, 1.0]),
    ('wgan', True, False): ([-2.0, 1.0], [-1.0, -1.0]),
    ('wgan_softplus', True, True): ([_sp(-2), _sp(1)], [-_sig(-2), -_sig(1)]),
    ('wgan_softplus', False, True): ([_sp(2), _sp(-1)], [_sig(2), _sig(-1)]),
    ('wgan_softplus', True, False): ([_sp(-2), _sp(1)], [-_sig(-2), -_sig(1)]),
    ('hinge', True, True): ([0.0, 2.0], [0.0, -1.0]),
    ('hinge', False, True): ([3.0, 0.0], [1.0, 0.0]),
    ('hinge', True, False): ([-2.0, 1.0], [-1.0, -1.0]),
    ('hinge', False, False): ([-2.0, 1.0], [-1.0, -1.0]),  # the generator's hinge ignores target_is_real
}


@pytest.mark.parametrize('case', sorted(HAND), ids=lambda c: '-'.join(map(str, c)))
@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
def test_gan_loss_values_and_gradients(case, reduction):
    gan_type, real, is_disc = case
    values, grads = HAND[case]
    weight = 0.5
    loss_fn = build_loss({'type': 'GANLoss', 'gan_type': gan_type, 'loss_weight': weight, 'reduction': reduction})
    x = torch.tensor(LOGITS, dtype=torch.float64, requires_grad=True)
    loss = loss_fn(x, real, is_disc=is_disc)
    scale = 1.0 if is_disc else weight  # loss_weight only weights the generator
    expected = torch.tensor(values, dtype=torch.float64) * scale
    if reduction == 'none':
        torch.testing.assert_close(loss, expected)
        loss = loss.sum()
    else:
        assert loss.item() == pytest.approx(expected.mean().item() if reduction == 'mean' else expected.sum().item())
    loss.backward()
    factor = scale / (len(LOGITS) if reduction == 'mean' else 1)
    torch.testing.assert_close(x.grad, torch.tensor(grads, dtype=torch.float64) * factor)
    # gradient sign: the discriminator pushes real scores up / fake down; the generator pushes its score up
    if gan_type == 'lsgan':  # least squares pull each score towards its label, from either side
        target = 1.0 if real else 0.0
        assert all((g > 0) == (v > target) for g, v in zip(x.grad.tolist(), LOGITS))
    else:
        direction = -1 if (real or not is_disc) else 1
        assert all(g * direction >= 0 for g in x.grad.tolist())


def test_gan_loss_label_values():
    x = torch.tensor([0.3, -0.7])
    loss = GANLoss('vanilla', real_label_val=0.9, fake_label_val=0.1)(x, True, is_disc=True)
    t = 0.9
    expected = sum(-(t * math.log(_sig(v)) + (1 - t) * math.log(1 - _sig(v))) for v in x.tolist()) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    ls = GANLoss('lsgan', real_label_val=0.9, fake_label_val=0.1)(x, False, is_disc=True)
    assert ls.item() == pytest.approx(((0.3 - 0.1) ** 2 + (-0.7 - 0.1) ** 2) / 2, rel=1e-6)


def test_gan_loss_rejects_bad_options():
    with pytest.raises(ValueError, match="gan_type 'wgangp'"):
        GANLoss('wgangp')
    with pytest.raises(ValueError, match="reduction 'avg'"):
        GANLoss('vanilla', reduction='avg')


def test_pixel_losses_values_weights_and_reductions():
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    target = torch.zeros_like(pred)
    assert L1Loss(loss_weight=2.0)(pred, target).item() == pytest.approx(2 * 2.5)
    assert L1Loss(reduction='sum')(pred, target).item() == pytest.approx(10.0)
    assert MSELoss()(pred, target).item() == pytest.approx(30 / 4)
    torch.testing.assert_close(MSELoss(reduction='none')(pred, target), pred ** 2)
    assert CharbonnierLoss(eps=1e-6)(pred, target).item() == pytest.approx(
        sum(math.sqrt(v * v + 1e-6) for v in (1, 2, 3, 4)) / 4)
    # a mask weight: mean over the weighted elements only
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    assert L1Loss()(pred, target, weight=mask).item() == pytest.approx((1 + 4) / 2)
    # a 1-channel mask on a 3-channel loss counts once per channel
    pred3, mask3 = pred.expand(1, 3, 2, 2), mask
    assert L1Loss()(pred3, torch.zeros_like(pred3), weight=mask3).item() == pytest.approx((1 + 4) / 2)
    with pytest.raises(ValueError, match="L1Loss: unsupported reduction 'avg'"):
        L1Loss(reduction='avg')
    l1 = build_loss({'type': 'L1Loss', 'loss_weight': 0.1})
    assert l1(pred, target).item() == pytest.approx(0.25)


class TwoLayerFeatures(nn.Module):
    """Stand-in feature network: {'a': x, 'b': conv(x)} with a fixed conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        torch.nn.init.normal_(self.conv.weight, generator=torch.Generator().manual_seed(0))
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {'a': x, 'b': self.conv(x)}


def test_perceptual_and_style_terms_with_stand_in_features():
    torch.manual_seed(0)
    x, gt = torch.randn(2, 3, 8, 8, requires_grad=True), torch.randn(2, 3, 8, 8)
    feats = TwoLayerFeatures()
    weights = {'a': 0.5, 'b': 2.0}
    fx, fg = feats(x), feats(gt)
    for criterion in ('l1', 'l2', 'fro'):
        loss = PerceptualLoss(weights, perceptual_weight=3.0, style_weight=7.0, criterion=criterion,
                              feature_extractor=feats)
        percep, style = loss(x, gt)

        def dist(a, b, criterion=criterion):
            if criterion == 'fro':
                return torch.sqrt(((a - b) ** 2).sum())
            return (a - b).abs().mean() if criterion == 'l1' else ((a - b) ** 2).mean()

        exp_p = 3.0 * sum(w * dist(fx[k], fg[k]) for k, w in weights.items())
        exp_s = 7.0 * sum(w * dist(gram_matrix(fx[k]), gram_matrix(fg[k])) for k, w in weights.items())
        assert percep.item() == pytest.approx(exp_p.item(), rel=1e-5)
        assert style.item() == pytest.approx(exp_s.item(), rel=1e-5)
    percep.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    only_style = PerceptualLoss(weights, perceptual_weight=0, style_weight=1, feature_extractor=feats)
    assert only_style(x, gt)[0] is None


def test_gram_matrix_definition():
    f = torch.arange(12.0).view(1, 2, 2, 3)
    flat = f.view(2, 6)
    torch.testing.assert_close(gram_matrix(f)[0], flat @ flat.T / 12)


def _torchvision_format(net, names) -> dict:
    """A VGGFeatureExtractor's weights under torchvision's `features.N.*` keys."""
    state = {}
    for name, module in net.vgg_net.named_children():
        for key, value in module.state_dict().items():
            state[f'features.{names.index(name)}.{key}'] = value
    return state


def test_perceptual_loss_takes_torchvision_vgg19_from_the_hub_cache(tmp_path, monkeypatch):
    """No vgg_weights_path: upstream's torchvision file in torch's hub cache; offline without it, a clear error."""
    from gfpgan.archs.vgg_arch import VGGFeatureExtractor, vgg_layer_names

    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setenv('GFPGAN_OFFLINE', '1')
    cached = tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'vgg19-dcbb9e9d.pth'
    with pytest.raises(FileNotFoundError, match='vgg19-dcbb9e9d.pth') as err:
        PerceptualLoss({'conv1_2': 1.0})
    assert str(cached) in str(err.value) and 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth' in str(err.value)
    assert 'allow_random_vgg' in str(err.value)
    torch.manual_seed(3)
    source = VGGFeatureExtractor(['conv1_2'], vgg_type='vgg19')  # only the layers up to conv1_2 are read
    names = vgg_layer_names('vgg19')
    state = _torchvision_format(source, names)
    for i, name in enumerate(names):  # the deeper layers as placeholders: keeps the file small
        if name.startswith('conv') and f'features.{i}.weight' not in state:
            state[f'features.{i}.weight'] = torch.zeros(1)
    save_checkpoint(state, cached)
    loss = build_loss({'type': 'PerceptualLoss', 'layer_weights': {'conv1_2': 1.0}})
    for key, value in source.vgg_net.state_dict().items():
        assert torch.equal(loss.vgg.vgg_net.state_dict()[key], value)


def test_perceptual_loss_vgg_weights_required_and_loaded(tmp_path):
    missing = tmp_path / 'nope' / 'vgg19.pth'
    with pytest.raises(FileNotFoundError, match=str(missing)):
        PerceptualLoss({'relu1_1': 1.0}, vgg_weights_path=str(missing))
    with pytest.raises(FileNotFoundError, match=str(missing)):  # an explicit file is never replaced by random
        PerceptualLoss({'relu1_1': 1.0}, vgg_weights_path=str(missing), allow_random_vgg=True)
    from gfpgan.archs.vgg_arch import VGGFeatureExtractor, vgg_layer_names

    # round trip: a torchvision-format vgg11 file written here is what the loss's VGG computes with
    source = VGGFeatureExtractor(['pool5'], vgg_type='vgg11', use_input_norm=False)
    path = tmp_path / 'vgg11.pth'
    save_checkpoint(_torchvision_format(source, vgg_layer_names('vgg11')), path)
    loss = build_loss({'type': 'PerceptualLoss', 'layer_weights': {'conv2_1': 1.0}, 'vgg_type': 'vgg11',
                       'use_input_norm': False, 'vgg_weights_path': str(path)})
    x, gt = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    ref = source.vgg_net
    fx = ref.conv2_1(ref.pool1(ref.relu1_1(ref.conv1_1(x))))
    fg = ref.conv2_1(ref.pool1(ref.relu1_1(ref.conv1_1(gt))))
    assert loss(x, gt)[0].item() == pytest.approx((fx - fg).abs().mean().item(), rel=1e-5)
    random_vgg = PerceptualLoss({'relu1_1': 1.0}, allow_random_vgg=True)
    assert random_vgg(x, gt)[0].item() > 0


def test_r1_and_gradient_penalties_on_a_linear_discriminator():
    torch.manual_seed(0)
    w = torch.randn(1, 3, 4, 4)

    def disc(img):
        return (img * w).flatten(1).sum(1)

    real = torch.randn(2, 3, 4, 4, requires_grad=True)
    # dD/dx = w for every sample
    assert r1_penalty(disc(real), real).item() == pytest.approx((w ** 2).sum().item(), rel=1e-5)
    assert r1_penalty(disc(real), real, reduction='sum').item() == pytest.approx(2 * (w ** 2).sum().item(), rel=1e-5)
    expected = (w.norm() - 1).item() ** 2
    assert gradient_penalty_loss(disc, real, torch.randn(2, 3, 4, 4)).item() == pytest.approx(expected, rel=1e-5)
    assert dragan_penalty(disc, real).item() == pytest.approx(expected, rel=1e-5)
    r1 = build_loss({'type': 'R1Loss', 'loss_weight': 5.0})
    assert r1(disc(real), real).item() == pytest.approx(5 * (w ** 2).sum().item(), rel=1e-5)
    gp = build_loss({'type': 'GradientPenaltyLoss', 'loss_weight': 10.0})
    assert gp(disc, real, torch.randn(2, 3, 4, 4)).item() == pytest.approx(10 * expected, rel=1e-5)
    # the penalty is differentiable w.r.t. the discriminator's parameters
    wp = w.clone().requires_grad_(True)
    r1_penalty((real * wp).flatten(1).sum(1), real).backward()
    torch.testing.assert_close(wp.grad, 2 * wp.detach())
    with pytest.raises(ValueError, match='requires_grad'):
        r1_penalty(disc(real.detach()), real.detach())


def test_path_length_regularizer():
    n, n_latent, h, w = 3, 2, 4, 4
    latents = torch.randn(n, n_latent, h * w, requires_grad=True)
    fake = latents.sum(1).view(n, 1, h, w)  # d fake / d latents[:, l] = identity for each l
    torch.manual_seed(1)
    noise = torch.randn_like(fake) / math.sqrt(h * w)
    lengths = noise.flatten(1).norm(dim=1)  # sqrt(mean_l |noise|^2) = |noise|
    torch.manual_seed(1)
    penalty, mean_len, new_mean = g_path_regularize(fake, latents, 0.0, decay=0.5)
    assert mean_len.item() == pytest.approx(lengths.mean().item(), rel=1e-5)
    assert new_mean.item() == pytest.approx(0.5 * lengths.mean().item(), rel=1e-5)
    assert penalty.item() == pytest.approx(((lengths - 0.5 * lengths.mean()) ** 2).mean().item(), rel=1e-5)
    reg = build_loss({'type': 'PathLengthLoss', 'loss_weight': 2.0, 'decay': 0.5})
    reg(latents.sum(1).view(n, 1, h, w), latents)
    assert reg.mean_path_length.item() > 0 and 'mean_path_length' in reg.state_dict()


class TinyEmbedding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=4)
        self.fc = nn.Linear(4 * 32 * 32, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1:] == (1, 128, 128)
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_identity_loss_gray_resize_and_l1():
    torch.manual_seed(0)
    net = TinyEmbedding()
    pred = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    gt = torch.rand(2, 3, 64, 64) * 2 - 1
    gray = gray_resize_for_identity(gt)
    manual = (0.2989 * gt[:, 0] + 0.5870 * gt[:, 1] + 0.1140 * gt[:, 2])[:, None]
    torch.testing.assert_close(gray, F.interpolate(manual, (128, 128), mode='bilinear', align_corners=False))
    loss_fn = IdentityLoss(net, loss_weight=0.5)
    loss = loss_fn(pred, gt)
    expected = 0.5 * (net(gray_resize_for_identity(pred)) - net(gray)).abs().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert pred.grad.abs().sum() > 0 and all(p.grad is None for p in net.parameters())


def test_identity_loss_from_registered_network_and_weights(tmp_path):
    from gfpgan.archs import build_network

    opt = {'type': 'ResNetArcFace', 'block': 'IRBlock', 'layers': [1, 1, 1, 1], 'use_se': False}
    torch.manual_seed(0)
    source = build_network(opt).eval()
    save_checkpoint({'params_ema': source.state_dict()}, tmp_path / 'arcface.pth')
    loss_fn = build_loss({'type': 'IdentityLoss', 'network': opt, 'weights_path': str(tmp_path / 'arcface.pth')})
    loss_fn.train()
    assert not loss_fn.net.training  # BatchNorm statistics of the frozen network never move
    pred, gt = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    expected = (source(gray_resize_for_identity(pred)) - source(gray_resize_for_identity(gt))).abs().mean()
    assert loss_fn(pred, gt).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        IdentityLoss(opt, weights_path=str(tmp_path / 'missing.pth'))
