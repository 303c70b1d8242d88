"""inference_gfpgan.py end to end (in-process `main(argv)`) with a random-weight tiny generator."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from test_restorer import save_tiny_generator  # noqa: E402

import inference_gfpgan  # noqa: E402


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('weights') / 'tiny_gfpgan.pth'
    save_tiny_generator(path)
    return path


def run(argv: list[str], capsys, main=None) -> tuple[int, str, str]:
    code = (main or inference_gfpgan.main)(argv)
    out, err = capsys.readouterr()
    return code, out, err


def images(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(folder.iterdir())}


def test_whole_images_every_face_restored(tiny_ckpt, data_dir, tmp_path, capsys):
    out = tmp_path / 'results'
    code, stdout, _ = run(['-i', str(data_dir / 'whole_imgs'), '-o', str(out), '--model_path', str(tiny_ckpt),
                           '--device', 'cpu', '--suffix', 'v2', '-s', '2'], capsys)
    assert code == 0
    assert 'Done: 3 images, 7 faces restored, 0 without a face, 0 failed' in stdout
    restored = images(out / 'restored_imgs')
    assert sorted(restored) == ['00_v2.jpg', '10045_v2.png', 'Blake_Lively_v2.jpg']
    for name, img in restored.items():
        src = cv2.imread(str(data_dir / 'whole_imgs' / name.replace('_v2', '')))
        assert img.shape == (src.shape[0] * 2, src.shape[1] * 2, 3)
    crops = images(out / 'cropped_faces')
    faces_per_image = {stem: sum(n.startswith(stem + '_') and n[len(stem) + 1:-4].isdigit() for n in crops)
                       for stem in ('00', '10045', 'Blake_Lively')}
    assert faces_per_image == {'00': 2, '10045': 3, 'Blake_Lively': 2}  # every visible face
    assert sorted(images(out / 'restored_faces')) == sorted(n.replace('.png', '_v2.png') for n in crops)
    cmp = images(out / 'cmp')
    assert all(img.shape == (512, 1024, 3) for img in cmp.values()) and len(cmp) == 7
    # cmp = input crop | restored face
    np.testing.assert_array_equal(cmp['Blake_Lively_00.png'][:, :512], crops['Blake_Lively_00.png'])
    np.testing.assert_array_equal(cmp['Blake_Lively_00.png'][:, 512:],
                                  images(out / 'restored_faces')['Blake_Lively_00_v2.png'])


def test_aligned_faces_one_512_face_each(tiny_ckpt, data_dir, tmp_path, capsys):
    out = tmp_path / 'aligned'
    code, stdout, _ = run(['-i', str(data_dir / 'cropped_faces'), '-o', str(out), '--model_path', str(tiny_ckpt),
                           '--aligned', '--device', 'cpu', '--ext', 'jpg'], capsys)
    assert code == 0 and '4 faces restored' in stdout
    restored = images(out / 'restored_faces')
    assert sorted(restored) == sorted(f'{p.stem}_00.png' for p in (data_dir / 'cropped_faces').iterdir())
    assert all(img.shape == (512, 512, 3) for img in restored.values())
    assert not (out / 'restored_imgs').exists()


@pytest.fixture(scope='module')
def bad_inputs(tmp_path_factory, data_dir) -> Path:
    folder = tmp_path_factory.mktemp('bad_inputs')
    face = cv2.imread(str(data_dir / 'whole_imgs' / 'Blake_Lively.jpg'))[:, 380:]  # one face: faster
    (folder / 'empty.png').write_bytes(b'')
    (folder / 'text.png').write_text('not an image')
    (folder / 'notes.txt').write_text('a note')
    data = (data_dir / 'whole_imgs' / 'Blake_Lively.jpg').read_bytes()
    (folder / 'truncated.jpg').write_bytes(data[:200])
    cv2.imwrite(str(folder / 'deep16.png'), face.astype(np.uint16) * 257)
    cv2.imwrite(str(folder / 'gray.png'), cv2.cvtColor(face, cv2.COLOR_BGR2GRAY))
    rgba = np.concatenate([face, np.full(face.shape[:2] + (1,), 255, np.uint8)], axis=2)
    cv2.imwrite(str(folder / 'rgba.png'), rgba)
    cv2.imwrite(str(folder / 'noface.png'), np.full((120, 160, 3), 77, np.uint8))
    cv2.imwrite(str(folder / 'one_pixel.png'), np.full((1, 1, 3), 200, np.uint8))
    cv2.imwrite(str(folder / 'huge.png'), np.zeros((10000, 10000, 3), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    cv2.imwrite(str(folder / 'twin.jpg'), face)
    cv2.imwrite(str(folder / 'twin.png'), face)
    return folder


def test_bad_inputs_never_abort_the_run(tiny_ckpt, bad_inputs, tmp_path, capsys):
    out = tmp_path / 'out'
    code, stdout, stderr = run(['-i', str(bad_inputs), '-o', str(out), '--model_path', str(tiny_ckpt),
                                '--device', 'cpu'], capsys)
    assert code == 1  # some files failed
    failed = {'empty.png', 'text.png', 'notes.txt', 'truncated.jpg', 'huge.png'}
    error_lines = [line for line in stderr.splitlines() if line.startswith('error: ')]
    assert len(error_lines) == len(failed)
    for name in failed:  # one line each, naming the file
        assert sum(name in line for line in error_lines) == 1, (name, error_lines)
    assert any('huge.png' in line and '20000x20000' in line for line in error_lines)
    assert f'{len(failed)} failed' in stdout and 'Done: 12 images' in stdout

    restored = images(out / 'restored_imgs')
    face = cv2.imread(str(bad_inputs / 'twin.png'))
    expected = {'deep16.png', 'gray.png', 'rgba.png', 'noface.png', 'one_pixel.png', 'twin_jpg.jpg', 'twin_png.png'}
    assert set(restored) == expected  # same stem twice: both kept, told apart by extension
    for name in ('deep16.png', 'gray.png', 'rgba.png', 'twin_png.png', 'twin_jpg.jpg'):
        assert restored[name].shape == (face.shape[0] * 2, face.shape[1] * 2, 3), name
        assert restored[name].dtype == np.uint8
    assert restored['one_pixel.png'].shape == (2, 2, 3) and (restored['one_pixel.png'] == 200).all()
    np.testing.assert_array_equal(restored['noface.png'], np.full((240, 320, 3), 77, np.uint8))
    assert 'no face found in' in stderr and 'noface.png' in stderr
    crops = sorted(p.name for p in (out / 'cropped_faces').iterdir())
    for stem in ('deep16', 'gray', 'rgba', 'twin_jpg', 'twin_png'):  # the face was found in each
        assert f'{stem}_00.png' in crops and f'{stem}_01.png' not in crops
    for written in out.rglob('*'):
        assert written.resolve().is_relative_to(out.resolve())


def test_names_cannot_escape_the_output_folder(tiny_ckpt, data_dir, tmp_path, capsys):
    for suffix in ('../../evil', 'a/b', '..'):
        with pytest.raises(SystemExit) as err:
            inference_gfpgan.main(['-i', str(data_dir / 'cropped_faces'), '-o', str(tmp_path / 'o'),
                                   '--model_path', str(tiny_ckpt), '--suffix', suffix])
        assert err.value.code == 2
        assert '--suffix' in capsys.readouterr().err
    with pytest.raises(ValueError, match='escape'):
        inference_gfpgan.inside(tmp_path, 'restored_imgs', '../../x.png')
    assert not (tmp_path / 'o').exists()


def test_missing_input_and_missing_weights_are_clear(tiny_ckpt, tmp_path, capsys, monkeypatch,
                                                   no_weights_anywhere):
    code, _, err = run(['-i', str(tmp_path / 'nowhere'), '--model_path', str(tiny_ckpt)], capsys)
    assert code == 2 and 'nowhere' in err
    monkeypatch.setenv('GFPGAN_OFFLINE', '1')
    weights = tmp_path / 'weights'
    code, _, err = run(['-i', str(tmp_path), '-o', str(tmp_path / 'o'), '-v', '1.4', '--weights_dir', str(weights)],
                       capsys)
    assert code == 2
    assert 'https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.4.pth' in err
    assert str(weights / 'GFPGANv1.4.pth') in err
    code, _, err = run(['-i', str(tmp_path), '-o', str(tmp_path / 'o'), '--model_path', str(tiny_ckpt),
                        '--detector', 'retinaface', '--weights_dir', str(weights)], capsys)
    assert code == 2 and 'detection_Resnet50_Final.pth' in err and 'facexlib/releases' in err
    assert not (tmp_path / 'o').exists()


def test_export_onnx_matches_pytorch(tiny_ckpt, tmp_path, capsys):
    import importlib.util

    pytest.importorskip('onnxruntime')
    spec = importlib.util.spec_from_file_location('export_onnx', REPO / 'scripts' / 'export_onnx.py')
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / 'tiny.onnx'
    code, stdout, _ = run(['--model_path', str(tiny_ckpt), '-o', str(out), '--atol', '1e-4'], capsys, script.main)
    assert code == 0 and out.is_file()
    assert 'OK' in stdout and "ort.InferenceSession('" in stdout
    diff = float(stdout.split('max |diff| = ')[1].split()[0])
    assert diff <= 1e-4
    # the noise is fixed, so two runs of the graph agree exactly; different inputs give different faces
    import onnxruntime as ort

    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    x = np.random.default_rng(3).uniform(-1, 1, (3, 3, 32, 32)).astype(np.float32)
    first, second = session.run(None, {'input': x})[0], session.run(None, {'input': x})[0]
    np.testing.assert_array_equal(first, second)
    assert first.shape == (3, 3, 32, 32) and np.abs(first[0] - first[1]).max() > 1e-3
