"""lmdb databases: the writer (raw bytes / PNG, resume, overwrite rules, map growth), the script and the reader."""

from __future__ import annotations

import pickle
import re

import cv2
import numpy as np
import pytest

from gfpgan.data.file_client import LmdbBackend, build_file_client, read_meta_info
from gfpgan.data.lmdb_writer import list_images, make_lmdb_from_folder
from gfpgan.utils.image_io import imfrombytes

META_LINE = re.compile(r'^(\S+\.\w+) \((\d+),(\d+),(\d+)\) (-?\d+)$')


def quiet(**kw):
    return dict(progress=False, log=lambda m: None, **kw)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / 'imgs'
    (root / 'sub').mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, shape in (('b.png', (20, 30, 3)), ('a.jpg', (16, 16, 3)), ('sub/c.png', (12, 10))):
        cv2.imwrite(str(root / name), (rng.random(shape) * 255).astype(np.uint8))
    (root / 'notes.txt').write_text('skip me')
    return root


def test_raw_bytes_meta_info_and_reader(folder, tmp_path):
    db = tmp_path / 'x.lmdb'
    counts = make_lmdb_from_folder(folder, db, **quiet())
    assert counts == {'written': 3, 'skipped': 0}
    lines = (db / 'meta_info.txt').read_text().splitlines()
    assert lines == ['a.jpg (16,16,3) -1', 'b.png (20,30,3) -1', 'sub/c.png (12,10,1) -1']
    assert all(META_LINE.match(line) for line in lines)
    assert read_meta_info(db) == ['a', 'b', 'sub/c']
    client = build_file_client({'type': 'lmdb'}, [str(db)], ['gt'])
    for key, name in zip(read_meta_info(db), list_images(folder)):
        assert client.get(key, 'gt') == (folder / name).read_bytes()  # original bytes, not re-encoded
    with pytest.raises(KeyError, match="'missing' is not in the lmdb database"):
        client.get('missing', 'gt')
    with pytest.raises(KeyError, match="no client_key 'lq'"):
        client.get('a', 'lq')
    clone = pickle.loads(pickle.dumps(client))  # spawned workers receive a picklable backend
    assert clone.get('b', 'gt') == (folder / 'b.png').read_bytes()


def test_png_reencode_keeps_pixels(folder, tmp_path):
    db = tmp_path / 'png.lmdb'
    make_lmdb_from_folder(folder, db, compress_level=3, **quiet())
    assert (db / 'meta_info.txt').read_text().splitlines()[2] == 'sub/c.png (12,10,3) 3'
    client = LmdbBackend(str(db))
    value = client.get('a')
    assert value.startswith(b'\x89PNG')
    np.testing.assert_array_equal(imfrombytes(value), cv2.imread(str(folder / 'a.jpg')))


def test_resume_skips_present_keys_and_recovers_meta(folder, tmp_path):
    db = tmp_path / 'r.lmdb'
    assert make_lmdb_from_folder(folder, db, names=['b.png'], **quiet())['written'] == 1  # an interrupted run
    (db / 'meta_info.txt').unlink()  # killed before writing the meta file
    counts = make_lmdb_from_folder(folder, db, **quiet())
    assert counts == {'written': 2, 'skipped': 1}
    assert read_meta_info(db) == ['a', 'b', 'sub/c']
    assert 'b.png (20,30,3) -1' in (db / 'meta_info.txt').read_text()
    (db / 'meta_info.txt').unlink()
    assert make_lmdb_from_folder(folder, db, names=['a.jpg'], **quiet())['skipped'] == 1  # a later partial run
    assert (db / 'meta_info.txt').read_text().splitlines() == ['a.jpg (16,16,3) -1', 'b.png (20,30,3) -1',
                                                               'sub/c.png (12,10,1) -1']  # every stored key


def test_existing_database_is_never_overwritten_without_flag(folder, tmp_path):
    db = tmp_path / 'o.lmdb'
    make_lmdb_from_folder(folder, db, **quiet())
    old = (folder / 'b.png').read_bytes()
    cv2.imwrite(str(folder / 'b.png'), np.zeros((20, 30, 3), np.uint8))
    assert make_lmdb_from_folder(folder, db, **quiet()) == {'written': 0, 'skipped': 3}
    assert LmdbBackend(str(db)).get('b') == old
    assert make_lmdb_from_folder(folder, db, **quiet(overwrite=True)) == {'written': 3, 'skipped': 0}
    assert LmdbBackend(str(db)).get('b') == (folder / 'b.png').read_bytes()
    plain = tmp_path / 'plain.lmdb'
    plain.mkdir()
    (plain / 'file.txt').write_text('x')
    with pytest.raises(FileExistsError, match='not an lmdb database.*--overwrite'):
        make_lmdb_from_folder(folder, plain, **quiet())
    with pytest.raises(ValueError, match='end with .lmdb'):
        make_lmdb_from_folder(folder, tmp_path / 'nope', **quiet())


def test_map_grows_when_full(tmp_path):
    root = tmp_path / 'big'
    root.mkdir()
    rng = np.random.default_rng(1)
    for i in range(6):
        cv2.imwrite(str(root / f'{i}.png'), (rng.random((64, 64, 3)) * 255).astype(np.uint8))  # ~12 KB each
    db = tmp_path / 'g.lmdb'
    counts = make_lmdb_from_folder(root, db, map_size=32 * 1024, commit_every=2, **quiet())
    assert counts['written'] == 6
    assert LmdbBackend(str(db)).get('5') == (root / '5.png').read_bytes()


def test_bad_source_image_names_the_file(folder, tmp_path):
    (folder / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(Exception, match=r'broken\.png'):
        make_lmdb_from_folder(folder, tmp_path / 'b.lmdb', **quiet())


def test_script_cli(folder, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / 'scripts' / 'create_lmdb.py'
    spec = importlib.util.spec_from_file_location('create_lmdb', script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    db = tmp_path / 'cli.lmdb'
    assert module.main(['-i', str(folder), '-o', str(db), '--quiet', '--no-recursive']) == 0
    assert read_meta_info(db) == ['a', 'b']
    assert '2 written, 0 already present' in capsys.readouterr().out
    assert module.main(['-i', str(folder), '-o', str(db), '--quiet']) == 0
    assert read_meta_info(db) == ['a', 'b', 'sub/c']
    assert '1 written, 2 already present' in capsys.readouterr().out
