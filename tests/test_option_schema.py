"""The option schema: every shipped and upstream-style file validates, every single-key typo is refused
(mutations generated over every key of every file), wrong types are refused, upstream-only keys give a
notice, and the JSON Schema for editors agrees with the validator."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gfpgan.utils.options import OptionError, validate_options, yaml_load

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / 'options').glob('*.yml'))
UPSTREAM = sorted((REPO / 'tests' / 'data' / 'upstream_options').glob('*.yml'))


def _is_train(path: Path) -> bool:
    return not path.name.startswith('test')


def _key_paths(node, prefix=()):
    """Every mapping key at any depth, as a path of keys/list indices."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _key_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _key_paths(value, (*prefix, i))


def _is_label(path: tuple) -> bool:
    """Keys that are names the user chooses, not option keys: metric names and VGG layer names."""
    return (len(path) >= 3 and path[-3:-1] == ('val', 'metrics')) or (len(path) >= 2 and path[-2] == 'layer_weights')


def _mutations(opt: dict):
    """(path, new key, mutated copy) for every key: one letter appended, and one inserted after the first."""
    for path in _key_paths(opt):
        key = path[-1]
        if isinstance(key, int) or _is_label(path):
            continue
        variants = {key[:1] + 'x' + key[1:]}
        if not (len(path) == 2 and path[0] == 'datasets' and '_' in key):  # `val_2x` is just another val set
            variants.add(key + 'x')
        for new in sorted(variants):
            mutated = copy.deepcopy(opt)
            parent = mutated
            for part in path[:-1]:
                parent = parent[part]
            parent[new] = parent.pop(key)
            yield path, new, mutated


@pytest.mark.parametrize('path', SHIPPED + UPSTREAM, ids=lambda p: f'{p.parent.name}/{p.name}')
def test_file_validates(path):
    validate_options(yaml_load(path), str(path), is_train=_is_train(path))


@pytest.mark.parametrize('path', SHIPPED + UPSTREAM, ids=lambda p: f'{p.parent.name}/{p.name}')
def test_every_single_key_typo_is_refused_naming_the_key(path):
    opt = yaml_load(path)
    count = 0
    for key_path, new, mutated in _mutations(opt):
        count += 1
        with pytest.raises(OptionError) as err:
            validate_options(mutated, str(path), is_train=_is_train(path))
        msg = str(err.value)
        where = '.'.join(str(p) for p in (*key_path[:-1], new))
        assert msg.startswith(f'{path}: '), msg
        assert new in msg, f'renaming {".".join(map(str, key_path))} -> {where}: the error does not name it: {msg}'
        assert '\n' not in msg
    assert count > 20  # the generator did walk the file


@pytest.mark.parametrize(
    ('edit', 'where', 'expected'),
    [
        (('train', 'optim_g', 'lrr'), 'train.optim_g.lrr', "Did you mean 'lr'?"),
        (('network_g', 'narow'), 'network_g.narow', "Did you mean 'narrow'?"),
        (('datasets', 'train', 'use_hflp'), 'datasets.train.use_hflp', "Did you mean 'use_hflip'?"),
        (('train', 'comp_style_weigth'), 'train.comp_style_weigth', "Did you mean 'comp_style_weight'?"),
        (('path', 'param_key_gg'), 'path.param_key_gg', "Did you mean 'param_key_g'?"),
        (('val', 'metrics', 'psnr', 'crop_boarder'), 'val.metrics.psnr.crop_boarder', "Did you mean 'crop_border'?"),
        (('logger', 'print_frq'), 'logger.print_frq', "Did you mean 'print_freq'?"),
        (('train', 'perceptual_opt', 'style_weigt'), 'train.perceptual_opt.style_weigt', "'style_weight'"),
        (('datasets', 'train', 'io_backend', 'tipe'), 'datasets.train.io_backend.tipe', "Did you mean 'type'?"),
    ],
)
def test_unknown_key_error_names_file_path_closest_and_valid_keys(edit, where, expected):
    opt = yaml_load(REPO / 'options' / 'train_gfpgan_tiny.yml')
    node = opt
    for part in edit[:-2]:
        node = node[part]
    if edit[-1] == 'tipe':
        node[edit[-2]] = {'tipe': 'disk'}
    else:
        node = node[edit[-2]]
        node[edit[-1]] = 1
    with pytest.raises(OptionError) as err:
        validate_options(opt, 'options/x.yml')
    msg = str(err.value)
    assert msg.startswith(f'options/x.yml: {where}: '), msg
    assert expected in msg, msg
    if 'Did you mean' in expected and edit[-1] != 'tipe':
        assert 'Valid keys: ' in msg, msg


