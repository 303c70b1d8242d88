"""ACGAN, InfoGAN mutual-information and dual contrastive losses against their formulas, by hand."""
from __future__ import annotations

import math

import pytest
import torch

from gfpgan.losses import build_loss
from gfpgan.losses.mutual_info_loss import MutualInformationLoss


def _bce(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def _ce(logits: list[float], label: int) -> float:
    return -logits[label] + math.log(sum(math.exp(v) for v in logits))


def test_acgan_loss_is_adversarial_plus_weighted_cross_entropy():
    loss = build_loss(dict(type='ACGANLoss', gan_type='vanilla', class_weight=0.5, loss_weight=2.0))
    pred = torch.tensor([[0.3], [-1.2]])
    cls = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 1.5]])
    labels = torch.tensor([0, 2])
    ce = (_ce([2.0, 0.0, -1.0], 0) + _ce([0.5, 0.5, 1.5], 2)) / 2
    real_d = (_bce(0.3, 1) + _bce(-1.2, 1)) / 2
    fake_d = (_bce(0.3, 0) + _bce(-1.2, 0)) / 2
    assert loss(pred, cls, labels, True, is_disc=True).item() == pytest.approx(real_d + 0.5 * ce, rel=1e-5)
    assert loss(pred, cls, labels, False, is_disc=True).item() == pytest.approx(fake_d + 0.5 * ce, rel=1e-5)
    # G: loss_weight scales the adversarial term only, the class term keeps class_weight
    assert loss(pred, cls, labels, True).item() == pytest.approx(2.0 * real_d + 0.5 * ce, rel=1e-5)
    assert loss.class_loss(cls, labels).item() == pytest.approx(ce, rel=1e-5)
    hinge = build_loss(dict(type='ACGANLoss', gan_type='hinge'))
    assert hinge(pred, cls, labels, True, True).item() == pytest.approx((0.7 + 2.2) / 2 + ce, rel=1e-5)
    with pytest.raises(ValueError, match='class logits must be'):
        loss(pred, cls, labels[:1], True)


def test_mutual_information_loss_categorical_and_gaussian():
    loss = MutualInformationLoss(cat_dims=[2, 3], cont_dim=2, cont_loss='gaussian', cat_weight=1.0,
                                 cont_weight=0.5)
    logits = torch.tensor([[1.0, -1.0, 0.0, 2.0, 0.5], [0.0, 0.0, 1.0, 1.0, 1.0]])
    cat = torch.tensor([[0, 1], [1, 2]])
    cont = torch.tensor([[0.5, -0.5], [0.0, 1.0]])
    mu = torch.tensor([[0.0, 0.0], [0.5, 1.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [0.0, 0.0]])
    ce = ((_ce([1.0, -1.0], 0) + _ce([0.0, 0.0], 1)) / 2) + ((_ce([0.0, 2.0, 0.5], 1) + _ce([1.0, 1.0, 1.0], 2)) / 2)

    def nll(c, m, var):
        return 0.5 * math.log(2 * math.pi * var) + (c - m) ** 2 / (2 * var)

    gauss = ((nll(0.5, 0.0, 1.0) + nll(-0.5, 0.0, 4.0)) + (nll(0.0, 0.5, 1.0) + nll(1.0, 1.0, 1.0))) / 2
    got = loss(cat_codes=cat, code_logits=logits, cont_codes=cont, code_mu=mu, code_logvar=logvar)
    assert got.item() == pytest.approx(ce + 0.5 * gauss, rel=1e-5)
    mse = MutualInformationLoss(cont_dim=2, cont_loss='mse')
    assert mse(cont_codes=cont, code_mu=mu).item() == pytest.approx(((0.25 + 0.25) + (0.25 + 0.0)) / 2)


def test_mutual_information_loss_errors():
    with pytest.raises(ValueError, match='no codes'):
        MutualInformationLoss()
    with pytest.raises(ValueError, match="'gaussian' or 'mse'"):
        MutualInformationLoss(cont_dim=1, cont_loss='l1')
    with pytest.raises(ValueError, match='5 columns'):
        MutualInformationLoss(cat_dims=[2, 3])(cat_codes=torch.zeros(1, 2, dtype=torch.long),
                                               code_logits=torch.zeros(1, 4))
    with pytest.raises(ValueError, match='needs code_logvar'):
        MutualInformationLoss(cont_dim=1)(cont_codes=torch.zeros(1, 1), code_mu=torch.zeros(1, 1))
    # a missing prediction is named, whichever code kind it belongs to (not an AttributeError on None)
    with pytest.raises(ValueError, match='needs cont_codes and code_mu with 2 columns'):
        MutualInformationLoss(cont_dim=2, cont_loss='mse')(cont_codes=torch.zeros(1, 2))
    with pytest.raises(ValueError, match='needs cat_codes and code_logits with 2 columns'):
        MutualInformationLoss(cat_dims=[2])(cat_codes=torch.zeros(1, 1, dtype=torch.long))
    with pytest.raises(ValueError, match='needs cont_codes and code_mu'):  # cat given, cont missing
        MutualInformationLoss(cat_dims=[2], cont_dim=1)(cat_codes=torch.zeros(1, 1, dtype=torch.long),
                                                        code_logits=torch.zeros(1, 2))


def _half(pos: list[float], neg: list[float]) -> float:
    """mean_i -log(e^{p_i} / (e^{p_i} + sum_j e^{n_j}))"""
    s = sum(math.exp(v) for v in neg)
    return sum(-math.log(math.exp(p) / (math.exp(p) + s)) for p in pos) / len(pos)


def test_dual_contrastive_loss_matches_the_formula():
    loss = build_loss(dict(type='DualContrastiveLoss', loss_weight=3.0))
    real = torch.tensor([[1.0], [0.2], [-0.5]])
    fake = torch.tensor([[-1.0], [0.4]])
    r, f = [1.0, 0.2, -0.5], [-1.0, 0.4]
    d_expected = _half(r, f) + _half([-v for v in f], [-v for v in r])
    g_expected = _half(f, r) + _half([-v for v in r], [-v for v in f])
    assert loss(real, fake, is_disc=True).item() == pytest.approx(d_expected, rel=1e-6)
    assert loss(real, fake, is_disc=False).item() == pytest.approx(3.0 * g_expected, rel=1e-6)
    # patch logits (N, 25) are flattened: every logit is a sample
    rp, fp = torch.randn(2, 4), torch.randn(3, 4)
    assert loss(rp, fp, True).item() == pytest.approx(
        _half(rp.flatten().tolist(), fp.flatten().tolist()) + _half((-fp).flatten().tolist(),
                                                                   (-rp).flatten().tolist()), rel=1e-5)
    # a well separated D (reals high, fakes low) has a small loss; reversed, a large one
    far = torch.full((4, 1), 10.0)
    assert loss(far, -far, True) < 0.01 < 10 < loss(-far, far, True)
