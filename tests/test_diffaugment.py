"""DiffAugment: shapes, value ranges, identity at p=0, differentiability, per-sample probability, ADA control."""
from __future__ import annotations

import pytest
import torch

from gfpgan.archs.diffaugment import (
    AdaptiveAugmentProbability,
    DiffAugment,
    aug_prob_for_dataset_size,
    rand_brightness,
    rand_contrast,
    rand_cutout,
    rand_offset,
    rand_saturation,
    rand_translation,
    shift_images,
)


@pytest.fixture
def images():
    torch.manual_seed(0)
    return torch.rand(6, 3, 32, 32) * 2 - 1


@pytest.mark.parametrize('policy', ['color', 'translation', 'offset', 'cutout', 'color,translation,cutout',
                                    'color,offset,translation,cutout'])
def test_shapes_dtype_and_that_it_changes_images(images, policy):
    out = DiffAugment(policy, prob=1.0)(images)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert not torch.equal(out, images)


def test_identity_at_probability_zero(images):
    assert torch.equal(DiffAugment('color,translation,offset,cutout', prob=0.0)(images), images)
    assert torch.equal(DiffAugment('', prob=1.0)(images), images)


def test_value_ranges(images):
    # geometric transforms only move or zero pixels
    for fn in (rand_translation, rand_cutout):
        out = fn(images)
        allowed = torch.cat([images.flatten(), torch.zeros(1)])
        assert torch.isin(out, allowed).all()
    # offset is a wrap-around roll: the same multiset of values per image
    out = rand_offset(images)
    assert torch.equal(out.flatten(1).sort(1).values, images.flatten(1).sort(1).values)
    # brightness adds one constant per image in [-0.5, 0.5]
    delta = rand_brightness(images) - images
    assert torch.allclose(delta, delta[:, :1, :1, :1].expand_as(delta), atol=1e-6)
    assert delta.abs().max() <= 0.5
    # saturation keeps each pixel's channel mean; contrast keeps each image's mean
    assert torch.allclose(rand_saturation(images).mean(1), images.mean(1), atol=1e-5)
    assert torch.allclose(rand_contrast(images).mean((1, 2, 3)), images.mean((1, 2, 3)), atol=1e-5)
    # the whole default policy on [-1, 1] inputs stays within what its factors allow:
    # |x| <= 1.5 after brightness, (1-s)m + s*x with s <= 2 triples that, (1-c)M + c*x with c <= 1.5 doubles it
    out = DiffAugment('color,translation,cutout')(images * 0 + torch.sign(images))
    assert out.abs().max() <= 1.5 * 3 * 2 + 1e-5


def test_translation_shifts_with_zero_fill_and_offset_wraps(images):
    dy, dx = torch.tensor([2, 0, -1, 0, 0, 3]), torch.tensor([0, -3, 0, 0, 1, 3])
    shifted = shift_images(images, dy, dx, wrap=False)
    assert torch.equal(shifted[0, :, 2:], images[0, :, :-2]) and (shifted[0, :, :2] == 0).all()
    assert torch.equal(shifted[1, :, :, :-3], images[1, :, :, 3:]) and (shifted[1, :, :, -3:] == 0).all()
    assert torch.equal(shifted[3], images[3])
    rolled = shift_images(images, dy, dx, wrap=True)
    for i in range(6):
        assert torch.equal(rolled[i], torch.roll(images[i], (int(dy[i]), int(dx[i])), (1, 2)))


def test_cutout_zeroes_one_square_of_half_the_side():
    torch.manual_seed(1)
    ones = torch.ones(64, 1, 32, 32)
    out = rand_cutout(ones)
    for img in out[:, 0]:
        rows, cols = torch.nonzero(img == 0, as_tuple=True)
        assert rows.numel() > 0
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert h <= 16 and w <= 16 and rows.numel() == h * w  # one solid rectangle, clipped at borders
    assert 0.15 < (out == 0).float().mean() < 0.25  # 1/4 of the area, less what falls off the edge


def test_differentiable(images):
    x = images.clone().requires_grad_(True)
    out = DiffAugment('color,translation,offset,cutout')(x)
    out.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # through a generator: gradient reaches its weights
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    DiffAugment('translation,cutout', prob=0.5)(conv(images)).mean().backward()
    assert conv.weight.grad.abs().sum() > 0


def test_probability_is_per_sample():
    torch.manual_seed(0)
    x = torch.zeros(2000, 1, 8, 8)
    out = DiffAugment('brightness', prob=0.3)(x)
    changed = (out != 0).flatten(1).any(1).float().mean().item()
    assert abs(changed - 0.3) < 0.04


def test_unknown_policy_is_named():
    with pytest.raises(ValueError, match="unknown policy \\['rotate'\\]"):
        DiffAugment('color,rotate')


def test_adaptive_probability_rises_when_d_overfits_and_falls_otherwise():
    ada = AdaptiveAugmentProbability(target=0.6, speed_imgs=80, interval=2, max_prob=0.8)
    confident = torch.ones(8, 1) * 3  # D says "real" for every real: overfitting
    for _ in range(4):
        ada.update(confident)
    assert ada.prob == pytest.approx(2 * 16 / 80)  # two adjustments of batch*interval/speed
    for _ in range(20):
        ada.update(confident)
    assert ada.prob == pytest.approx(0.8)  # capped
    unsure = torch.tensor([[1.0], [-1.0]] * 4)  # r_t = 0 < target
    for _ in range(200):
        ada.update(unsure)
    assert ada.prob == 0.0
    state = ada.state_dict()
    other = AdaptiveAugmentProbability()
    other.load_state_dict(state)
    assert other.prob == ada.prob


def test_dataset_size_heuristic_decreases_with_size():
    probs = [aug_prob_for_dataset_size(n) for n in (100, 1000, 10_000, 100_000, 1_000_000)]
    assert probs == sorted(probs, reverse=True) and probs[0] == 0.5 and probs[-1] == 0.0
    with pytest.raises(ValueError, match='num_images'):
        aug_prob_for_dataset_size(0)
