"""The GAN toolkit through GANModel: class-conditional training, heads' losses, BEGAN's k, Inception Score in
validation, RGBA grids, `epochs:`, the new option files, and the one-command `gfpgan-gan`."""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from test_conditional_gan import _two_class_batch
from test_gan_model import make_opt

from gfpgan.models import build_model
from gfpgan.models.gan_sampling import make_grid, to_rgb
from gfpgan.utils.image_io import imread

REPO = Path(__file__).resolve().parents[1]


def conditional_opt(tmp_path, kind: str, **train) -> dict:
    opt = make_opt(tmp_path, 'hinge', size=16, **train)
    acgan = kind == 'acgan'
    opt['network_g'] = {'type': 'ConditionalDCGANGenerator', 'num_classes': 2, 'latent_dim': 8, 'image_size': 16,
                        'base_channels': 8}
    opt['network_d'] = {'type': 'ConditionalDCGANDiscriminator', 'num_classes': 2, 'image_size': 16,
                        'base_channels': 8, 'projection': not acgan, 'class_head': acgan}
    if acgan:
        opt['train']['gan_opt'] = {'type': 'ACGANLoss', 'gan_type': 'hinge', 'class_weight': 1.0}
    for key in ('optim_g', 'optim_d'):
        opt['train'][key]['lr'] = 2e-3
    opt['logger']['print_freq'] = 1000
    return opt


@pytest.mark.parametrize('kind', ['projection', 'acgan'])
def test_conditional_gan_model_samples_follow_their_labels(tmp_path, kind):
    """GANModel on two visibly different classes (dark / bright images with their labels): a fixed classifier
    (mean brightness) tells the EMA-free generator's class-0 and class-1 samples apart far above chance."""
    torch.manual_seed(0)
    model = build_model(conditional_opt(tmp_path, kind))
    gen = torch.Generator().manual_seed(1)
    start = time.time()
    for it in range(1, 151):
        x, y = _two_class_batch(16, gen)
        model.feed_data({'gt': (x + 1) / 2, 'label': y})
        model.optimize_parameters(it)
    elapsed = time.time() - start
    if kind == 'acgan':
        assert 'l_d_cls' in model.log_dict and 'l_g_cls' in model.log_dict
        assert model.log_dict['l_d_cls'] < 2 * np.log(2)  # D's class head learnt something (chance: ln 2 each)
    labels = torch.arange(64) % 2
    brightness = model.generate(torch.randn(64, 8, generator=gen), labels=labels).mean((1, 2, 3))
    accuracy = ((brightness > 0).long() == labels).float().mean().item()
    assert accuracy >= 0.9, f'{kind}: classifier accuracy on samples {accuracy:.2f} ({elapsed:.1f}s)'


def test_labels_and_heads_are_checked_at_build_and_feed(tmp_path):
    model = build_model(conditional_opt(tmp_path, 'projection'))
    with pytest.raises(KeyError, match="gives no 'label'"):
        model.feed_data({'gt': torch.rand(2, 3, 16, 16)})
    opt = conditional_opt(tmp_path, 'acgan')
    opt['train']['gan_opt'] = {'type': 'GANLoss', 'gan_type': 'hinge'}
    with pytest.raises(KeyError, match="'class_logits' head that nothing trains"):
        build_model(opt)
    opt = conditional_opt(tmp_path, 'projection')
    opt['network_d']['num_classes'] = 3
    with pytest.raises(ValueError, match=r'network_g.num_classes \(2\) differs'):
        build_model(opt)
    opt = conditional_opt(tmp_path, 'projection', gp_weight=10.0)
    with pytest.raises(KeyError, match='projection discriminator cannot'):
        build_model(opt)


def test_grids_show_one_class_per_column(tmp_path):
    opt = conditional_opt(tmp_path, 'projection')
    opt['val']['grids'] = {'num': 12, 'nrow': 0}
    model = build_model(opt)
    assert model.fixed_labels.tolist() == [0, 1] * 6
    path = model.save_sample_grids(1)[0]
    assert imread(path).shape[1] == 4 * 18 + 2  # sqrt(12) -> 3, rounded to a multiple of 2 classes: 4


