"""Eye/mouth component file from offline landmarks: upstream's format and values."""
from __future__ import annotations

import importlib.util
import json
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gfpgan.face.components import build_component_table, components_from_68, save_component_table
from gfpgan.face.detection import DlibFaceDetector

REPO = Path(__file__).resolve().parents[1]
PARTS = ('left_eye', 'right_eye', 'mouth')


def load_script():
    spec = importlib.util.spec_from_file_location('make_component_landmarks',
                                                  REPO / 'scripts' / 'make_component_landmarks.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torch_load_numpy(path):
    """weights_only load allowing exactly the numpy types upstream's component file contains."""
    import _codecs

    core = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    allowed = [(core.scalar, 'numpy.core.multiarray.scalar'), core.scalar, np.dtype, type(np.dtype('f8')),
               _codecs.encode]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, weights_only=True)


@pytest.fixture(scope='module')
def detector():
    return DlibFaceDetector()


def test_components_from_68_centre_and_half_length():
    pts = np.zeros((68, 2))
    pts[36:42] = [[10, 20], [14, 18], [18, 18], [22, 20], [18, 22], [14, 22]]  # 12 wide, 4 high
    pts[42:48] = pts[36:42] + [40, 2]
    pts[48:68, 0] = np.linspace(20, 50, 20)
    pts[48:68, 1] = 60
    comps = components_from_68(pts)
    np.testing.assert_allclose(comps['left_eye'], [16, 20, 6])
    np.testing.assert_allclose(comps['right_eye'], [56, 22, 6])
    np.testing.assert_allclose(comps['mouth'], [35, 60, 15])
    assert all(type(v) is np.float64 for part in comps.values() for v in part)


def test_matches_upstream_file_on_ffhq_image_0(data_dir, detector, tmp_path):
    upstream = torch_load_numpy(data_dir / 'ffhq_512' / 'eye_mouth_landmarks.pth')
    table, fallbacks = build_component_table([data_dir / 'ffhq_512' / '00000000.png'], detector=detector,
                                             progress=False)
    assert fallbacks == [] and set(table) == set(upstream) == {'00000000'}
    for part in PARTS:
        ours, theirs = table['00000000'][part], upstream['00000000'][part]
        assert len(ours) == len(theirs) == 3
        assert [type(v) for v in ours] == [type(v) for v in theirs]  # numpy float64, like upstream
        np.testing.assert_allclose(ours, theirs, atol=1.5)  # dlib vs upstream's landmarks: ~1 px

    out = tmp_path / 'comps.pth'
    save_component_table(table, out)
    again = torch_load_numpy(out)  # loads as safely as upstream's file
    assert again == table
    with pytest.raises(pickle.UnpicklingError):  # needs numpy allow-listed, as upstream's file does
        torch.load(out, weights_only=True)


def test_json_output_and_index_keys(data_dir, detector, tmp_path):
    folder = tmp_path / 'faces'
    folder.mkdir()
    for name in ('b_face.png', 'a_face.png'):
        shutil.copy(data_dir / 'cropped_faces' / 'Adele_crop.png', folder / name)
    files = sorted(folder.iterdir())
    by_index, _ = build_component_table(files, key='index', detector=detector, progress=False)
    by_name, _ = build_component_table(files, key='name', detector=detector, progress=False)
    assert list(by_index) == ['00000000', '00000001'] and list(by_name) == ['a_face', 'b_face']
    save_component_table(by_name, tmp_path / 'c.json')
    plain = json.loads((tmp_path / 'c.json').read_text())
    np.testing.assert_allclose(plain['a_face']['mouth'], by_name['a_face']['mouth'])
    with pytest.raises(ValueError, match='key'):
        build_component_table(files, key='stem', detector=detector, progress=False)


def test_fallback_box_when_detection_misses(data_dir, detector, monkeypatch):
    path = data_dir / 'ffhq_512' / '00000000.png'
    detected, _ = build_component_table([path], detector=detector, progress=False)
    monkeypatch.setattr(detector, 'detect_68', lambda img: [])
    fitted, fallbacks = build_component_table([path], detector=detector, progress=False)
    assert fallbacks == [str(path)]
    for part in PARTS:
        np.testing.assert_allclose(fitted['00000000'][part], detected['00000000'][part], atol=3)


def test_script_writes_and_refuses_to_overwrite(data_dir, tmp_path, capsys):
    script = load_script()
    out = tmp_path / 'lm.pth'
    assert script.main(['-i', str(data_dir / 'ffhq_512'), '-o', str(out), '--quiet']) == 0
    assert set(torch_load_numpy(out)) == {'00000000'}
    assert script.main(['-i', str(data_dir / 'ffhq_512'), '-o', str(out), '--quiet']) == 1
    assert 'exists' in capsys.readouterr().err
    assert script.main(['-i', str(tmp_path / 'nope'), '-o', str(tmp_path / 'x.pth')]) == 1
    assert 'nope' in capsys.readouterr().err


def test_data_module_reads_our_file(data_dir, tmp_path):
    """The training dataset's loader accepts what the script writes (shared format)."""
    loader = pytest.importorskip('gfpgan.data.ffhq_degradation_dataset').load_components
    table, _ = build_component_table([data_dir / 'ffhq_512' / '00000000.png'], progress=False)
    save_component_table(table, tmp_path / 'c.pth')
    loaded = loader(tmp_path / 'c.pth')
    assert loaded['00000000']['mouth'] == pytest.approx([float(v) for v in table['00000000']['mouth']])
    assert sys.modules.get('face_recognition_models') is None
