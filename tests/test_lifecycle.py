"""The shared model lifecycle, one test per behaviour, each run against all three models.

Written the way upstream's tests use the API: construct, feed_data, optimize_parameters, validation, save.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from gfpgan.archs import build_network
from gfpgan.models import build_model
from gfpgan.utils.checkpoint_io import load_checkpoint, save_checkpoint

MODELS = ('RestorationModel', 'GANModel', 'GFPGANModel')
SIZE = {'RestorationModel': 16, 'GANModel': 16, 'GFPGANModel': 32}


def options(kind: str, tmp_path: Path, **top) -> dict:
    """A tiny training option tree of `kind`, writing under tmp_path."""
    opt = {
        'name': f'life_{kind}', 'model_type': kind, 'num_gpu': 0, 'manual_seed': 0,
        'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1,
        'datasets': {'val': {'name': 'tinyval', 'type': 'unused'}},
        'path': {'models': str(tmp_path / 'models'), 'training_states': str(tmp_path / 'states'),
                 'visualization': str(tmp_path / 'vis'), 'experiments_root': str(tmp_path)},
        'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'total_iter': 10, 'ema_decay': 0.9},
        'val': {'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}},
        'logger': {'print_freq': 1},
    }
    size = SIZE[kind]
    if kind == 'RestorationModel':
        opt['network_g'] = {'type': 'ResidualCNN', 'num_feat': 4, 'num_block': 1}
        opt['train']['pixel_opt'] = {'type': 'L1Loss'}
    elif kind == 'GANModel':
        opt['network_g'] = {'type': 'DCGANGenerator', 'latent_dim': 8, 'image_size': size, 'base_channels': 4}
        opt['network_d'] = {'type': 'DCGANDiscriminator', 'image_size': size, 'base_channels': 4}
        opt['train'].update(optim_d={'type': 'Adam', 'lr': 1e-3}, gan_opt={'type': 'GANLoss', 'gan_type': 'vanilla'})
        opt['val'] = {'fid': {'source': 'random', 'width': 8, 'input_size': 16}, 'grids': {'num': 4}}
    else:
        opt['network_g'] = {'type': 'GFPGANv1Clean', 'out_size': size, 'num_style_feat': 32, 'channel_multiplier': 1,
                            'num_mlp': 1, 'narrow': 0.0625, 'different_w': True}
        opt['network_d'] = {'type': 'StyleGAN2Discriminator', 'out_size': size, 'channel_multiplier': 1,
                            'narrow': 0.125}
        opt['train'].update(optim_d={'type': 'Adam', 'lr': 1e-3}, pixel_opt={'type': 'L1Loss'},
                            gan_opt={'type': 'GANLoss', 'gan_type': 'wgan_softplus', 'loss_weight': 0.1},
                            r1_reg_weight=1, net_d_reg_every=2)
    opt.update(top)
    return opt


class Pairs(Dataset):
    """`n` seeded (lq, gt) pairs with file names, in the model's range; `opt` names the set."""

    def __init__(self, kind: str, n: int = 4) -> None:
        g = torch.Generator().manual_seed(5)
        size = SIZE[kind]
        self.gt = torch.rand(n, 3, size, size, generator=g)
        self.lq = (self.gt + 0.2 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)
        if kind == 'GFPGANModel':
            self.gt, self.lq = self.gt * 2 - 1, self.lq * 2 - 1
        self.opt = {'name': 'tinyval'}

    def __len__(self) -> int:
        return len(self.gt)

    def __getitem__(self, i: int) -> dict:
        return {'lq': self.lq[i], 'gt': self.gt[i], 'gt_path': f'/data/face_{i:02d}.png'}


def loader(kind: str, n: int = 4) -> DataLoader:
    return DataLoader(Pairs(kind, n), batch_size=2, shuffle=False)


def batch(kind: str) -> dict:
    return next(iter(loader(kind)))


def same(a: torch.nn.Module, b: dict) -> bool:
    return all(torch.equal(v, b[k]) for k, v in a.state_dict().items())