def test_infogan_codes_flow_into_g_and_both_losses(tmp_path):
    opt = make_opt(tmp_path, 'vanilla', size=16, info_opt={'type': 'MutualInformationLoss', 'cat_dims': [3],
                                                           'cont_dim': 1})
    opt['network_g'] = {'type': 'DCGANGenerator', 'latent_dim': 6 + 4, 'image_size': 16, 'base_channels': 4}
    opt['network_d'] = {'type': 'ConditionalDCGANDiscriminator', 'image_size': 16, 'base_channels': 4,
                        'projection': False, 'info_cat_dims': [3], 'info_cont_dim': 1}
    model = build_model(opt)
    z, y, (cat, cont) = model.sample_fakes(5)
    assert y is None and z.shape == (5, 10) and torch.equal(z[:, 6:9].argmax(1), cat[:, 0])
    assert torch.equal(z[:, 9:], cont)
    model.feed_data({'gt': torch.rand(4, 3, 16, 16)})
    model.optimize_parameters(1)
    assert model.log_dict['l_d_info'] > 0 and model.log_dict['l_g_info'] > 0


def test_began_keeps_k_in_the_training_state(tmp_path):
    opt = make_opt(tmp_path, size=16, began_opt={'type': 'BEGANLoss', 'gamma': 0.5, 'lambda_k': 0.1})
    del opt['train']['gan_opt']
    opt['network_g'] = {'type': 'BEGANGenerator', 'latent_dim': 8, 'image_size': 16, 'base_channels': 4}
    opt['network_d'] = {'type': 'BEGANDiscriminator', 'image_size': 16, 'hidden_dim': 8, 'base_channels': 4}
    torch.manual_seed(0)
    model = build_model(opt)
    model.feed_data({'gt': torch.rand(4, 3, 16, 16)})
    model.optimize_parameters(1)
    logs = model.log_dict
    balance = 0.5 * logs['l_d_real'] - logs['l_d_fake']  # k_1 = clip(0 + lambda_k * balance, 0, 1)
    assert logs['k'] == pytest.approx(min(max(0.1 * balance, 0.0), 1.0), abs=1e-6)
    assert logs['M'] == pytest.approx(logs['l_d_real'] + abs(balance), rel=1e-5)
    model.cri_began.k.fill_(0.25)
    state = torch.load(model.save_training_state(0, 1), weights_only=False)
    again = build_model(opt)
    again.resume_training(state)
    assert again.cri_began.k.item() == 0.25
    bad = make_opt(tmp_path, size=16, began_opt={'type': 'BEGANLoss'})
    bad['network_g'], bad['network_d'] = opt['network_g'], opt['network_d']
    with pytest.raises(KeyError, match='train.gan_opt: not used with train.began_opt'):
        build_model(bad)


def test_inception_score_is_reported_next_to_fid(tmp_path, monkeypatch):
    """val.inception_score: is / is_ema from the FID samples; a stub classifier stands in for Inception."""
    from gfpgan.metrics import inception_score_metric

    class Brightness(torch.nn.Module):  # 2 classes by mean brightness
        def __init__(self):
            super().__init__()
            self.register_buffer('weight', torch.zeros(2, 1))

        def forward(self, img):
            m = img.mean((1, 2, 3))[:, None] * 20 - 10
            return torch.cat([m, -m], 1)

    monkeypatch.setattr(inception_score_metric, 'build_inception_classifier', lambda *a, **k: Brightness())
    opt = yaml.safe_load((REPO / 'options' / 'train_dcgan_tiny.yml').read_text())
    opt.update(is_train=True, dist=False, rank=0, world_size=1)
    opt['path'] = make_opt(tmp_path)['path']
    opt['datasets']['val']['num_samples'] = opt['val']['fid']['num_samples'] = 40
    opt['val']['inception_score'] = {'weights_path': 'unused.pth', 'splits': 4}
    model = build_model(opt)
    from gfpgan.data import build_dataloader, build_dataset
    val = dict(opt['datasets']['val'], phase='val')
    result = model.validation(build_dataloader(build_dataset(val), val), 1, None)
    assert {'fid', 'fid_ema', 'is', 'is_ema'} <= set(result)
    assert 1.0 <= result['is'] <= 2.0 and result['is'] == pytest.approx(result['is_ema'])  # EMA == G at start
    assert model.metric_better('is') == 'higher'


