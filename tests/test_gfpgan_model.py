"""GFPGANModel: one training step with every part on, EMA, frozen parts, fixed upstream bugs, non-finite
guard, checkpoints, validation in train and test modes, best checkpoint, fine-tuning, option files."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from gfpgan.data import build_dataset
from gfpgan.models import build_model
from gfpgan.models.gfpgan_model import NonFiniteLossError, component_crop_sizes
from gfpgan.utils.checkpoint_io import load_checkpoint, save_checkpoint
from gfpgan.utils.options import validate_options, yaml_load

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / 'options' / 'train_gfpgan_tiny.yml'
COMPS = ('left_eye', 'right_eye', 'mouth')


def tiny_options(data_dir: Path, tmp_path: Path, **train_overrides) -> dict:
    """options/train_gfpgan_tiny.yml with absolute data paths and experiment folders under tmp_path."""
    opt = yaml_load(TINY)
    for ds in opt['datasets'].values():
        ds['dataroot_gt'] = str(data_dir / Path(ds['dataroot_gt']).name)
        if ds.get('component_path'):
            ds['component_path'] = str(data_dir / 'ffhq_512' / 'eye_mouth_landmarks.pth')
    opt['network_g']['fix_decoder'] = True
    opt['train'].pop('ema_decay')  # upstream's default decay
    opt['val']['metrics'].pop('fid')  # Inception is slow on CPU; the e2e test checks FID
    opt['train'].update(net_d_reg_every=1, remove_pyramid_loss=3, **train_overrides)
    opt.update(is_train=True, dist=False, rank=0, world_size=1)
    opt['path'].update(
        models=str(tmp_path / 'models'),
        training_states=str(tmp_path / 'states'),
        visualization=str(tmp_path / 'vis'),
    )
    return opt


def make_batch(opt: dict, seeds=(1, 2)) -> dict:
    """Two differently degraded copies of the sample face, with eye/mouth boxes."""
    items = []
    for seed in seeds:
        ds_opt = dict(opt['datasets']['train'], seed=seed)
        items.append(build_dataset(ds_opt)[0])
    return {k: torch.stack([i[k] for i in items]) if torch.is_tensor(items[0][k]) else [i[k] for i in items]
            for k in items[0]}


def val_loader(opt: dict, key: str = 'val_2', batch_size: int = 2) -> DataLoader:
    ds_opt = dict(opt['datasets'][key], phase='val')
    return DataLoader(build_dataset(ds_opt), batch_size=batch_size, shuffle=False)


def snapshot(net) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def changed(before: dict, net, prefix: str = '') -> bool:
    return any(not torch.equal(before[k], v) for k, v in net.state_dict().items() if k.startswith(prefix))


@pytest.fixture(scope='module')
def trained(data_dir, tmp_path_factory):
    """A tiny model after one early and one late step (shared by the tests below: building it is the cost)."""
    tmp_path = tmp_path_factory.mktemp('gfpgan')
    torch.set_num_threads(1)  # module scope: set up before conftest's per-test `_few_threads`
    torch.manual_seed(0)
    opt = tiny_options(data_dir, tmp_path)
    model = build_model(opt)
    batch = make_batch(opt)
    before = {
        'g': snapshot(model.net_g),
        'ema': snapshot(model.net_g_ema),
        'd': snapshot(model.net_d),
        'id': snapshot(model.network_identity),
        **{c: snapshot(model.net_d_comp[c]) for c in COMPS},
    }
    logs = []
    for it in (1, 4):  # pyramid loss on at 1, removed (weight 1e-12) after remove_pyramid_loss=3
        model.feed_data(batch)
        model.optimize_parameters(it)
        logs.append(dict(model.log_dict))
    return {'model': model, 'opt': opt, 'batch': batch, 'before': before, 'logs': logs, 'tmp': tmp_path}


def test_step_logs_upstream_keys_with_finite_values(trained):
    early, late = trained['logs']
    pyramid = [f'l_p_{2 ** i}' for i in range(3, 7)]  # 8 ... 64
    expected = (['l_g_pix', *pyramid, 'l_g_percep', 'l_g_style', 'l_g_gan']
                + [f'l_g_gan_{c}' for c in COMPS]
                + ['l_g_comp_style_loss', 'l_identity', 'l_d', 'real_score', 'fake_score', 'l_d_r1']
                + [f'l_d_{c}' for c in COMPS])
    assert list(early) == expected
    assert list(late) == expected
    for logs in (early, late):
        assert all(math.isfinite(v) for v in logs.values()), logs
    assert all(early[k] > 1e-4 for k in pyramid)
    assert all(0 < late[k] < 1e-9 for k in pyramid)  # removed: weight 1e-12, still in the graph
    assert early['l_g_comp_style_loss'] > 0 and early['l_identity'] > 0 and early['l_d_r1'] > 0


def test_identity_and_r1_terms_are_the_registered_losses(trained):
    """One implementation per idea: the recipe's identity and R1 terms are IdentityLoss and R1Loss."""
    from gfpgan.archs.identity_embedding import gray_resize_for_identity
    from gfpgan.losses.identity_loss import IdentityLoss
    from gfpgan.losses.regularizer_loss import R1Loss

    model, opt = trained['model'], trained['opt']
    assert isinstance(model.cri_identity, IdentityLoss) and model.cri_identity.net is model.network_identity
    r1 = opt['train']['r1_reg_weight']
    assert isinstance(model.cri_r1, R1Loss) and model.cri_r1.loss_weight == r1 / 2 * opt['train']['net_d_reg_every']
    out, gt = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    net = model.network_identity
    with torch.no_grad():  # upstream's formula: L1(arcface(gray(out)), arcface(gray(gt))) * identity_weight
        expected = F.l1_loss(net(gray_resize_for_identity(out)), net(gray_resize_for_identity(gt)))
        assert model.cri_identity(out, gt).item() == pytest.approx(expected.item() * opt['train']['identity_weight'],
                                                                   rel=1e-5)


