"""ImageFolder layout: class labels from folders (grey and RGBA too), and bad data folders, one line each."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from gfpgan.data import build_dataset
from gfpgan.data.folder_check import DataFolderError, check_image_folder


def _img(path, value: int, size=(8, 8), channels: int = 3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0]) if channels == 1 else (size[1], size[0], channels)
    cv2.imwrite(str(path), np.full(shape, value, np.uint8))


@pytest.fixture
def layout(tmp_path):
    root = tmp_path / 'data' / 'pets'
    _img(root / 'dog' / 'a.png', 200)
    _img(root / 'cat' / 'x.png', 10)
    _img(root / 'cat' / 'more' / 'y.jpg', 20)  # nested below its class folder: still a cat
    _img(root / 'emu' / 'e.png', 120, channels=4)
    return root


def test_labels_follow_sorted_class_folders(layout):
    ds = build_dataset(dict(type='ImageFolderDataset', dataroot=str(layout), class_labels=True))
    assert ds.classes == ['cat', 'dog', 'emu'] and ds.num_classes == 3
    got = {s['gt_path'].split('pets/')[1]: int(s['label']) for s in (ds[i] for i in range(len(ds)))}
    assert got == {'cat/more/y.jpg': 0, 'cat/x.png': 0, 'dog/a.png': 1, 'emu/e.png': 2}
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch['label'].dtype == torch.int64 and batch['label'].tolist() == [0, 0, 1, 2]
    plain = build_dataset(dict(type='ImageFolderDataset', dataroot=str(layout)))
    assert 'label' not in plain[0] and plain.num_classes == 0


@pytest.mark.parametrize('channels', [1, 4])
def test_labels_with_greyscale_and_rgba(layout, channels):
    ds = build_dataset(dict(type='ImageFolderDataset', dataroot=str(layout), class_labels=True, channels=channels))
    s = ds[3]  # emu/e.png, written as BGRA
    assert s['gt'].shape == (channels, 8, 8) and int(s['label']) == 2
    if channels == 4:
        torch.testing.assert_close(s['gt'][3], torch.full((8, 8), 120 / 255))  # alpha kept
    else:
        assert s['gt'].shape[0] == 1


def test_loose_images_with_class_labels_are_refused(layout):
    _img(layout / 'stray.png', 0)
    with pytest.raises(DataFolderError) as info:
        build_dataset(dict(type='ImageFolderDataset', dataroot=str(layout), class_labels=True))
    assert str(info.value) == (f'{layout}: 1 image(s) directly in the folder (e.g. stray.png); with class_labels '
                               'every image must be in a class folder, root/<class>/<image>.')
    assert str(info.value) in _problems(layout, same_size=False, class_labels=True)  # the up-front check: same line


def test_lmdb_has_no_class_folders(tmp_path):
    db = tmp_path / 'x.lmdb'
    db.mkdir()
    (db / 'data.mdb').write_bytes(b'')
    (db / 'meta_info.txt').write_text('a.png (8,8,3) 1\n')
    opt = dict(type='ImageFolderDataset', dataroot=str(db), io_backend={'type': 'lmdb'})
    with pytest.raises(ValueError, match='class_labels needs a disk folder'):
        build_dataset(dict(opt, class_labels=True))
    with pytest.raises(ValueError, match='check_images reads disk folders'):
        build_dataset(dict(opt, check_images=True))


def test_good_folder_passes_the_check(layout):
    paths = check_image_folder(layout, same_size=True, class_labels=True)
    assert len(paths) == 4
    ds = build_dataset(dict(type='ImageFolderDataset', dataroot=str(layout), class_labels=True, check_images=True))
    assert len(ds) == 4


def _problems(root, **kw) -> list[str]:
    with pytest.raises(DataFolderError) as info:
        check_image_folder(root, **kw)
    return str(info.value).splitlines()


def test_each_bad_folder_gets_one_clear_line(tmp_path):
    assert _problems(tmp_path / 'nope') == [f'{tmp_path / "nope"}: no such folder.']
    (tmp_path / 'empty').mkdir()
    assert _problems(tmp_path / 'empty') == [f'{tmp_path / "empty"}: the folder is empty.']
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'docs' / 'notes.txt').write_text('hi')
    (lines,) = [_problems(tmp_path / 'docs')]
    assert len(lines) == 1 and 'no image files' in lines[0] and 'among its 1 files (e.g. notes.txt)' in lines[0]

    mixed = tmp_path / 'mixed'
    for i in range(3):
        _img(mixed / f'{i}.png', 0, size=(8, 8))
    _img(mixed / 'wide.png', 0, size=(16, 8))
    (line,) = _problems(mixed)
    assert line.startswith(f'{mixed}: images have different sizes (8x8: 3 files (e.g. 0.png), 16x8: 1 file '
                           '(e.g. wide.png)') and line.endswith('set image_size to resize and crop them to one size.')
    assert len(check_image_folder(mixed, same_size=False)) == 4  # with image_size the sizes do not matter

    broken = tmp_path / 'broken'
    _img(broken / 'ok.png', 0)
    (broken / 'empty.png').write_bytes(b'')
    good = cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    (broken / 'cut.png').write_bytes(good[:len(good) // 2])
    lines = _problems(broken)
    assert len(lines) == 2
    assert any('cut.png' in x and 'truncated PNG' in x for x in lines)
    assert any('empty.png' in x and 'empty (0 bytes)' in x for x in lines)


def test_class_layout_problems_are_listed_together(layout):
    _img(layout / 'stray.png', 0, size=(4, 4))
    (layout / 'owl').mkdir()
    (layout / 'owl' / 'readme.txt').write_text('no owls yet')
    lines = _problems(layout, same_size=True, class_labels=True)
    assert len(lines) == 3
    assert 'different sizes' in lines[0]
    assert 'directly in the folder (e.g. stray.png)' in lines[1]
    assert lines[2] == f'{layout / "owl"}: class folder without images; remove it or add images.'
