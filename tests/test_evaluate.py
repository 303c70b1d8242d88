"""scripts/evaluate.py (gfpgan-evaluate): pairing, problems on one line each, report files, sharding.

Identity uses a small ResNetArcFace with random weights and LPIPS the random AlexNet trunk of the
compat fixtures (no real weights exist offline); the numbers are compared with direct metric calls.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from launch import REPO, run_script, torchrun

from gfpgan import evaluate as ev
from gfpgan.metrics.lpips_metric import calculate_lpips
from gfpgan.metrics.niqe_metric import calculate_niqe
from gfpgan.metrics.psnr_ssim_metric import calculate_psnr, calculate_ssim

SCRIPT = REPO / 'scripts' / 'evaluate.py'
TINY_ARCFACE = {'type': 'ResNetArcFace', 'block': 'BasicBlock', 'layers': [1, 1, 1, 1], 'use_se': False}


def _faces(data_dir: Path, size: int = 192) -> dict[str, np.ndarray]:
    return {p.stem: cv2.resize(cv2.imread(str(p)), (size, size), interpolation=cv2.INTER_AREA)
            for p in sorted((data_dir / 'cropped_faces').glob('*.png'))}


@pytest.fixture()
def problem_folders(data_dir, tmp_path):
    """Adele restored in gray, Julia's restored file truncated, Paris without a reference, a reference (Zed)
    without a restored image, Justin_big restored at twice its reference's size; Justin is a clean pair."""
    res, ref, lq = tmp_path / 'restored', tmp_path / 'reference', tmp_path / 'input'
    for d in (res, ref, lq):
        d.mkdir()
    for name, img in _faces(data_dir).items():
        cv2.imwrite(str(ref / f'{name}.png'), img)
        cv2.imwrite(str(res / f'{name}.png'), cv2.GaussianBlur(img, (5, 5), 1.2))
        cv2.imwrite(str(lq / f'{name}.jpg'), cv2.resize(cv2.resize(img, (48, 48)), (192, 192)))
    (ref / 'Paris_Hilton_crop.png').rename(ref / 'Zed.png')
    data = (res / 'Julia_Roberts_crop.png').read_bytes()
    (res / 'Julia_Roberts_crop.png').write_bytes(data[: len(data) // 2])
    gray = cv2.cvtColor(cv2.imread(str(res / 'Adele_crop.png')), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(res / 'Adele_crop.png'), gray)
    shutil.copy(ref / 'Justin_Timberlake_crop.png', ref / 'Justin_big.png')
    justin = cv2.imread(str(res / 'Justin_Timberlake_crop.png'))
    cv2.imwrite(str(res / 'Justin_big.png'), cv2.resize(justin, (384, 384), interpolation=cv2.INTER_CUBIC))
    return res, ref, lq


@pytest.fixture(scope='module')
def arcface_weights(tmp_path_factory):
    torch.manual_seed(0)
    from gfpgan.archs import build_network

    path = tmp_path_factory.mktemp('arcface') / 'random_arcface.pth'
    torch.save({'params': build_network(TINY_ARCFACE).state_dict()}, path)
    return path


def _read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline='') as f:
        return {row['name']: row for row in csv.DictReader(f)}


def _lpips_args(compat_dir: Path) -> list[str]:
    return ['--lpips-net', 'alex', '--lpips-backbone', str(compat_dir / 'lpips_backbone_alexnet_random.pth')]


def test_problem_folder_finishes_names_each_problem_and_scores_the_rest(problem_folders, compat_dir, tmp_path,
                                                                         capsys):
    res, ref, _ = problem_folders
    out = tmp_path / 'report'
    status = ev.main(['-i', str(res), '-r', str(ref), '-o', str(out), '--metrics', 'psnr,ssim,lpips,niqe,lmd',
                      '--no-progress', '--grid-size', '64', *_lpips_args(compat_dir)])
    assert status == 1  # something was skipped
    err = capsys.readouterr().err.splitlines()
    expected = {  # each problem on one line that names the file
        'truncated': (str(res / 'Julia_Roberts_crop.png'), 'truncated PNG'),
        'gray': (str(res / 'Adele_crop.png'), 'grayscale'),
        'no reference': (str(res / 'Paris_Hilton_crop.png'), 'no reference named Paris_Hilton_crop'),
        'no restored': (str(ref / 'Zed.png'), 'no restored image'),
        'size': (str(res / 'Justin_big.png'), 'size 384x384 differs from its reference'),
    }
    for what, (path, words) in expected.items():
        hits = [line for line in err if path in line and words in line]
        assert len(hits) == 1, (what, err)

    rows = _read_csv(out / 'metrics.csv')
    assert sorted(rows) == ['Adele_crop', 'Julia_Roberts_crop', 'Justin_Timberlake_crop', 'Justin_big',
                            'Paris_Hilton_crop']
    assert all(rows['Julia_Roberts_crop'][m] == '' for m in ('psnr', 'niqe', 'lpips'))  # unreadable: nothing
    assert rows['Paris_Hilton_crop']['psnr'] == '' and float(rows['Paris_Hilton_crop']['niqe']) > 0  # NIQE alone
    big = rows['Justin_big']  # other size: no pixel comparison, landmarks in the reference's pixels
    assert big['psnr'] == big['lpips'] == '' and float(big['niqe']) > 0
    assert float(big['lmd']) == pytest.approx(float(rows['Justin_Timberlake_crop']['lmd']), abs=1.5)
    for name in ('Justin_Timberlake_crop', 'Adele_crop'):  # scored pairs: the metrics' own numbers
        img, img2 = cv2.imread(str(res / f'{name}.png')), cv2.imread(str(ref / f'{name}.png'))
        row = rows[name]
        assert float(row['psnr']) == pytest.approx(calculate_psnr(img, img2), rel=1e-7)
        assert float(row['ssim']) == pytest.approx(calculate_ssim(img, img2), rel=1e-7)
        assert float(row['niqe']) == pytest.approx(calculate_niqe(img, 0), rel=1e-7)
        lp = calculate_lpips(img, img2, net='alex', backbone_weights=compat_dir / 'lpips_backbone_alexnet_random.pth')
        assert float(row['lpips']) == pytest.approx(lp, rel=1e-5)
        assert 0 <= float(row['lmd']) < 5
    summary = (out / 'summary.md').read_text()
    psnr_mean = np.mean([float(rows[n]['psnr']) for n in ('Adele_crop', 'Justin_Timberlake_crop')])
    assert f'| psnr | {psnr_mean:.8g} | 2 | higher |' in summary
    assert '| niqe |' in summary and '| 4 | lower |' in summary.split('| niqe |')[1].splitlines()[0]
    assert summary.count('\n- ') == len(err)  # the problems (Paris's photo is grayscale too), listed again
    grid = cv2.imread(str(out / 'grid.png'))
    assert grid.shape == (3 * (64 + 22), 2 * 64, 3)  # 3 pairs: restored | reference, and a caption
    assert not list(out.glob('.*.tmp'))  # written atomically: no temporary left over


def test_clean_folder_exit_zero_with_input_column_and_identity(problem_folders, compat_dir, arcface_weights, tmp_path,
                                                               capsys):
    from gfpgan.metrics.identity_metric import calculate_identity_distance

    res, ref, lq = problem_folders
    for name in ('Julia_Roberts_crop', 'Adele_crop', 'Paris_Hilton_crop', 'Justin_big'):
        (res / f'{name}.png').unlink()
        (ref / f'{name}.png').unlink(missing_ok=True)
    (ref / 'Zed.png').unlink()
    shutil.copy(ref / 'Justin_Timberlake_crop.png', ref / 'sub_copy.png')  # second pair, other content
    shutil.copy(res / 'Justin_Timberlake_crop.png', res / 'sub_copy.png')
    out = tmp_path / 'report'
    status = ev.main(['-i', str(res), '-r', str(ref), '--input', str(lq), '-o', str(out), '--metrics',
                      'psnr,identity', '--identity-weights', str(arcface_weights), '--identity-network',
                      json.dumps(TINY_ARCFACE), '--identity-param-key', 'params', '--no-progress',
                      '--grid-size', '32', '--batch-size', '2'])
    assert status == 0, capsys.readouterr().err
    rows = _read_csv(out / 'metrics.csv')
    name = 'Justin_Timberlake_crop'
    img, img2 = cv2.imread(str(res / f'{name}.png')), cv2.imread(str(ref / f'{name}.png'))
    direct = calculate_identity_distance(img, img2, network=TINY_ARCFACE, weights_path=arcface_weights,
                                         param_key='params')
    assert float(rows[name]['identity']) == pytest.approx(direct, abs=1e-3)
    assert cv2.imread(str(out / 'grid.png')).shape == (2 * (32 + 22), 3 * 32, 3)  # input | restored | reference
    assert 'identity' in (out / 'summary.md').read_text()


def test_usage_errors_exit_2(problem_folders, tmp_path, capsys):
    res, ref, _ = problem_folders
    assert ev.main(['-i', str(res), '-r', str(ref), '-o', str(tmp_path / 'o'), '--metrics', 'identity']) == 2
    assert 'identity needs --identity-weights' in capsys.readouterr().err
    assert ev.main(['-i', str(tmp_path / 'nope'), '-o', str(tmp_path / 'o'), '--metrics', 'niqe']) == 2
    assert f'folder not found: {tmp_path / "nope"}' in capsys.readouterr().err
    assert ev.main(['-i', str(res), '-o', str(tmp_path / 'o'), '--metrics', 'fid', '--fid-source', 'pytorch_fid']) == 2
    assert 'fid' in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        ev.main(['-i', str(res), '-o', str(tmp_path / 'o'), '--metrics', 'psnr,sharpness'])
    assert exc.value.code == 2 and 'unknown metric(s) sharpness' in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        ev.main(['-i', str(res), '-o', str(tmp_path / 'o'), '--metrics', 'niqe,psnr'])
    assert exc.value.code == 2 and 'psnr compare with a reference: give -r' in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()


@pytest.mark.slow
def test_two_process_torchrun_equals_one_process(problem_folders, compat_dir, arcface_weights, tmp_path):
    from gfpgan.metrics import fid_metric as fm

    res, ref, _ = problem_folders
    metrics = 'psnr,ssim,lpips,niqe,lmd,identity'
    try:
        fm.build_fid_extractor('fid_helper')
        metrics += ',fid'
    except (RuntimeError, ImportError, FileNotFoundError):
        pass  # FID's network is not installed: the rest still shows the sharding
    args = ['-i', str(res), '-r', str(ref), '--metrics', metrics, '--no-progress', '--batch-size', '1',
            '--identity-weights', str(arcface_weights), '--identity-network', json.dumps(TINY_ARCFACE),
            '--identity-param-key', 'params', '--grid-size', '32', *_lpips_args(compat_dir)]
    one = run_script(SCRIPT, [*args, '-o', str(tmp_path / 'one')], cwd=tmp_path, timeout=400)
    two = run_script(SCRIPT, [*args, '-o', str(tmp_path / 'two')], cwd=tmp_path, launcher=torchrun(2), timeout=400)
    assert one.returncode == 1, one.stderr[-3000:]  # the problems of the folder: something was skipped
    assert 'exitcode  : 1' in two.stderr or two.returncode == 1, two.stderr[-3000:]
    for name in ('metrics.csv', 'summary.md'):
        assert (tmp_path / 'two' / name).read_text() == (tmp_path / 'one' / name).read_text(), name
    rows = _read_csv(tmp_path / 'one' / 'metrics.csv')
    assert rows['Justin_Timberlake_crop']['identity'] != ''


def test_without_reference_scores_niqe_only(problem_folders, tmp_path, capsys):
    res, _, _ = problem_folders
    (res / 'Julia_Roberts_crop.png').unlink()  # the truncated one
    out = tmp_path / 'report'
    assert ev.main(['-i', str(res), '-o', str(out), '--no-progress']) == 0  # default metrics: niqe alone
    rows = _read_csv(out / 'metrics.csv')
    assert list(next(iter(rows.values()))) == ['name', 'restored', 'reference', 'niqe']
    for name, row in rows.items():
        assert float(row['niqe']) == pytest.approx(calculate_niqe(cv2.imread(str(res / f'{name}.png')), 0), rel=1e-7)
    assert not (out / 'grid.png').exists()  # no pairs to show