def test_rgba_and_grey_images_become_rgb():
    rgba = torch.tensor([1.0, 0.0, 0.0, 0.5]).view(1, 4, 1, 1).expand(1, 4, 2, 2) * 2 - 1
    grid = make_grid(rgba, padding=0)
    assert grid.shape == (2, 2, 3) and grid[0, 0].tolist() == [128, 128, 255]  # BGR of red over white at 50 %
    grey = to_rgb(torch.full((1, 1, 2, 2), 0.3))
    assert grey.shape == (1, 3, 2, 2) and torch.allclose(grey, torch.full_like(grey, 0.3))


def test_epochs_become_total_iter_and_exactly_one_is_given():
    from gfpgan.train import iters_for_epochs
    from gfpgan.utils.options import OptionError, validate_options

    train = {'epochs': 3}
    assert iters_for_epochs(train, 7) == 21 and train == {'total_iter': 21}
    with pytest.raises(OptionError, match='exactly one of total_iter'):
        iters_for_epochs({'epochs': 2, 'total_iter': 5}, 7)
    with pytest.raises(OptionError, match='exactly one of total_iter'):
        iters_for_epochs({}, 7)
    opt = yaml.safe_load((REPO / 'options' / 'train_cdcgan_tiny.yml').read_text())
    opt['train']['total_iter'] = 10
    with pytest.raises(OptionError, match='not both'):
        validate_options(opt, 'x.yml', is_train=True)


NEW_TINY = {'train_cdcgan_tiny.yml': 'D(G(z))_pre_g', 'train_acgan_tiny.yml': 'l_g_cls',
            'train_began_tiny.yml': 'M', 'train_lightweight_gan_aux_tiny.yml': 'l_g_32'}


@pytest.mark.parametrize('name', sorted(NEW_TINY))
def test_new_tiny_option_files_train_on_cpu(tmp_path, name):
    from gfpgan.train import train_pipeline

    opt = yaml.safe_load((REPO / 'options' / name).read_text())
    del opt['datasets']['val'], opt['val']['val_freq']  # FID has its own tests; here: training, logs, outputs
    if 'epochs' in opt['train']:
        opt['train']['epochs'] = 1  # 96 images / 16 = 6 iterations
    else:
        opt['train']['total_iter'] = 4
    opt['logger'].update(print_freq=2, save_checkpoint_freq=4)
    opt['val']['grids'] = {'freq': 4, 'num': 6}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(opt))
    folder = Path(train_pipeline(str(tmp_path), ['-opt', str(path)]))
    log = next(folder.glob('train_*.log')).read_text()
    assert f'{NEW_TINY[name]}: ' in log and 'iter:       4' in log
    assert (folder / 'models' / 'net_g_latest.pth').is_file() and (folder / 'training_states' / '4.state').is_file()
    assert list((folder / 'visualization').glob('samples_00000004.png'))


def _image_folder(root: Path, classes: dict[str, int], n: int = 12, size: int = 16) -> Path:
    rng = np.random.default_rng(0)
    for name, level in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(root / name / f'{i}.png'),
                        np.clip(level + rng.normal(0, 12, (size + 4, size, 3)), 0, 255).astype(np.uint8))
    return root