def test_step_updates_trainable_parts_only(trained):
    model, before = trained['model'], trained['before']
    assert changed(before['g'], model.net_g)
    assert changed(before['d'], model.net_d)
    for comp in COMPS:
        assert changed(before[comp], model.net_d_comp[comp]), comp
    assert not changed(before['id'], model.network_identity)
    assert not changed(before['g'], model.net_g, prefix='stylegan_decoder.')  # fix_decoder
    assert any(k.startswith('stylegan_decoder.') for k in before['g'])
    # the EMA copy moved, but only a (1 - decay) step towards the generator
    assert changed(before['ema'], model.net_g_ema)
    name, ema_param = next((n, p) for n, p in model.net_g_ema.named_parameters() if 'conv_body_first' in n)
    g_param = dict(model.net_g.named_parameters())[name]
    start = before['ema'][name]
    assert not torch.equal(ema_param, g_param)
    moved = (ema_param - start).abs().sum() / (g_param - start).abs().sum()
    assert 0 < moved < 2 * (1 - model.ema_decay)
    assert model.ema_decay == pytest.approx(0.5 ** (32 / 10000))


def test_optimizer_settings_follow_upstream(trained):
    model = trained['model']
    k = model.net_d_reg_every
    ratio = k / (k + 1)
    assert model.optimizer_g.defaults['betas'] == (0.0, 0.99)
    assert model.optimizer_d.defaults['lr'] == pytest.approx(2e-3 * ratio)
    assert model.optimizer_d.defaults['betas'] == pytest.approx((0.0, 0.99 ** ratio))
    for comp in COMPS:
        assert model.optimizer_d_comp[comp].defaults['betas'] == (0.9, 0.99)
    decoder = {id(p) for p in model.net_g.stylegan_decoder.parameters()}
    assert not any(id(p) in decoder for g in model.optimizer_g.param_groups for p in g['params'])


def test_component_crop_sizes_scale_with_float_ratio():
    assert component_crop_sizes(512) == (80, 120)
    assert component_crop_sizes(256) == (40, 60)
    assert component_crop_sizes(64) == (10, 15)  # upstream: int(64 / 512) = 0 -> empty crops
    assert component_crop_sizes(32) == (8, 8)