# ---------------------------------------------------------------------------------------------- loading
@pytest.mark.parametrize('kind', MODELS)
def test_pretrained_loading_is_strict_unless_strict_load_false(kind, tmp_path):
    opt = options(kind, tmp_path)
    torch.manual_seed(1)
    weights = build_network(opt['network_g']).state_dict()
    ckpt = tmp_path / 'pretrained.pth'
    save_checkpoint({'params': {**weights, 'stray.weight': torch.zeros(1)}, 'params_ema': weights}, ckpt)
    for strict in (None, True):  # upstream files write `strict_load_g: ~`: strict, as `true`
        opt['path'].update(pretrain_network_g=str(ckpt), strict_load_g=strict)
        with pytest.raises(RuntimeError, match='stray.weight'):
            build_model(copy.deepcopy(opt))
    opt['path']['strict_load_g'] = False
    model = build_model(opt)
    assert same(model.get_bare_model(model.net_g), weights)
    assert same(model.net_g_ema, weights)  # the EMA copy comes from params_ema, under the same rule
    del weights[next(iter(weights))]  # a missing key is refused for the EMA copy too
    save_checkpoint({'params': weights, 'params_ema': weights}, ckpt)
    opt['path']['strict_load_g'] = None
    with pytest.raises(RuntimeError, match='[Mm]issing'):
        build_model(opt)


# ---------------------------------------------------------------------------------------------- AMP, layout
@pytest.mark.parametrize('kind', MODELS)
def test_amp_means_the_same_for_every_model(kind, tmp_path):
    for amp, scaled in (('bf16', False), ('fp16', True)):
        model = build_model(options(kind, tmp_path, amp=amp, channels_last=True))
        assert model.amp_dtype == {'bf16': torch.bfloat16, 'fp16': torch.float16}[amp]
        assert model.scaler_g.is_enabled() == scaled  # only fp16 needs loss scaling
        assert all(s.is_enabled() == scaled for s in model.grad_scalers.values())
    model.feed_data(batch(kind))
    if kind != 'GANModel':
        assert model.lq.is_contiguous(memory_format=torch.channels_last)
    bf16 = build_model(options(kind, tmp_path, amp='bf16'))
    bf16.feed_data(batch(kind))
    bf16.optimize_parameters(1)
    assert bf16.log_dict and all(torch.isfinite(torch.tensor(v)) for v in bf16.log_dict.values())
    for bad in (True, 'fp8'):
        with pytest.raises(ValueError, match='amp: expected bf16, fp16 or ~'):
            build_model(options(kind, tmp_path, amp=bad))


# ---------------------------------------------------------------------------------------------- EMA
@pytest.mark.parametrize('kind', MODELS)
def test_without_ema_there_is_no_net_g_ema_and_test_uses_net_g(kind, tmp_path):
    opt = options(kind, tmp_path)
    opt['train']['ema_decay'] = 0
    model = build_model(opt)
    assert not hasattr(model, 'net_g_ema')
    model.feed_data(batch(kind))
    model.optimize_parameters(1)
    model.test()
    assert torch.isfinite(model.output).all()
    model.save(0, 1)
    assert set(load_checkpoint(tmp_path / 'models' / 'net_g_1.pth')) == {'params'}
    with_ema = build_model(options(kind, tmp_path))
    del with_ema.net_g_ema  # BasicSR-style code removes it; evaluation falls back to net_g
    with_ema.feed_data(batch(kind))
    with_ema.test()
    assert with_ema.eval_generator() is with_ema.get_bare_model(with_ema.net_g)


# ---------------------------------------------------------------------------------------------- best checkpoint
@pytest.mark.parametrize('kind', MODELS)
def test_best_checkpoint_follows_the_declared_direction_not_the_name(kind, tmp_path, monkeypatch):
    """A metric named `fid` but of type calculate_psnr is higher-better; GANModel's fid (calculate_fid) is lower."""
    opt = options(kind, tmp_path)
    if kind != 'GANModel':
        opt['val']['metrics'] = {'fid': {'type': 'calculate_psnr', 'crop_border': 0}}
    opt['val']['keep_best'] = True  # the first metric the model validates: `fid` for all three here
    model = build_model(opt)
    better = 'lower' if kind == 'GANModel' else 'higher'
    assert model.metric_better('fid') == better
    values = iter([10.0, 12.0, 8.0] if better == 'higher' else [10.0, 8.0, 12.0])
    monkeypatch.setattr(model, 'compute_validation_metrics', lambda *a: {'fid': next(values), '_count': 1})
    best = tmp_path / 'models' / 'net_g_best.pth'
    model.validation(loader(kind), 1, None)
    assert best.is_file() and model.metric_results == {'fid': 10.0}
    best.unlink()
    model.validation(loader(kind), 2, None)  # better
    improved = 8.0 if better == 'lower' else 12.0
    assert best.is_file() and model.best_metric_results['tinyval']['fid'] == {'val': improved, 'iter': 2}
    best.unlink()
    model.validation(loader(kind), 3, None)  # worse: the best checkpoint stays
    assert not best.exists() and model.best_metric_results['tinyval']['fid']['iter'] == 2
    assert set(load_checkpoint(model.save_generator('best'))) == {'params', 'params_ema'}  # release layout
    opt['val']['keep_best'] = {'metric': 'psnr_typo'}
    with pytest.raises(KeyError, match="val.keep_best: metric 'psnr_typo'"):
        build_model(opt)