def test_cli_trains_resumes_and_generates_on_a_folder(tmp_path, capsys):
    from gfpgan.gan.cli import main

    data = _image_folder(tmp_path / 'data', {'dark': 40, 'bright': 215})
    common = ['--data_path', str(data), '--image_size', '16', '--conditional', '--batch_size', '4',
              '--accumulation_steps', '2', '--base_channels', '4', '--latent_dim', '8', '--save_every', '3',
              '--print_every', '3', '--name', 'run', '--root', str(tmp_path), '--lr_g', '0.0002', '--lr_d', '0.0001']
    assert main(['train', *common, '--epochs', '2']) == 0  # 24 images / (4 x 2) = 3 iterations per epoch
    exp = tmp_path / 'experiments' / 'run'
    written = yaml.safe_load((exp / 'run.yml').read_text())
    assert written['train']['epochs'] == 2 and written['train']['accumulate_grad_batches'] == 2
    assert written['network_g']['num_classes'] == 2 and written['datasets']['train']['class_labels'] is True
    assert written['train']['optim_d']['lr'] == 1e-4 and written['datasets']['train']['batch_size_per_gpu'] == 8
    assert sorted(p.name for p in (exp / 'training_states').iterdir()) == ['3.state', '6.state']
    # resumed: three more epochs from the state at iteration 6
    assert main(['train', *common, '--epochs', '3', '--auto_resume']) == 0
    assert (exp / 'training_states' / '9.state').is_file()
    assert any('Resuming training from epoch: 1, iter: 6' in p.read_text() for p in exp.glob('train_*.log'))
    for command in ('generate', 'interpolate', 'progress'):
        assert main([command, '--name', 'run', '--root', str(tmp_path), '--num', '4']) == 0
    out = tmp_path / 'results' / 'run'
    assert imread(out / 'samples.png').shape == (2 * 18 + 2, 2 * 18 + 2, 3)
    from PIL import Image
    with Image.open(out / 'progress.gif') as gif:
        assert gif.n_frames == 3  # net_g_3, _6, _9
    capsys.readouterr()
    assert main(['generate', '--name', 'nope', '--root', str(tmp_path)]) == 2
    assert 'nope.yml: no such option file' in capsys.readouterr().err


def test_cli_reports_each_bad_data_folder_in_one_line(tmp_path, capsys):
    from gfpgan.gan.cli import main

    (tmp_path / 'empty').mkdir()
    (tmp_path / 'text').mkdir()
    (tmp_path / 'text' / 'a.txt').write_text('x')
    bad = _image_folder(tmp_path / 'bad', {'c': 100}, n=1)
    (bad / 'c' / 'broken.png').write_bytes(b'not a png')
    loose = _image_folder(tmp_path / 'loose', {'c': 100}, n=1)
    cv2.imwrite(str(loose / 'x.png'), np.zeros((8, 8, 3), np.uint8))
    expected = {'empty': 'the folder is empty', 'text': 'no image files', 'bad': 'broken.png: not a readable image',
                'loose': 'directly in the folder'}
    for folder, message in expected.items():
        args = ['train', '--data', str(tmp_path / folder), '--image-size', '16', '--root', str(tmp_path)]
        assert main(args + (['--conditional'] if folder == 'loose' else [])) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (folder, err)


@pytest.mark.parametrize('kind', ['projection', 'acgan'])
def test_conditional_model_trains_under_ddp_with_every_head_used(tmp_path, kind):
    """A 1-process gloo group: DDP fails on the second step if a head's parameters got no gradient in the first
    (find_unused_parameters stays off), and labels reach a projection D through the DDP wrapper."""
    import socket

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1)
    try:
        opt = conditional_opt(tmp_path, kind, accumulate_grad_batches=2, r1_reg_weight=1.0)
        opt['dist'] = True
        torch.manual_seed(0)
        model = build_model(opt)
        assert isinstance(model.net_d, DistributedDataParallel)
        gen = torch.Generator().manual_seed(0)
        for it in (1, 2, 3):
            x, y = _two_class_batch(8, gen)
            model.feed_data({'gt': (x + 1) / 2, 'label': y})
            model.optimize_parameters(it)
        assert all(p.grad is not None for p in model.get_bare_model(model.net_d).parameters())
        assert 'l_d_r1' in model.log_dict
    finally:
        dist.destroy_process_group()