def test_component_fake_loss_uses_component_criterion(trained, data_dir, tmp_path):
    """With a hinge main loss, the component D loss must still be the vanilla (BCE) one on both terms."""
    opt = tiny_options(data_dir, tmp_path)
    opt['train']['gan_opt'] = {'type': 'GANLoss', 'gan_type': 'hinge', 'loss_weight': 0.1}
    model = build_model(opt)
    model.feed_data(trained['batch'])
    with torch.no_grad():
        model.output, _ = model.net_g(model.lq, return_rgb=False)
    model.get_roi_regions()
    assert model.crops['left_eye'].shape[-2:] == (10, 10) and model.crops['mouth'].shape[-2:] == (15, 15)
    losses = model._discriminator_losses(current_iter=1)
    for comp in COMPS:
        net = model.net_d_comp[comp]
        real, _ = net(model.crops_gt[comp])
        fake, _ = net(model.crops[comp])
        expected = F.softplus(-real).mean() + F.softplus(fake).mean()
        assert losses[f'l_d_{comp}'].item() == pytest.approx(expected.item(), rel=1e-5)


def test_nonfinite_loss_skips_then_stops(data_dir, tmp_path, trained):
    opt = tiny_options(data_dir, tmp_path, max_nonfinite_steps=2)
    del opt['network_identity']  # not needed here; saves time
    model = build_model(opt)
    bad = dict(trained['batch'])
    bad['lq'] = bad['lq'].clone()
    bad['lq'][0, :, 10, 10] = float('nan')
    before_g, before_d = snapshot(model.net_g), snapshot(model.net_d)
    model.feed_data(bad)
    model.optimize_parameters(1)
    assert not changed(before_g, model.net_g) and not changed(before_d, model.net_d)
    assert not changed(before_g, model.net_g_ema)
    model.feed_data(trained['batch'])
    model.optimize_parameters(2)  # a good step resets the count
    assert model.nonfinite_steps == 0
    model.feed_data(bad)
    model.optimize_parameters(3)
    with pytest.raises(NonFiniteLossError, match='2 consecutive iterations with non-finite losses'):
        model.feed_data(bad)
        model.optimize_parameters(4)


def test_save_test_and_validation_train_vs_test_mode(trained):
    model, opt, tmp = trained['model'], trained['opt'], trained['tmp']
    model.save(0, 7)
    models = tmp / 'models'
    assert sorted(p.name for p in models.iterdir()) == sorted(
        ['net_g_7.pth', 'net_d_7.pth'] + [f'net_d_{c}_7.pth' for c in COMPS]
    )
    ckpt = load_checkpoint(models / 'net_g_7.pth')
    assert set(ckpt) == {'params', 'params_ema'}
    for key, net in (('params', model.net_g), ('params_ema', model.net_g_ema)):
        assert all(torch.equal(ckpt[key][k], v) for k, v in net.state_dict().items())
    assert set(load_checkpoint(models / 'net_d_left_eye_7.pth')) == {'params'}

    model.feed_data(trained['batch'])
    model.test()
    first = model.output.clone()
    model.test()
    assert first.shape == (2, 3, 64, 64) and torch.equal(first, model.output)  # fixed noise: repeatable

    opt['val']['metrics']['deg'] = {'type': 'calculate_identity_distance'}  # the model's ArcFace
    loader = val_loader(opt)
    train_mode = model.validation(loader, 7, None, save_img=True)
    assert train_mode['_count'] == 4
    assert 5 < train_mode['psnr'] < 50 and 0 < train_mode['ssim'] < 1 and train_mode['deg'] >= 0
    assert len(list((tmp / 'vis').rglob('*_7.png'))) == 4

    test_opt = copy.deepcopy(opt)
    test_opt['is_train'] = False
    test_opt['val']['metrics'].pop('deg')
    test_opt['path'] = {
        'pretrain_network_g': str(models / 'net_g_7.pth'),
        'param_key_g': 'params_ema',
        'visualization': str(tmp / 'results'),
    }
    test_model = build_model(test_opt)
    test_mode = test_model.validation(loader, 0, None, save_img=True)
    assert test_mode['psnr'] == pytest.approx(train_mode['psnr'], abs=1e-9)
    assert test_mode['ssim'] == pytest.approx(train_mode['ssim'], abs=1e-9)
    assert len(list((tmp / 'results' / 'cropped_faces_val').glob('*.png'))) == 4


