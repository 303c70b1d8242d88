"""The README demo: its data preparation (offline face alignment + component file) and its option files."""
from __future__ import annotations

import numpy as np
import pytest

from gfpgan.data.ffhq_degradation_dataset import load_components
from gfpgan.demo import GFPGAN_OPTIONS, RESTORATION_OPTIONS, prepare_astronaut_face
from gfpgan.face.alignment import face_template
from gfpgan.utils.image_io import imread
from gfpgan.utils.options import validate_options, yaml_load

pytest.importorskip('skimage')
pytest.importorskip('dlib')


def test_astronaut_face_is_aligned_with_components(tmp_path):
    faces, components = prepare_astronaut_face(tmp_path)
    img = imread(faces / 'astronaut.png')
    assert img.shape == (512, 512, 3)
    assert img.std() > 20  # a real picture, not the warp's border colour
    table = load_components(components)
    parts = table['astronaut']
    template = face_template(512)
    # the eyes and mouth found in the aligned crop sit where the FFHQ template puts them (within 12 px)
    assert np.hypot(*(np.array(parts['left_eye'][:2]) - template[0])) < 12
    assert np.hypot(*(np.array(parts['right_eye'][:2]) - template[1])) < 12
    mouth = (template[3] + template[4]) / 2
    assert np.hypot(*(np.array(parts['mouth'][:2]) - mouth)) < 12
    assert prepare_astronaut_face(tmp_path) == (faces, components)  # prepared once, then reused


@pytest.mark.parametrize('text', [GFPGAN_OPTIONS.format(faces='f', components='c.pth'), RESTORATION_OPTIONS])
def test_demo_option_files_validate(text):
    validate_options(yaml_load(text), 'demo')
