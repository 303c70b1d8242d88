"""The web app's restorer service: one load per model, a capped pool of wrappers, clear missing-weight errors."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from test_restorer import save_tiny_generator

from gfpgan.app.cli import exposure_warning, parse_args
from gfpgan.app.service import LocalModel, ModelError, RestorerService, default_device_and_dtype
from gfpgan.utils.image_io import imread


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('weights') / 'tiny_gfpgan.pth'
    save_tiny_generator(path)
    return path


@pytest.fixture
def service(tiny_ckpt, tmp_path) -> RestorerService:
    return RestorerService([LocalModel(str(tiny_ckpt))], weights_dir=str(tmp_path / 'no_weights'), device='cpu')


def test_one_load_per_model_shared_by_every_upscale_and_request(service, data_dir, monkeypatch):
    import gfpgan.restorer

    prepared = []
    real_prepare = gfpgan.restorer.prepare_for_inference
    monkeypatch.setattr(gfpgan.restorer, 'prepare_for_inference',
                        lambda net, **kw: prepared.append(net) or real_prepare(net, **kw))
    choice = service.default_choice
    assert choice == 'local: tiny_gfpgan.pth' and service.choices[0] == choice and '1.4' in service.choices
    img = imread(data_dir / 'whole_imgs' / 'Blake_Lively.jpg')
    first = service.restore(img, choice, upscale=2)
    assert first.restored.shape == (img.shape[0] * 2, img.shape[1] * 2, 3) and first.restored_faces
    again = service.restore(img, choice, upscale=1.5)  # the same wrapper, set to another upscale
    assert again.restored.shape == (round(img.shape[0] * 1.5), round(img.shape[1] * 1.5), 3)
    np.testing.assert_array_equal(service.restore(img, choice, upscale=2).restored, first.restored)
    for upscale in (1, 2.5, 3, 3.5):
        service.restore(img[:64, :64], choice, upscale=upscale, aligned=True)
    assert service.loads == 1 and len(prepared) == 1 and service.wrappers == 1  # concurrency 1: one wrapper
    with service.restorer(choice, 3) as wrapper:
        assert wrapper.upscale == 3 and wrapper.face_helper.upscale_factor == 3
        assert wrapper.gfpgan is service._nets[choice].gfpgan
        assert wrapper._generator is service._nets[choice]._generator  # prepared once, not per wrapper
    face = imread(data_dir / 'cropped_faces' / 'Adele_crop.png')
    crop = service.restore(face, choice, aligned=True)
    assert crop.restored is None and crop.result.shape == (512, 512, 3) and len(crop.restored_faces) == 1


def test_wrappers_are_capped_at_concurrency_and_share_detectors_across_models(tiny_ckpt, tmp_path):
    other = tmp_path / 'other.pth'
    other.write_bytes(tiny_ckpt.read_bytes())
    service = RestorerService([LocalModel(str(tiny_ckpt)), LocalModel(str(other))], device='cpu', concurrency=2)
    a_choice, b_choice = service.choices[:2]
    with service.restorer(a_choice, 2) as a, service.restorer(a_choice, 2) as b:  # two requests at once ...
        assert a is not b and a.face_helper is not b.face_helper and a.gfpgan is b.gfpgan  # ... on one network
        detectors = {id(a.face_helper.detector), id(b.face_helper.detector)}  # built on first use
        assert len(detectors) == 2
        waited, seen = threading.Event(), []

        def third():  # over the limit: waits until a wrapper comes back
            with service.restorer(b_choice, 1) as c:
                waited.set()
                seen.append((c.gfpgan is service._nets[b_choice].gfpgan, c.upscale, id(c.face_helper.detector)))

        thread = threading.Thread(target=third)
        thread.start()
        assert not waited.wait(0.5) and service.wrappers == 2
    thread.join(timeout=30)
    assert waited.is_set() and service.wrappers == 2 and service.loads == 2
    (own_network, upscale, detector), = seen
    assert own_network and upscale == 1 and detector in detectors  # took over a returned wrapper's detector
    assert sum(map(len, service._idle.values())) == 2  # one wrapper per model now, two detectors in all
    with pytest.raises(ValueError, match='concurrency must be >= 1'):
        RestorerService(concurrency=0)


def test_concurrent_first_requests_load_the_model_once(service):
    img = np.full((64, 64, 3), 120, np.uint8)
    errors = []

    def run():
        try:
            service.restore(img, service.default_choice, aligned=True)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and service.loads == 1


def test_missing_release_weights_name_the_file_and_the_folder(service, tmp_path, monkeypatch):
    monkeypatch.setenv('GFPGAN_OFFLINE', '1')
    with pytest.raises(ModelError) as info:
        service.restore(np.zeros((64, 64, 3), np.uint8), '1.4', aligned=True)
    message = str(info.value)
    assert str(tmp_path / 'no_weights' / 'GFPGANv1.4.pth') in message
    assert 'https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.4.pth' in message
    with pytest.raises(ModelError, match="Unknown model 'v9'"):
        service.restore(np.zeros((64, 64, 3), np.uint8), 'v9')


def test_unloadable_local_files_are_refused_clearly(tiny_ckpt, tmp_path):
    with pytest.raises(FileNotFoundError, match='nothere.pth does not exist'):
        RestorerService([LocalModel(str(tmp_path / 'nothere.pth'))])
    with pytest.raises(ValueError, match="unknown arch 'resnet'"):
        RestorerService([LocalModel(str(tiny_ckpt), arch='resnet')])
    service = RestorerService([LocalModel(str(tiny_ckpt), arch='RestoreFormer')], device='cpu')
    with pytest.raises(ModelError, match=r'Model local: tiny_gfpgan.pth \(.*tiny_gfpgan.pth\) could not be loaded'):
        service.restore(np.zeros((64, 64, 3), np.uint8), service.default_choice, aligned=True)


def test_device_defaults_and_safe_cli_defaults():
    device, dtype = default_device_and_dtype(None, None)
    assert (device, dtype) == (('cuda', 'bf16' if torch.cuda.is_bf16_supported() else 'fp32')
                               if torch.cuda.is_available() else ('cpu', 'fp32'))
    assert default_device_and_dtype('cpu', 'bf16') == ('cpu', 'bf16')
    args = parse_args([])
    assert args.host == '127.0.0.1' and args.share is False and args.concurrency == 1 and args.auth is None
    assert args.max_files == 20 and exposure_warning(args) is None
    for bad in (['--concurrency', '0'], ['--max_files', '0'], ['--auth', 'user'], ['--auth', ':pw']):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_serving_the_network_warns_and_auth_is_user_colon_password():
    open_to_all = exposure_warning(parse_args(['--host', '0.0.0.0']))
    assert open_to_all.startswith('WARNING: serving on 0.0.0.0:7860 WITHOUT authentication') and '--auth' in open_to_all
    assert 'public gradio.live link WITHOUT' in exposure_warning(parse_args(['--share']))
    args = parse_args(['--host', '0.0.0.0', '--auth', 'ann:se:cret'])
    assert args.auth == ('ann', 'se:cret')  # the password may hold colons
    assert 'behind --auth' in exposure_warning(args) and 'WITHOUT' not in exposure_warning(args)
    assert all(exposure_warning(parse_args(['--host', host])) is None for host in ('localhost', '127.0.0.2', '::1'))
