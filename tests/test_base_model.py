"""BaseModel machinery and the training sampler: EMA, warm-up, schedulers, loss reduction, sharding, resume."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from gfpgan.data.sampler import EnlargedSampler, SeededDataset, ShardSampler
from gfpgan.models.base_model import BaseModel
from gfpgan.models.lr_scheduler import CosineAnnealingRestartLR, MultiStepRestartLR, build_scheduler
from gfpgan.models.optimizers import build_optimizer


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)
        self.bn = nn.BatchNorm2d(2)


def _model(tmp_path=None, scheduler=None) -> BaseModel:
    opt = {'num_gpu': 0, 'is_train': True, 'train': {'scheduler': scheduler} if scheduler else {}}
    if tmp_path is not None:
        opt['path'] = {'models': str(tmp_path / 'models'), 'training_states': str(tmp_path / 'states')}
    return BaseModel(opt)


def test_ema_averages_parameters_and_copies_buffers():
    m = _model()
    m.net_g, m.net_g_ema = _Net(), _Net()
    with torch.no_grad():
        for p in m.net_g.parameters():
            p.fill_(1.0)
        for p in m.net_g_ema.parameters():
            p.fill_(0.0)
    m.net_g.bn.running_mean.fill_(3.0)
    m.net_g.bn.num_batches_tracked.fill_(5)
    m.model_ema(decay=0.75)
    for p in m.net_g_ema.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.25))
    assert torch.equal(m.net_g_ema.bn.running_mean, torch.full((2,), 3.0))
    assert int(m.net_g_ema.bn.num_batches_tracked) == 5


@pytest.mark.parametrize('kind', ['MultiStepLR', 'MultiStepRestartLR'])
def test_warmup_then_multistep(kind):
    """torch's (chainable) MultiStepLR and the closed-form restart one give the same rates under warm-up."""
    m = _model(scheduler={'type': kind, 'milestones': [6], 'gamma': 0.1})
    m.optimizers = [build_optimizer({'type': 'Adam', 'lr': 1.0, 'betas': [0.0, 0.99]}, _Net().parameters(), 'x')]
    m.setup_schedulers()
    lrs = []
    for it in range(1, 9):
        m.update_learning_rate(it, warmup_iter=4)
        lrs.append(round(m.get_current_learning_rate()[0], 6))
    assert lrs == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 0.1, 0.1]
    assert m.optimizers[0].defaults['betas'] == (0.0, 0.99)
    assert type(m.schedulers[0]) is (torch.optim.lr_scheduler.MultiStepLR if kind == 'MultiStepLR'
                                     else MultiStepRestartLR)


def test_unknown_optimizer_and_scheduler_errors():
    with pytest.raises(KeyError, match="No object named 'Adamm' in the optimizer registry. Did you mean: Adam"):
        build_optimizer({'type': 'Adamm', 'lr': 1.0}, _Net().parameters(), 'train.optim_g')
    opt = torch.optim.SGD(_Net().parameters(), lr=1.0)
    with pytest.raises(ValueError, match="unknown scheduler 'Cosine'"):
        build_scheduler(opt, {'type': 'Cosine'})
    assert isinstance(
        build_scheduler(opt, {'type': 'ReduceLROnPlateau', 'patience': 1}), torch.optim.lr_scheduler.ReduceLROnPlateau
    )


def test_cosine_restart_matches_closed_form():
    opt = torch.optim.SGD(_Net().parameters(), lr=1.0)
    sch = CosineAnnealingRestartLR(opt, periods=[4, 4], restart_weights=[1, 0.5], eta_min=0.0)
    seen = []
    for _ in range(9):
        seen.append(opt.param_groups[0]['lr'])
        opt.step()
        sch.step()
    import math

    expected = [0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(5)]
    expected += [0.5 * 0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(1, 5)]
    assert seen == pytest.approx(expected)
    sch2 = MultiStepRestartLR(
        torch.optim.SGD(_Net().parameters(), lr=1.0), [2], 0.5, restarts=[0, 4], restart_weights=[1, 0.5]
    )
    lrs = []
    for _ in range(6):
        lrs.append(sch2.optimizer.param_groups[0]['lr'])
        sch2.optimizer.step()
        sch2.step()
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.5]


def test_reduce_loss_dict_returns_floats():
    m = _model()
    out = m.reduce_loss_dict({'l_a': torch.tensor(2.0), 'l_b': torch.tensor([1.0, 3.0])})
    assert out == {'l_a': 2.0, 'l_b': 2.0}


def test_save_network_strips_ddp_and_writes_params_and_ema(tmp_path):
    m = _model(tmp_path)
    a, b = _Net(), _Net()
    path = m.save_network([b, nn.DataParallel(a)], 'net_g', 5, ['params', 'params_ema'])
    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) == {'params', 'params_ema'}
    assert torch.equal(ckpt['params_ema']['conv.weight'], a.conv.weight)
    assert os.path.basename(m.save_network(a, 'net_d', -1)) == 'net_d_latest.pth'


def test_enlarged_sampler_shards_and_resumes_mid_epoch():
    data = list(range(10))
    s0, s1 = EnlargedSampler(data, 2, 0, ratio=2, seed=3), EnlargedSampler(data, 2, 1, ratio=2, seed=3)
    s0.set_epoch(1)
    s1.set_epoch(1)
    items0, items1 = list(s0), list(s1)
    assert len(items0) == len(items1) == 10
    assert sorted(i for i, _ in items0 + items1) == sorted(data * 2)
    assert len({seed for _, seed in items0 + items1}) == 20
    s0.set_epoch(1, start=4)
    assert list(s0) == items0[4:] and len(s0) == 6
    s0.set_epoch(2)
    assert list(s0) != items0


def test_shard_sampler_covers_each_index_once():
    data = list(range(7))
    shards = [list(ShardSampler(data, 3, r)) for r in range(3)]
    assert sorted(sum(shards, [])) == data and [len(s) for s in shards] == [3, 2, 2]


def test_seeded_dataset_is_deterministic_and_keeps_main_rng():
    class Noisy:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.rand(2), float(__import__('numpy').random.rand())

    ds = SeededDataset(Noisy())
    torch.manual_seed(0)
    expected_next = torch.rand(1)
    torch.manual_seed(0)
    a = ds[(1, 123)]
    b = ds[(1, 123)]
    assert torch.equal(a[0], b[0]) and a[1] == b[1]
    assert not torch.equal(ds[(1, 124)][0], a[0])
    assert torch.equal(torch.rand(1), expected_next)  # the training RNG was not disturbed


def test_validation_progress_bar_follows_val_pbar():
    m = _model()
    loader = [1, 2, 3]
    assert m.validation_progress(loader, 'v') is loader
    m.opt['val'] = {'pbar': True}
    bar = m.validation_progress(loader, 'v')
    assert list(bar) == loader and bar.desc.startswith('Validate v')