# ---------------------------------------------------------------------------------------------- images
@pytest.mark.parametrize('kind', MODELS)
def test_validation_images_follow_one_naming_rule(kind, tmp_path):
    stem = 'samples' if kind == 'GANModel' else 'face_00'  # GANModel saves its sample grid
    model = build_model(options(kind, tmp_path))
    results = model.validation(loader(kind), 7, None, save_img=True)
    assert model.metric_results == {k: v for k, v in results.items() if not k.startswith('_')}
    assert (tmp_path / 'vis' / stem / f'{stem}_7.png').is_file()
    opt = options(kind, tmp_path)
    opt['val']['suffix'] = 'mine'
    build_model(opt).validation(loader(kind), 8, None, save_img=True)
    assert (tmp_path / 'vis' / stem / f'{stem}_mine.png').is_file()
    test_opt = options(kind, tmp_path, is_train=False)
    test_opt['path']['visualization'] = str(tmp_path / 'results')
    build_model(test_opt).validation(loader(kind), 0, None, save_img=True)
    assert (tmp_path / 'results' / 'tinyval' / f'{stem}_life_{kind}.png').is_file()


# ---------------------------------------------------------------------------------------------- upstream API
@pytest.mark.parametrize('kind', MODELS)
def test_upstream_style_construct_feed_optimize_validate_save(kind, tmp_path):
    model = build_model(options(kind, tmp_path))
    data = batch(kind)
    model.feed_data(data)
    model.optimize_parameters(1)
    assert isinstance(model.log_dict, dict) and model.get_current_log() is model.log_dict and model.log_dict
    if kind != 'GANModel':
        assert model.output.shape == data['gt'].shape
    model.validation(loader(kind), 1, None, save_img=False)
    assert set(model.metric_results) == ({'fid', 'fid_ema'} if kind == 'GANModel' else {'psnr'})
    model.save(0, 1)
    model.save_training_state(0, 1)
    assert (tmp_path / 'models' / 'net_g_1.pth').is_file() and (tmp_path / 'states' / '1.state').is_file()


def test_gfpgan_component_boxes_have_upstream_attribute_names(tmp_path):
    model = build_model(options('GFPGANModel', tmp_path))
    data = batch('GFPGANModel')
    boxes = {f'loc_{c}': torch.tensor([[4.0, 4.0, 12.0, 12.0], [5.0, 5.0, 13.0, 13.0]])
             for c in ('left_eye', 'right_eye', 'mouth')}
    model.feed_data({**data, **boxes})
    for upstream, ours in (('loc_left_eyes', 'left_eye'), ('loc_right_eyes', 'right_eye'), ('loc_mouths', 'mouth')):
        assert torch.equal(getattr(model, upstream), boxes[f'loc_{ours}'])


# ---------------------------------------------------------------------------------------------- compile
@pytest.mark.parametrize('kind', ['RestorationModel', 'GANModel'])
def test_compile_trains_like_eager(kind, tmp_path, monkeypatch):
    """`compile: true` wraps the training networks in torch.compile: the same losses as eager, the same
    checkpoint layout. The test compiles with the `aot_eager` backend (graph capture and compiled autograd,
    seconds); inductor, the default, takes about a minute for these nets on 2 CPU cores (same losses)."""
    compiled = []
    real_compile = torch.compile

    def compile_(module, **kwargs):
        compiled.append(type(module).__name__)
        return real_compile(module, backend='aot_eager')

    logs = {}
    for use in (False, True):
        if use:
            monkeypatch.setattr(torch, 'compile', compile_)
        torch.manual_seed(0)
        model = build_model(options(kind, tmp_path / str(use), compile=use))
        logs[use] = []
        for it in (1, 2):
            torch.manual_seed(it)
            model.feed_data(batch(kind))
            model.optimize_parameters(it)
            logs[use].append(dict(model.log_dict))
        model.save(0, 2)
    assert compiled == (['ResidualCNN'] if kind == 'RestorationModel' else ['DCGANGenerator', 'DCGANDiscriminator'])
    for eager, comp in zip(logs[False], logs[True]):
        assert comp.keys() == eager.keys() and all(comp[k] == pytest.approx(eager[k], rel=1e-5) for k in eager)
    keys = [set(load_checkpoint(tmp_path / str(use) / 'models' / 'net_g_2.pth')['params']) for use in (False, True)]
    assert keys[0] == keys[1]  # no `_orig_mod.` prefix: compiled runs write the release layout
