"""Option files: YAML floats, overrides, validation errors that name file + key, CLI behaviour."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gfpgan.utils.options import OptionError, apply_force_yml, parse_options, validate_options, yaml_load

REPO = Path(__file__).resolve().parents[1]

BASE = {
    'name': 'x',
    'model_type': 'RestorationModel',
    'num_gpu': 0,
    'datasets': {'train': {'type': 'SamplePhotosDataset', 'batch_size_per_gpu': 2}},
    'network_g': {'type': 'ResidualCNN'},
    'train': {'total_iter': 10, 'optim_g': {'type': 'Adam', 'lr': 1e-3}},
}


def _copy(**changes):
    import copy

    opt = copy.deepcopy(BASE)
    opt.update(changes)
    return opt


def test_yaml_reads_exponent_floats_and_explicit_float_tag():
    opt = yaml_load('lr: 2e-3\nlr2: !!float 2e-3\nwd: 1E+4\niters: 800000\nname: 1e-3x\nmilestones: [1e3, 2]')
    assert opt == {
        'lr': 0.002,
        'lr2': 0.002,
        'wd': 10000.0,
        'iters': 800000,
        'name': '1e-3x',
        'milestones': [1000.0, 2],
    }
    assert isinstance(opt['iters'], int)


def test_force_yml_overrides_existing_nested_keys_only():
    opt = _copy()
    apply_force_yml(opt, ['train:optim_g:lr=5e-4', 'name=y', 'network_g:type=Other'], 'f.yml')
    assert opt['train']['optim_g']['lr'] == 5e-4 and opt['name'] == 'y' and opt['network_g']['type'] == 'Other'
    with pytest.raises(OptionError, match="f.yml has no key 'train:optim_g:betas'"):
        apply_force_yml(opt, ['train:optim_g:betas=[0, 0.99]'], 'f.yml')
    with pytest.raises(OptionError, match='key:subkey=value'):
        apply_force_yml(opt, ['train:total_iter'], 'f.yml')


@pytest.mark.parametrize(
    ('changes', 'key', 'hint'),
    [
        ({'network_g': {'type': 'ResidualCNNN'}}, 'network_g.type', 'Did you mean ResidualCNN'),
        ({'network_g': {'num_feat': 3}}, 'network_g', "needs 'type'"),
        ({'model_type': 'RestorationModle'}, 'model_type', 'Did you mean RestorationModel'),
        ({'num_gpu': 'many'}, 'num_gpu', "expected 'auto' or a valid integer"),
        ({'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3}}}, 'train.total_iter', 'required'),
        ({'train': {'total_iter': '10k'}}, 'train.total_iter', "valid integer, unable to parse string as an integer"),
        ({'datasets': {'train': {'type': 'SamplePhotosDataset'}}}, 'datasets.train.batch_size_per_gpu', 'required'),
        ({'datasets': {'train': {'type': 'Nope', 'batch_size_per_gpu': 1}}}, 'datasets.train.type', 'not a registered'),
        ({'netwrok_g': {'type': 'ResidualCNN'}}, 'netwrok_g', "unknown key. Did you mean 'network_g'?"),
        ({'logger': {'print_frequency': 10}}, 'logger.print_frequency', "Did you mean 'print_freq'? Valid keys: keep_"),
        ({'path': {'pretrain_netwrk_g': 'a.pth'}}, 'path.pretrain_netwrk_g', 'unknown key'),
        ({'val': {'val_freq': 'often'}}, 'val.val_freq', "a valid integer, unable to parse string as an integer"),
    ],
)
def test_validation_names_file_key_and_fix(changes, key, hint):
    with pytest.raises(OptionError) as err:
        validate_options(_copy(**changes), 'options/x.yml')
    msg = str(err.value)
    assert msg.startswith(f'options/x.yml: {key}: '), msg
    assert hint in msg


def test_parse_options_derives_absolute_paths_and_accepts_local_rank(tmp_path, monkeypatch):
    opt_file = tmp_path / 'o.yml'
    opt_file.write_text(
        'name: exp\nmodel_type: RestorationModel\nnum_gpu: auto\nmanual_seed: 3\n'
        'datasets:\n  train: {type: SamplePhotosDataset, batch_size_per_gpu: 2}\n'
        'network_g: {type: ResidualCNN}\ntrain: {total_iter: 4}\n'
        'path: {pretrain_network_g: weights/g.pth}\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('WORLD_SIZE', raising=False)
    opt, args = parse_options(tmp_path, True, ['-opt', str(opt_file), '--local-rank=0', '--debug'])
    assert opt['name'] == 'debug_exp' and opt['num_gpu'] == 0 and opt['dist'] is False
    assert opt['path']['experiments_root'] == str(tmp_path / 'experiments' / 'debug_exp')
    assert opt['path']['pretrain_network_g'] == str(tmp_path / 'weights' / 'g.pth')
    assert opt['logger']['print_freq'] == 1 and opt['logger']['save_checkpoint_freq'] == 8
    _, args = parse_options(tmp_path, True, ['-opt', str(opt_file), '--local_rank', '0'])
    assert args.local_rank == 0


def test_cli_prints_one_paragraph_error_and_exits_2(tmp_path):
    bad = tmp_path / 'bad.yml'
    bad.write_text(
        'name: bad\nmodel_type: RestorationModel\nnum_gpu: 0\n'
        'datasets:\n  train: {type: SamplePhotosDataset, batch_size_per_gpu: 2}\n'
        'network_g: {type: GFPGANv1Clen}\ntrain: {total_iter: 4}\n'
    )
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(REPO / 'gfpgan' / 'train.py'), '-opt', str(bad)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    err = proc.stderr.strip()
    assert err.count('\n') == 0, err
    assert err.startswith(f'gfpgan-train: error: {bad}: network_g.type: ') and 'GFPGANv1Clen' in err
    assert not (tmp_path / 'experiments').exists()
    proc = subprocess.run(
        [sys.executable, str(REPO / 'gfpgan' / 'train.py'), '-opt', str(tmp_path / 'missing.yml')],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and 'missing.yml: option file not found' in proc.stderr