@pytest.mark.parametrize(
    ('edit', 'value', 'where', 'expected'),
    [
        (('datasets', 'train', 'use_hflip'), 'maybe', 'datasets.train.use_hflip', "'maybe'"),
        (('datasets', 'train', 'out_size'), 'big', 'datasets.train.out_size', "'big'"),
        (('network_g', 'out_size'), 'big', 'network_g.out_size', "'big'"),
        (('train', 'optim_g', 'lr'), 'fast', 'train.optim_g.lr', "'fast'"),
        (('train', 'total_iter'), '10k', 'train.total_iter', "'10k'"),
        (('logger', 'print_freq'), 'often', 'logger.print_freq', "'often'"),
        (('val', 'metrics', 'psnr', 'crop_border'), 'edge', 'val.metrics.psnr.crop_border', "'edge'"),
        (('path', 'strict_load_g'), 'perhaps', 'path.strict_load_g', "'perhaps'"),
        (('num_gpu',), 'many', 'num_gpu', "'many'"),
        (('amp',), True, 'amp', 'write bf16 or fp16'),
        (('datasets', 'train', 'kernel_prob'), 0.5, 'datasets.train.kernel_prob', '0.5'),
        (('datasets', 'train', 'kernel_prob'), [0.5, 'a'], 'datasets.train.kernel_prob[1]', "'a'"),
        (('train', 'L1_opt'), 3, 'train.L1_opt', 'valid dictionary, got 3'),
        (('val', 'keep_best'), {'metricx': 'psnr'}, 'val.keep_best.metricx', "Did you mean 'metric'?"),
    ],
)
def test_wrong_type_is_refused_naming_key_and_value(edit, value, where, expected):
    opt = yaml_load(REPO / 'options' / 'train_gfpgan_tiny.yml')
    node = opt
    for part in edit[:-1]:
        node = node[part]
    node[edit[-1]] = value
    with pytest.raises(OptionError) as err:
        validate_options(opt, 'options/x.yml')
    msg = str(err.value)
    assert msg.startswith(f'options/x.yml: {where}: '), msg
    assert expected in msg, msg


def test_required_and_phase_rules():
    opt = yaml_load(REPO / 'options' / 'train_gfpgan_tiny.yml')
    del opt['datasets']['train']['batch_size_per_gpu']
    with pytest.raises(OptionError, match=r'datasets\.train\.batch_size_per_gpu: required for a train dataset'):
        validate_options(opt, 'x.yml')
    opt = yaml_load(REPO / 'options' / 'train_gfpgan_tiny.yml')
    opt['datasets']['val']['degrade_on'] = 'device'
    with pytest.raises(OptionError, match=r'datasets\.val\.degrade_on: device degrades training batches only'):
        validate_options(opt, 'x.yml')
    opt = yaml_load(REPO / 'options' / 'train_gfpgan_tiny.yml')
    opt['datasets']['train']['crop_components'] = True
    del opt['datasets']['train']['component_path']
    with pytest.raises(OptionError, match=r'datasets\.train\.component_path: crop_components needs'):
        validate_options(opt, 'x.yml')
    opt = yaml_load(REPO / 'options' / 'train_gfpgan_tiny.yml')
    opt['datasets']['val']['use_shuffle'] = True  # upstream carries it in train sets only
    with pytest.raises(OptionError, match=r'datasets\.val\.use_shuffle: unknown key for a val dataset'):
        validate_options(opt, 'x.yml')
    opt = yaml_load(REPO / 'options' / 'train_gfpgan_tiny.yml')
    opt['datasets']['val_2']['dataset_enlarge_ratio'] = 2  # only the train loader enlarges
    with pytest.raises(OptionError, match=r'datasets\.val_2\.dataset_enlarge_ratio: unknown key for a val dataset'):
        validate_options(opt, 'x.yml')


