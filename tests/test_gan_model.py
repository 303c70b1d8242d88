"""GANModel: every GAN loss type, n-critic, gradient accumulation, EMA, plateau scheduler, AMP, grids,
checkpoints and resume state, FID validation, and a short CPU training run that lowers FID."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch

from gfpgan.archs.diffaugment import aug_prob_for_dataset_size
from gfpgan.losses.regularizer_loss import DRAGANLoss, GradientPenaltyLoss, R1Loss
from gfpgan.models import build_model

LATENT = 16
REPO = Path(__file__).resolve().parents[1]


def make_opt(tmp_path, gan_type='vanilla', size=32, use_bn=True, **train):
    opt = {
        'name': 'gan_test', 'model_type': 'GANModel', 'is_train': True, 'num_gpu': 0, 'dist': False,
        'manual_seed': 0,
        'network_g': {'type': 'DCGANGenerator', 'latent_dim': LATENT, 'image_size': size, 'base_channels': 4,
                      'use_bn': use_bn},
        'network_d': {'type': 'DCGANDiscriminator', 'image_size': size, 'base_channels': 4, 'use_bn': use_bn},
        'path': {'visualization': str(tmp_path / 'vis'), 'models': str(tmp_path / 'models'),
                 'training_states': str(tmp_path / 'states'), 'experiments_root': str(tmp_path)},
        'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.5, 0.999]},
                  'optim_d': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.5, 0.999]},
                  'gan_opt': {'type': 'GANLoss', 'gan_type': gan_type}, 'total_iter': 100},
        'val': {'grids': {'num': 16, 'nrow': 4}},
        'logger': {'print_freq': 1},
    }
    opt['train'].update(train)
    return opt


def real_batch(n=8, size=32, seed=0):
    """Bright squares on dark backgrounds in [0, 1]: easy for D to tell from an untrained G's output."""
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(n, 3, size, size, generator=g) * 0.2
    img[:, :, size // 4: 3 * size // 4, size // 4: 3 * size // 4] += 0.7
    return {'gt': img}


def params(net):
    return [p.detach().clone() for p in net.parameters()]


def changed(before, net):
    return any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize('gan_type,extra', [
    ('vanilla', {}),
    ('lsgan', {'r1_reg_weight': 1.0}),
    ('wgan', {'gp_weight': 10.0}),
    ('wgan_softplus', {'r1_reg_weight': 0.5, 'net_d_reg_every': 2}),
    ('hinge', {'dragan_weight': 1.0}),
])
def test_each_gan_loss_type_trains_d_to_separate_and_updates_g(tmp_path, gan_type, extra):
    torch.manual_seed(0)
    opt = make_opt(tmp_path, gan_type, use_bn=gan_type != 'wgan', net_d_init_iters=12, **extra)
    model = build_model(opt)
    g_before = params(model.net_g)
    gaps = []
    for it in range(1, 13):  # D-only warm-up: D must learn to tell reals from fakes
        model.feed_data(real_batch())
        model.optimize_parameters(it)
        log = model.get_current_log()
        gaps.append(log['D(x)'] - log['D(G(z))_d'])
        assert 'l_g' not in log
    assert not changed(g_before, model.net_g)
    assert gaps[-1] > max(10 * abs(gaps[0]), 0.02), gaps  # D(x) - D(G(z)) grew from ~0
    if gan_type == 'vanilla':
        assert 0 < log['D(G(z))_d'] < log['D(x)'] < 1  # logged as probabilities for BCE
    penalties = {'r1_reg_weight': ('l_d_r1', R1Loss), 'gp_weight': ('l_d_gp', GradientPenaltyLoss),
                 'dragan_weight': ('l_d_dragan', DRAGANLoss)}
    for key in extra:
        if key in penalties:  # logged, and computed by the registered loss (one implementation)
            name, cls = penalties[key]
            assert name in log and math.isfinite(log[name])
            assert isinstance({'l_d_r1': model.cri_r1, 'l_d_gp': model.cri_gp, 'l_d_dragan': model.cri_dragan}[name],
                              cls)
    model.feed_data(real_batch())
    model.optimize_parameters(13)
    log = model.get_current_log()
    assert changed(g_before, model.net_g)
    for key in ('l_d', 'l_g', 'D(x)', 'D(G(z))_pre_g', 'D(G(z))_post_g'):
        assert key in log and torch.isfinite(torch.tensor(log[key])), key
    if gan_type == 'vanilla':
        assert log['D(G(z))_post_g'] > log['D(G(z))_pre_g']  # G's step fooled D more on the same latents


def test_n_critic_updates_g_every_nth_iteration(tmp_path):
    torch.manual_seed(0)
    model = build_model(make_opt(tmp_path, 'wgan', use_bn=False, gp_weight=10.0, net_d_iters=3))
    updated = []
    for it in range(1, 7):
        before = params(model.net_g)
        model.feed_data(real_batch())
        model.optimize_parameters(it)
        updated.append(changed(before, model.net_g))
    assert updated == [False, False, True, False, False, True]


def _grads(net):
    return [p.grad.detach().clone() for p in net.parameters()]


def test_accumulated_micro_batches_give_the_full_batch_gradients(tmp_path):
    """k micro-batches of b == one batch of k*b, for a BN-free G/D pair (BN would see other statistics)."""
    models = []
    for k in (1, 4):
        torch.manual_seed(0)
        models.append(build_model(make_opt(tmp_path, 'vanilla', use_bn=False, accumulate_grad_batches=k,
                                           r1_reg_weight=1.0)))
    full, accum = models
    assert all(torch.equal(a, b) for a, b in zip(params(full.net_d), accum.net_d.parameters()))
    real = full.data_range and real_batch(8)['gt'] * 2 - 1
    z = torch.randn(8, LATENT)
    logs = []
    for m in models:
        m.optimizer_d.zero_grad()
        logs.append(m.backward_d(real, z, current_iter=1))
    for a, b in zip(_grads(full.net_d), _grads(accum.net_d)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    for key in ('l_d', 'l_d_r1', 'D(x)'):
        torch.testing.assert_close(logs[0][key], logs[1][key], rtol=1e-5, atol=1e-7)
    for m in models:
        m.optimizer_g.zero_grad()
        m.backward_g(z)
    for a, b in zip(_grads(full.net_g), _grads(accum.net_g)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert any(g.abs().sum() > 0 for g in _grads(full.net_g))
    # and whole iterations (latents drawn inside) stay equal
    for m in models:
        torch.manual_seed(5)
        m.feed_data(real_batch(8, seed=3))
        m.optimize_parameters(1)
    for a, b in zip(full.net_g.parameters(), accum.net_g.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_accumulation_needs_a_divisible_batch(tmp_path):
    model = build_model(make_opt(tmp_path, accumulate_grad_batches=3))
    model.feed_data(real_batch(8))
    with pytest.raises(ValueError, match='accumulate_grad_batches=3'):
        model.optimize_parameters(1)


def test_ema_follows_then_averages_after_start_iter(tmp_path):
    torch.manual_seed(0)
    model = build_model(make_opt(tmp_path, use_bn=False, ema_decay=0.5, ema_start_iter=3))
    for it in (1, 2):
        model.feed_data(real_batch())
        model.optimize_parameters(it)
        for p, e in zip(model.net_g.parameters(), model.net_g_ema.parameters()):
            assert torch.equal(p, e)  # before ema_start_iter the EMA copy follows G
    ema_before = params(model.net_g_ema)
    model.feed_data(real_batch())
    model.optimize_parameters(3)
    for old, p, e in zip(ema_before, model.net_g.parameters(), model.net_g_ema.parameters()):
        torch.testing.assert_close(e, 0.5 * old + 0.5 * p)
    assert changed(ema_before, model.net_g_ema)
    assert not any(p.requires_grad for p in model.net_g_ema.parameters())


def test_reduce_lr_on_plateau_steps_with_the_averaged_monitored_value(tmp_path):
    torch.manual_seed(0)
    sched = {'type': 'ReduceLROnPlateau', 'monitor': 'l_d', 'mode': 'min', 'factor': 0.5, 'patience': 0,
             'threshold': 100.0, 'threshold_mode': 'abs', 'step_every': 2}  # nothing counts as improvement
    model = build_model(make_opt(tmp_path, scheduler=sched))
    lrs = []
    for it in range(1, 7):
        model.update_learning_rate(it)
        model.feed_data(real_batch())
        model.optimize_parameters(it)
        lrs.append(model.optimizer_g.param_groups[0]['lr'])
    # steps at iterations 2 (sets the best), 4 and 6 (no improvement: halve)
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4])
    assert model.optimizer_d.param_groups[0]['lr'] == pytest.approx(2.5e-4)


def test_plateau_monitor_must_be_a_logged_value(tmp_path):
    sched = {'type': 'ReduceLROnPlateau', 'monitor': 'l_typo', 'step_every': 1}
    model = build_model(make_opt(tmp_path, scheduler=sched))
    model.feed_data(real_batch())
    model.optimize_parameters(1)
    with pytest.raises(KeyError, match="'l_typo' is not a logged value"):
        model.optimize_parameters(2)


def test_amp_bf16_on_cpu_trains(tmp_path):
    torch.manual_seed(0)
    opt = make_opt(tmp_path)
    opt['amp'] = 'bf16'
    model = build_model(opt)
    before = params(model.net_g)
    model.feed_data(real_batch())
    model.optimize_parameters(1)
    assert changed(before, model.net_g)
    assert all(torch.isfinite(torch.tensor(v)) for v in model.get_current_log().values())
    with pytest.raises(ValueError, match="amp: expected"):
        build_model({**opt, 'amp': 'fp8'})


def test_diffaug_and_lightweight_gan_with_aux_loss(tmp_path):
    torch.manual_seed(0)
    opt = make_opt(tmp_path, 'hinge', diffaug={'policy': 'color,offset,cutout', 'prob': 'auto', 'interval': 1,
                                               'speed_imgs': 80})
    opt['network_g'] = {'type': 'LightweightGANGenerator', 'latent_dim': LATENT, 'image_size': 32,
                        'base_channels': 2, 'max_channels': 16, 'sle_ratio': 4}
    opt['network_d'] = {'type': 'LightweightGANDiscriminator', 'image_size': 32, 'base_channels': 2,
                        'max_channels': 16, 'disc_output_size': 1}
    model = build_model(opt)
    d_before = {n: p.detach().clone() for n, p in model.net_d.named_parameters()}
    for it in range(1, 4):
        model.feed_data(real_batch())
        model.optimize_parameters(it)
    log = model.get_current_log()
    assert log['l_d_recon'] > 0 and 'aug_prob' in log
    opt['train']['diffaug'] = {'prob': 'auto', 'num_images': 300}
    start = build_model(opt).diffaug.prob
    assert start == pytest.approx(aug_prob_for_dataset_size(300)) and start > 0.3
    opt['train']['diffaug'] = {'prob': 0.5, 'target': 0.6}
    with pytest.raises(KeyError, match='only apply with prob: auto'):
        build_model(opt)
    # every D weight, the reconstruction decoders' included, got trained (a hinge loss inside its margins
    # gives the last bias equal and opposite real/fake gradients, so biases may stay)
    for name, p in model.net_d.named_parameters():
        assert name.endswith('bias') or not torch.equal(d_before[name], p), name


def test_grids_checkpoints_loss_curve_and_resume_state(tmp_path):
    torch.manual_seed(0)
    opt = make_opt(tmp_path, ema_decay=0.9, scheduler={'type': 'ReduceLROnPlateau', 'monitor': 'l_g',
                                                        'step_every': 2})
    opt['val']['grids']['freq'] = 2
    model = build_model(opt)
    for it in range(1, 4):
        model.feed_data(real_batch())
        model.optimize_parameters(it)
    from gfpgan.utils.image_io import imread
    vis = tmp_path / 'vis'
    grid = imread(vis / 'samples_00000002.png')
    assert grid.shape == (4 * 34 + 2, 4 * 34 + 2, 3)  # 16 fixed latents, 4 per row, 2 px padding
    assert (vis / 'samples_ema_00000002.png').is_file()
    assert grid[2:34, 2:34].std() > 0
    model.save(0, 3)
    assert (vis / 'loss_curve.png').is_file()
    from gfpgan.utils.checkpoint_io import load_checkpoint
    ckpt = load_checkpoint(tmp_path / 'models' / 'net_g_3.pth')
    assert set(ckpt) == {'params', 'params_ema'}
    assert set(load_checkpoint(tmp_path / 'models' / 'net_d_3.pth')) == {'params'}
    path = model.save_training_state(0, 3)
    state = load_checkpoint(path)
    assert [h['iter'] for h in state['gan_model']['history']] == [1.0, 2.0, 3.0]
    assert state['plateau_acc'] == [pytest.approx(model.history[-1]['l_g']), 1]
    fresh = build_model(copy.deepcopy(opt))
    fresh.resume_training(state)
    assert fresh.history == model.history and fresh._plateau_count == 1
    assert torch.equal(fresh.fixed_z, model.fixed_z)  # the same latents across restarts


def test_missing_options_are_named(tmp_path):
    opt = make_opt(tmp_path)
    del opt['train']['gan_opt']
    with pytest.raises(KeyError, match='train.gan_opt'):
        build_model(opt)
    opt = make_opt(tmp_path, 'minimax')
    with pytest.raises(ValueError, match="'minimax'"):
        build_model(opt)


# ---------------------------------------------------------------------------------------------- FID
def _shapes_opt(tmp_path, num_samples: int | None = None, **val):
    """options/train_dcgan_tiny.yml writing under `tmp_path`; `num_samples` sizes both the val set and FID."""
    from gfpgan.utils.options import yaml_load
    opt = yaml_load(str(REPO / 'options' / 'train_dcgan_tiny.yml'))
    opt.update({'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1})
    opt['path'] = {'visualization': str(tmp_path / 'vis'), 'models': str(tmp_path / 'models'),
                   'training_states': str(tmp_path / 'states'), 'experiments_root': str(tmp_path)}
    opt['val'].update(val)
    if num_samples is not None:
        opt['datasets']['val']['num_samples'] = opt['val']['fid']['num_samples'] = num_samples
    return opt


def _loader(dataset_opt, phase='val'):
    from gfpgan.data import build_dataloader, build_dataset
    opt = dict(dataset_opt, phase=phase)
    return build_dataloader(build_dataset(opt), opt)


def test_fid_validation_is_rng_neutral_cached_and_keeps_the_best(tmp_path):
    opt = _shapes_opt(tmp_path, num_samples=64)
    torch.manual_seed(0)
    model = build_model(opt)
    loader = _loader(opt['datasets']['val'])
    rng = torch.get_rng_state()
    first = model.validation(loader, 1, None)
    assert torch.equal(torch.get_rng_state(), rng)  # resumed runs see the same random stream
    assert set(first) == {'fid', 'fid_ema', '_count'} and first['_count'] == 64
    assert first['fid'] > 0 and first['fid'] == pytest.approx(first['fid_ema'])  # EMA == G at start
    assert (tmp_path / 'models' / 'net_g_best.pth').is_file()
    cache = list((tmp_path / 'fid_cache').glob('fid_real_shapes_fid_*.npz'))
    assert len(cache) == 1
    # a fresh model (e.g. after a restart) reads the cache instead of the real images
    from gfpgan.models import gan_evaluation

    def no_real_pass(*args, **kwargs):
        raise AssertionError('real statistics recomputed despite the cache')

    again = build_model(copy.deepcopy(opt))
    again.net_g.load_state_dict(model.net_g.state_dict())
    again.net_g_ema.load_state_dict(model.net_g_ema.state_dict())
    original, gan_evaluation.real_feature_stats = gan_evaluation.real_feature_stats, no_real_pass
    try:
        assert again.validation(loader, 1, None)['fid'] == pytest.approx(first['fid'], rel=1e-9)
    finally:
        gan_evaluation.real_feature_stats = original
    # no improvement (the same generator again): the best checkpoint and record stay
    best_before = (tmp_path / 'models' / 'net_g_best.pth').stat().st_mtime_ns
    assert model.validation(loader, 2, None)['fid'] == pytest.approx(first['fid'], rel=1e-9)
    assert (tmp_path / 'models' / 'net_g_best.pth').stat().st_mtime_ns == best_before
    assert model.best_metric_results['shapes_fid']['fid'] == {'val': first['fid'], 'iter': 1}
    # a better one replaces it
    model.best_metric_results['shapes_fid']['fid']['val'] = first['fid'] + 1
    model.validation(loader, 3, None)
    assert model.best_metric_results['shapes_fid']['fid']['iter'] == 3
    assert (tmp_path / 'models' / 'net_g_best.pth').stat().st_mtime_ns != best_before


def test_plateau_on_fid_steps_at_validation(tmp_path):
    opt = _shapes_opt(tmp_path, num_samples=32)
    opt['train']['scheduler'] = {'type': 'ReduceLROnPlateau', 'monitor': 'fid', 'factor': 0.1, 'patience': 0}
    model = build_model(opt)
    loader = _loader(opt['datasets']['val'])
    lr = model.optimizer_g.param_groups[0]['lr']
    model.validation(loader, 1, None)
    model.validation(loader, 2, None)  # the same generator: no improvement -> lr x 0.1
    assert model.optimizer_g.param_groups[0]['lr'] == pytest.approx(lr * 0.1)


def test_tiny_dcgan_training_lowers_fid(tmp_path):
    """A few hundred CPU iterations on the synthetic shapes bring G's samples closer to them (FID drops)."""
    opt = _shapes_opt(tmp_path, keep_best=False)
    opt['train']['total_iter'] = 300
    torch.manual_seed(0)
    model = build_model(opt)
    val_loader = _loader(opt['datasets']['val'])
    before = model.validation(val_loader, 0, None)['fid']
    train_loader = _loader(opt['datasets']['train'], 'train')
    it = 0
    while it < opt['train']['total_iter']:
        for data in train_loader:
            it += 1
            model.feed_data(data)
            model.optimize_parameters(it)
            if it == opt['train']['total_iter']:
                break
    after = model.validation(val_loader, it, None)
    print(f'FID (random-feature) untrained {before:.4f} -> trained {after["fid"]:.4f}, EMA {after["fid_ema"]:.4f}')
    assert after['fid'] < 0.5 * before
    assert after['fid_ema'] < 0.5 * before


def test_evaluation_mode_fid_of_a_saved_ema_generator(tmp_path):
    """As gfpgan/test.py builds it (is_train false): the EMA weights loaded as net_g give the trained fid_ema."""
    opt = _shapes_opt(tmp_path, num_samples=32)
    torch.manual_seed(0)
    model = build_model(opt)
    loader = _loader(opt['datasets']['val'])
    for it in range(1, 4):
        model.feed_data(real_batch())
        model.optimize_parameters(it)
    trained = model.validation(loader, 3, None)
    model.save(0, 3)
    test_opt = _shapes_opt(tmp_path / 'eval')
    test_opt['is_train'] = False
    test_opt['val']['fid']['num_samples'] = 32
    test_opt['path'] = {'results_root': str(tmp_path / 'results'), 'param_key_g': 'params_ema',
                        'pretrain_network_g': str(tmp_path / 'models' / 'net_g_3.pth')}
    evaluator = build_model(test_opt)
    result = evaluator.validation(loader, 0, None)
    assert set(result) == {'fid', '_count'}
    assert result['fid'] == pytest.approx(trained['fid_ema'], rel=1e-9)


@pytest.mark.parametrize('name', ['train_dcgan.yml', 'train_lightweight_gan.yml', 'train_dcgan_tiny.yml',
                                  'train_lightweight_gan_tiny.yml'])
def test_option_files_validate_and_build(name):
    from gfpgan.archs import build_network
    from gfpgan.utils.options import validate_options, yaml_load
    opt = yaml_load(str(REPO / 'options' / name))
    validate_options(opt, name, is_train=True)
    size = opt['network_g']['image_size']
    with torch.device('meta'):
        g, d = build_network(opt['network_g']), build_network(opt['network_d'])
        img = g(torch.zeros(2, opt['network_g']['latent_dim']))
        assert img.shape == (2, 3, size, size)
        assert d(img).shape[0] == 2
    assert opt['datasets']['train'].get('image_size') == size
    assert opt['train']['gan_opt']['type'] == 'GANLoss'


def test_ddp_skips_gradient_sync_on_all_but_the_last_micro_batch(tmp_path, monkeypatch):
    """With DDP (a 1-process gloo group here), micro-batches 1..k-1 run under no_sync, the k-th syncs."""
    import socket

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1)
    entered = []
    original = DistributedDataParallel.no_sync

    def counting_no_sync(self):
        entered.append(type(self.module).__name__)
        return original(self)

    monkeypatch.setattr(DistributedDataParallel, 'no_sync', counting_no_sync)
    try:
        opt = make_opt(tmp_path, use_bn=False, accumulate_grad_batches=4)
        opt['dist'] = True
        torch.manual_seed(0)
        model = build_model(opt)
        assert isinstance(model.net_d, DistributedDataParallel) and isinstance(model.net_g, DistributedDataParallel)
        before = params(model.net_g)
        model.feed_data(real_batch(8))
        model.optimize_parameters(1)
        assert entered == ['DCGANDiscriminator'] * 3 + ['DCGANGenerator'] * 3
        assert changed(before, model.net_g)
    finally:
        dist.destroy_process_group()


def test_loss_curve_is_skipped_with_a_warning_without_matplotlib(tmp_path, monkeypatch, caplog):
    import builtins
    import logging

    model = build_model(make_opt(tmp_path))
    model.feed_data(real_batch())
    model.optimize_parameters(1)
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith('matplotlib'):
            raise ImportError('No module named matplotlib')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_matplotlib)
    logger = logging.getLogger('gfpgan')
    logger.addHandler(caplog.handler)
    try:
        assert model.save_loss_curve() is None
    finally:
        logger.removeHandler(caplog.handler)
    assert 'No loss curve: matplotlib is not available' in caplog.text
    assert not (tmp_path / 'vis' / 'loss_curve.png').exists()


def test_resume_loads_the_trained_weights_not_param_key_g(tmp_path):
    torch.manual_seed(0)
    model = build_model(make_opt(tmp_path, ema_decay=0.5))
    for it in (1, 2):
        model.feed_data(real_batch())
        model.optimize_parameters(it)
    model.save(0, 2)
    ckpt = str(tmp_path / 'models' / 'net_g_2.pth')
    fresh_opt = make_opt(tmp_path, ema_decay=0.5)
    fresh_opt['path'].update(pretrain_network_g=ckpt, param_key_g='params_ema')  # fine-tune from the EMA weights
    fresh = build_model(fresh_opt)
    assert all(torch.equal(a, b) for a, b in zip(fresh.net_g.parameters(), model.net_g_ema.parameters()))
    fresh_opt['path']['resume_state'] = str(tmp_path / 'states' / '2.state')  # resuming: the raw weights
    resumed = build_model(fresh_opt)
    assert all(torch.equal(a, b) for a, b in zip(resumed.net_g.parameters(), model.net_g.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(resumed.net_g_ema.parameters(), model.net_g_ema.parameters()))


def test_logging_frequency_never_changes_training(tmp_path):
    """The extra post-G-step D evaluation restores RNG and BatchNorm statistics: weights match bit for bit."""
    weights = []
    for print_freq in (1, 1000):
        opt = make_opt(tmp_path, diffaug={'policy': 'color,translation', 'prob': 0.5})
        opt['logger']['print_freq'] = print_freq
        torch.manual_seed(0)
        model = build_model(opt)
        for it in range(1, 4):
            model.feed_data(real_batch(seed=it))
            model.optimize_parameters(it)
        assert ('D(G(z))_post_g' in model.get_current_log()) == (print_freq == 1)
        weights.append([t.clone() for t in list(model.net_g.state_dict().values())
                        + list(model.net_d.state_dict().values())])
    assert all(torch.equal(a, b) for a, b in zip(*weights))