def test_keep_best_writes_best_checkpoint_only_on_improvement(trained):
    model, opt, tmp = trained['model'], trained['opt'], trained['tmp']
    best = tmp / 'models' / 'net_g_best.pth'
    best.unlink(missing_ok=True)
    model.best_metric_results = {}
    loader = val_loader(opt, 'val', batch_size=1)
    model.validation(loader, 10, None, save_img=False)  # first: an improvement by definition
    assert best.is_file()
    assert torch.equal(load_checkpoint(best)['params_ema']['conv_body_first.weight'],
                       model.net_g_ema.state_dict()['conv_body_first.weight'])
    best.unlink()
    model.best_metric_results['ffhq_sample_val']['psnr']['val'] = 1e9  # nothing can beat it
    model.validation(loader, 11, None, save_img=False)
    assert not best.exists()


def test_finetune_from_clean_params_ema_is_strict(data_dir, tmp_path):
    from gfpgan.archs import build_network

    opt = tiny_options(data_dir, tmp_path)
    opt['network_g']['fix_decoder'] = False
    torch.manual_seed(123)
    released = build_network(opt['network_g']).state_dict()
    ckpt = tmp_path / 'GFPGANv1.4_tiny.pth'
    save_checkpoint({'params_ema': released}, ckpt)  # release files hold params_ema only
    opt['path'].update(pretrain_network_g=str(ckpt), param_key_g='params_ema', strict_load_g=True)
    model = build_model(opt)
    for net in (model.net_g, model.net_g_ema):
        assert all(torch.equal(released[k], v) for k, v in net.state_dict().items())
    # fresh discriminators: built by the model, not loaded
    assert model.opt['path'].get('pretrain_network_d') is None
    assert all(p.requires_grad for p in model.net_g.parameters())

    broken = dict(released)
    broken.pop(next(iter(broken)))
    save_checkpoint({'params_ema': broken}, ckpt)
    with pytest.raises(RuntimeError, match='missing'):
        build_model(opt)


def test_finetune_option_file_fits_release_checkpoint(compat_dir):
    """options/finetune_gfpgan_v1.4.yml builds exactly the v1.3/v1.4 release layout (strict load works)."""
    from gfpgan.archs import build_network

    opt = yaml_load(REPO / 'options' / 'finetune_gfpgan_v1.4.yml')
    assert opt['path']['param_key_g'] == 'params_ema' and opt['path']['strict_load_g'] is True
    assert not any(opt['path'].get(f'pretrain_network_d{s}') for s in ('', '_left_eye', '_right_eye', '_mouth'))
    manifest = json.loads((compat_dir / 'state_dict_manifests.json').read_text())
    expected = next(v for k, v in manifest.items() if k.startswith('GFPGANv1Clean_512_cm2'))
    with torch.device('meta'):
        net = build_network(opt['network_g'])
    got = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert got == {k: list(v) for k, v in expected.items()}


@pytest.mark.parametrize(
    'name', ['train.yml', 'train_gfpgan_v1.yml', 'train_gfpgan_v1_simple.yml', 'finetune_gfpgan_v1.4.yml',
             'train_gfpgan_tiny.yml', 'test_gfpgan.yml']
)
def test_option_files_validate(name):
    path = REPO / 'options' / name
    opt = yaml_load(path)
    validate_options(opt, str(path), is_train=not name.startswith('test'))
    assert opt['model_type'] == 'GFPGANModel'


@pytest.mark.parametrize('amp', ['bf16', 'fp16'])
def test_amp_and_channels_last_step_is_finite(data_dir, tmp_path, trained, amp):
    opt = tiny_options(data_dir, tmp_path)
    del opt['network_identity']  # not needed here; saves time
    opt.update(amp=amp, channels_last=True)
    model = build_model(opt)
    assert model.scaler_g.is_enabled() == (amp == 'fp16')  # fp16 needs loss scaling, bf16 does not
    before = snapshot(model.net_g)
    model.feed_data(trained['batch'])
    model.optimize_parameters(1)
    assert all(math.isfinite(v) for v in model.log_dict.values())
    if amp == 'bf16':
        assert changed(before, model.net_g)
    else:  # fp16: either a real step, or overflowing gradients made the scaler skip it and back off
        assert changed(before, model.net_g) or model.scaler_g.get_scale() < 2.0**16
    model.test()
    assert model.output.dtype == torch.float32 and torch.isfinite(model.output).all()