def test_upstream_keys_without_effect_are_accepted_with_one_notice_each():
    path = REPO / 'tests' / 'data' / 'upstream_options' / 'train_gfpgan_v1.yml'
    notices = validate_options(yaml_load(path), str(path))
    assert sorted(n.split(': ')[1] for n in notices) == ['datasets.train.use_shuffle', 'dist_params.port']
    assert all(n.startswith(f'{path}: ') and 'has no effect here' in n and '\n' not in n for n in notices)
    assert validate_options(yaml_load(REPO / 'options' / 'train_gfpgan_tiny.yml'), 'x.yml') == []


def test_datasets_read_the_values_they_declare(tmp_path):
    """A dataset's options model is what it reads: defaults and given values arrive as attributes."""
    from gfpgan.data.synthetic_shapes_dataset import SyntheticShapesDataset

    ds = SyntheticShapesDataset({'type': 'SyntheticShapesDataset', 'image_size': 16, 'num_samples': 3})
    assert (ds.image_size, ds.num_samples, ds.seed, ds.radius_range) == (16, 3, 0, (0.15, 0.3))
    assert ds[0]['gt'].shape == (3, 16, 16)
    with pytest.raises(OptionError, match=r'SyntheticShapesDataset: datasets\.train\.imagesize: unknown key'):
        SyntheticShapesDataset({'type': 'SyntheticShapesDataset', 'imagesize': 16})


def test_print_schema_writes_a_json_schema_that_agrees_with_the_validator(tmp_path):
    jsonschema = pytest.importorskip('jsonschema')
    out = tmp_path / 'schema.json'
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / 'gfpgan' / 'train.py'), '--print-schema', str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(out.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in SHIPPED + UPSTREAM:
        errors = [f'{list(e.absolute_path)}: {e.message[-200:]}' for e in validator.iter_errors(yaml_load(path))]
        assert not errors, f'{path.name}: {errors}'
    opt = yaml_load(REPO / 'options' / 'train_gfpgan_tiny.yml')
    opt['network_g']['narow'] = 1
    opt['datasets']['train']['use_hflp'] = True
    flagged = {tuple(e.absolute_path) for e in validator.iter_errors(opt)}
    assert flagged == {('network_g',), ('datasets', 'train')}
    assert {'GFPGANModel', 'GANModel', 'RestorationModel'} <= set(schema['properties']['model_type']['enum'])


def test_cli_prints_schema_to_stdout_and_notices_to_stderr(tmp_path):
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / 'gfpgan' / 'train.py'), '--print-schema'],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and json.loads(proc.stdout)['title'] == 'gfpgan option file'
    upstream = REPO / 'tests' / 'data' / 'upstream_options' / 'train_gfpgan_v1_simple.yml'
    proc = subprocess.run([sys.executable, str(REPO / 'gfpgan' / 'train.py'), '-opt', str(upstream)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    notices = [line for line in proc.stderr.splitlines() if line.startswith('gfpgan: notice: ')]
    assert len(notices) == 2 and any('datasets.train.use_shuffle' in n for n in notices), proc.stderr
    assert proc.returncode == 2 and 'dataroot_gt' in proc.stderr  # the data is absent here: a clean error


def test_readme_option_reference_is_generated_from_the_schema():
    """The README's tables are the schema's: a key added, removed or redescribed without regenerating fails here."""
    from gfpgan.utils.option_reference import BEGIN, END, option_reference, render_readme

    text = (REPO / 'README.md').read_text(encoding='utf-8')
    assert render_readme(text) == text, 'run: python -m gfpgan.utils.option_reference --write README.md'
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert block.strip() == option_reference().strip()
    for key in ('`use_shuffle`', '`pretrain_network_<x>`', '`total_iter`', '`dataroot_gt`', '`print_freq`'):
        assert key in block
