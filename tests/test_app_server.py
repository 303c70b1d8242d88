"""The web app as people and programs meet it: one server process, called through gradio_client and a real browser.

The app is started once for the module (`python -m gfpgan.app` on a free loopback port, a random-weight
tiny generator as its local weight file, downloads off and an empty weights folder). The browser test
drives Debian's headless chromium through chromedriver (apt: chromium chromium-driver; `.ci/run`
installs them) and skips, saying so, only where they are not installed.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from launch import free_port, subprocess_env
from test_app_uploads import write_clip, write_malformed
from test_restorer import save_tiny_generator

pytest.importorskip('gradio', reason='the web app needs the app extra: pip install -e .[app]')
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MAX_MEGAPIXELS = 4  # small, so that the downscaling path is cheap to exercise
MAX_VIDEO_FRAMES = 6
MAX_FILES = 8  # the browser test uploads 7 files at once


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """(url, weights folder, log file) of a running app; stopped (and its workspace removed) afterwards."""
    root = tmp_path_factory.mktemp('app')
    ckpt = root / 'tiny_gfpgan.pth'
    save_tiny_generator(ckpt)
    weights = root / 'weights'
    port = free_port()
    log = root / 'app.log'
    env = {**subprocess_env(), 'GFPGAN_OFFLINE': '1', 'GFPGAN_WEIGHTS_DIR': str(weights), 'TMPDIR': str(root)}
    with open(log, 'wb') as out:
        proc = subprocess.Popen([sys.executable, '-m', 'gfpgan.app', '--port', str(port), '--model_path', str(ckpt),
                                 '--max_megapixels', str(MAX_MEGAPIXELS), '--concurrency', '2',
                                 '--max_video_frames', str(MAX_VIDEO_FRAMES), '--max_files', str(MAX_FILES)],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/'
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            pytest.fail(f'the app exited with {proc.returncode}:\n{log.read_text()}')
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f'the app did not answer on {url} within 120 s:\n{log.read_text()}')
        time.sleep(0.5)
    yield url, weights, log
    proc.terminate()
    proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()
    assert not list(root.glob('gfpgan-app-*')), 'the app left its temporary folder behind'


@pytest.fixture(scope='module')
def client(server, tmp_path_factory) -> Client:
    return Client(server[0], verbose=False, download_files=str(tmp_path_factory.mktemp('downloads')))


def shared_photo(data_dir: Path, name: str = 'whole_imgs/Blake_Lively.jpg') -> Path:
    path = data_dir / name
    if not path.is_file():
        pytest.skip(f'{path} is absent')
    return path


def test_restore_api_gives_an_image_upscale_times_the_input(client, data_dir):
    src = shared_photo(data_dir)
    h, w = cv2.imread(str(src)).shape[:2]
    for upscale in (2, 1.5):
        image, faces = client.predict(handle_file(str(src)), upscale=upscale, api_name='/restore')
        assert cv2.imread(image).shape == (round(h * upscale), round(w * upscale), 3)
        assert faces and all(cv2.imread(f['image']).shape == (512, 512, 3) for f in faces)
    crop = shared_photo(data_dir, 'cropped_faces/Adele_crop.png')
    image, faces = client.predict(handle_file(str(crop)), aligned=True, api_name='/restore')
    assert cv2.imread(image).shape == (512, 512, 3) and len(faces) == 1


def test_large_photos_are_downscaled_to_the_limit(client, tmp_path):
    big = tmp_path / 'big.jpg'
    cv2.imwrite(str(big), np.full((6000, 6000, 3), 128, np.uint8))
    image, faces = client.predict(handle_file(str(big)), upscale=2, api_name='/restore')
    assert cv2.imread(image).shape == (2000, 2000, 3) and faces == []  # 2x of 1000x1000: 4 Mpx


def test_malformed_uploads_get_a_message_and_the_app_keeps_serving(client, data_dir, tmp_path):
    files = write_malformed(tmp_path)
    for name, expected in (('text.png', 'text.png: not a readable image'),
                           ('empty.png', 'empty.png: the file is empty')):
        with pytest.raises(AppError, match=expected):
            client.predict(handle_file(str(files[name])), api_name='/restore')
    for name in ('deep16.png', 'cmyk.jpg'):  # valid images in unusual encodings: restored
        image, _ = client.predict(handle_file(str(files[name])), upscale=2, api_name='/restore')
        assert cv2.imread(image).shape == (96, 128, 3)
    image, _ = client.predict(handle_file(str(shared_photo(data_dir))), upscale=1, api_name='/restore')
    assert cv2.imread(image).shape == (464, 700, 3)


def test_missing_release_weights_are_named_not_a_traceback(client, server):
    with pytest.raises(AppError) as info:
        client.predict(None, choice='1.4', api_name='/restore')
    assert 'No image file given' in str(info.value)
    face = np.full((64, 64, 3), 100, np.uint8)
    path = server[1].parent / 'face.png'
    cv2.imwrite(str(path), face)
    with pytest.raises(AppError) as info:
        client.predict(handle_file(str(path)), choice='1.4', aligned=True, api_name='/restore')
    message = str(info.value)
    assert str(server[1] / 'GFPGANv1.4.pth') in message and 'Download https://' in message
    assert 'Traceback' not in server[2].read_text()


# ---------------------------------------------------------------- the page, in headless chromium

def chromium():
    """A headless chromium driven through chromedriver, or a skip that says what to install."""
    webdriver = pytest.importorskip('selenium.webdriver', reason='the browser test needs selenium (requirements.txt)')
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which('chromium') or shutil.which('chromium-browser')
    driver = shutil.which('chromedriver')
    if not (browser and driver):
        pytest.skip('no chromium/chromedriver on PATH and none could be installed: '
                    'apt-get install chromium chromium-driver (.ci/run does this as root)')
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--window-size=1400,1700',
                '--disable-gpu', '--no-first-run'):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=opts)


def run_page(browser, url: str, files: list[Path], timeout: float = 120) -> str:
    """Load the page, upload `files`, press Restore and wait for the result; returns the status text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    wait = WebDriverWait(browser, timeout)
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, '#restore-btn'))
    browser.find_element(By.CSS_SELECTOR, '#upload input[type=file]').send_keys(
        '\n'.join(str(f.resolve()) for f in files))
    wait.until(lambda b: all(f.stem in b.find_element(By.CSS_SELECTOR, '#upload').text for f in files))  # uploaded
    browser.find_element(By.CSS_SELECTOR, '#restore-btn').click()
    wait.until(lambda b: b.find_element(By.CSS_SELECTOR, '#status').text.strip())
    return browser.find_element(By.CSS_SELECTOR, '#status').text


@pytest.mark.slow  # 16-20 s alone on two shared CPU cores (browser start, seven uploads, two runs)
def test_the_page_restores_uploads_and_names_the_bad_ones(server, data_dir, tmp_path):
    from selenium.webdriver.common.by import By

    photo = shared_photo(data_dir)
    bad = write_malformed(tmp_path / 'uploads')
    big = tmp_path / 'uploads' / 'big.jpg'
    cv2.imwrite(str(big), np.full((6000, 6000, 3), 128, np.uint8))
    twin = tmp_path / 'uploads' / 'cmyk.png'  # the same stem as cmyk.jpg: both results must be kept
    shutil.copy(bad['deep16.png'], twin)
    browser = chromium()
    try:
        status = run_page(browser, server[0], [photo, *bad.values(), big, twin])
        browser.save_screenshot(str(tmp_path / 'page.png'))
        assert 'Blake_Lively.jpg: restored 2 face(s), result 1400x928.' in status
        assert 'text.png: not a readable image' in status and 'empty.png: the file is empty' in status
        assert 'deep16.png: restored 0 face(s), result 128x96.' in status
        assert 'cmyk.jpg: restored 0 face(s), result 128x96.' in status
        assert 'big.jpg: 6000x6000 photo downscaled to 1000x1000' in status
        slider = browser.find_elements(By.CSS_SELECTOR, '#result-slider img')
        assert len(slider) == 2 and all(img.get_attribute('naturalWidth') == '1400' for img in slider)
        assert len(browser.find_elements(By.CSS_SELECTOR, '#faces img')) == 2
        assert len(browser.find_elements(By.CSS_SELECTOR, '#photos img')) == 5
        links = [a.get_attribute('href') for a in browser.find_elements(By.CSS_SELECTOR, '#downloads a[href]')]
        names = [link.rsplit('/', 1)[-1] for link in links]
        assert len(set(links)) == 5 and sorted(names) == ['Blake_Lively_restored.png', 'big_restored.png',
                                                          'cmyk_restored.png', 'cmyk_restored.png',
                                                          'deep16_restored.png']
        with urllib.request.urlopen(links[names.index('Blake_Lively_restored.png')], timeout=30) as response:
            downloaded = cv2.imdecode(np.frombuffer(response.read(), np.uint8), cv2.IMREAD_COLOR)
        assert downloaded.shape == (928, 1400, 3)
        # after the bad files, the page still serves a plain request
        status = run_page(browser, server[0], [photo])
        assert status.strip() == 'Blake_Lively.jpg: restored 2 face(s), result 1400x928.'
        browser.save_screenshot(str(tmp_path / 'page_again.png'))
    finally:
        browser.quit()
    assert (tmp_path / 'page.png').stat().st_size > 10_000


# ---------------------------------------------------------------- the video tab

def clip_of(data_dir: Path, path: Path, frames: int) -> Path:
    return write_clip(path, cv2.imread(str(shared_photo(data_dir)))[:232, :352], frames)  # even sides for the codec


def test_the_video_tab_restores_a_clip_within_the_limits(client, data_dir, tmp_path):
    from gfpgan.app.ui import video_available

    assert video_available()  # gfpgan.video imports and GFPGANer.enhance_video exists: the tab must be served
    endpoints = client.view_api(print_info=False, return_format='dict')['named_endpoints']
    assert {'/restore', '/restore_photos', '/restore_video'} <= set(endpoints)
    video, status = client.predict(handle_file(str(clip_of(data_dir, tmp_path / 'clip.mp4', 4))), upscale=2,
                                   api_name='/restore_video')
    path = video['video'] if isinstance(video, dict) else video
    cap = cv2.VideoCapture(path)
    ok, first = cap.read()
    assert ok and first.shape == (464, 704, 3) and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    assert status.startswith('clip.mp4: restored ') and 'in 4 frames' in status and status.endswith('at 2x.')
    with pytest.raises(AppError, match=rf"long.mp4: {MAX_VIDEO_FRAMES + 1} frames .* over the app's "
                                       rf'{MAX_VIDEO_FRAMES} frame limit \(--max_video_frames\)'):
        client.predict(handle_file(str(clip_of(data_dir, tmp_path / 'long.mp4', MAX_VIDEO_FRAMES + 1))),
                       api_name='/restore_video')


def test_the_video_tab_calls_enhance_video_at_the_fitted_upscale_and_counts_frames(data_dir, tmp_path, monkeypatch):
    """In process: the page hands the clip to the real `GFPGANer.enhance_video` (spied on) at the upscale that
    fits --max_megapixels, and stops a clip whose header gives no frame count once it passes the limit."""
    import dataclasses

    import gfpgan.video.io
    from gfpgan.app.service import LocalModel, RestorerService
    from gfpgan.app.ui import RestorePage
    from gfpgan.app.uploads import UploadLimits
    from gfpgan.app.workspace import Workspace
    from gfpgan.restorer import GFPGANer

    ckpt = tmp_path / 'tiny.pth'
    save_tiny_generator(ckpt)
    service = RestorerService([LocalModel(str(ckpt))], device='cpu')
    workspace = Workspace(parent=str(tmp_path))
    calls, real = [], GFPGANer.enhance_video

    def spy(self, src, dst, **options):
        calls.append((self.upscale, self.face_helper.upscale_factor, Path(src).name, Path(dst).name,
                      {k: v for k, v in options.items() if k != 'progress'}))
        return real(self, src, dst, **options)

    monkeypatch.setattr(GFPGANer, 'enhance_video', spy)
    clip = clip_of(data_dir, tmp_path / 'clip.mp4', 3)
    page = RestorePage(service, UploadLimits(max_output_megapixels=0.2, max_video_frames=2), workspace)
    with pytest.raises(Exception, match=r"clip\.mp4: 3 frames .* over the app's 2 frame limit"):
        page.restore_video(str(clip), service.default_choice, 2, 0.5, True)  # the header says 3
    assert calls == []
    page.limits = UploadLimits(max_output_megapixels=0.2, max_video_frames=3)
    out, status = page.restore_video(str(clip), service.default_choice, 2, 0.5, True)
    # 352x232 at 2x is 0.33 Mpx: restored at 1.5x (0.18 Mpx) instead, and the page says so
    assert calls == [(1.5, 1.5, 'clip.mp4', 'clip_restored.mp4', {'weight': 0.5, 'only_center_face': True})]
    assert 'at 1.5x.' in status and 'clip.mp4: restored at 1.5x instead of 2x' in status
    cap = cv2.VideoCapture(out)
    assert cap.read()[1].shape == (348, 528, 3) and workspace.results_dir in Path(out).parents
    # a header without a frame count: the frames are counted while the clip is tracked
    real_probe = gfpgan.video.io.probe
    monkeypatch.setattr(gfpgan.video.io, 'probe', lambda path: dataclasses.replace(real_probe(path), frames=0))
    page.limits = UploadLimits(max_output_megapixels=0.2, max_video_frames=2)
    with pytest.raises(Exception, match=r"clip\.mp4: over the app's 2 frame limit \(--max_video_frames\)"):
        page.restore_video(str(clip), service.default_choice, 2, 0.5, True)
    assert len(calls) == 2  # refused while tracking: only the earlier run's files exist, nothing half-written
    assert sorted(p.name for p in workspace.results_dir.rglob('*') if p.is_file()) == [
        'clip_restored.faces.json', 'clip_restored.mp4']
    workspace.remove()


# ---------------------------------------------------------------- the command line around the server

def test_restore_photos_caps_the_files_per_request(client, tmp_path):
    files = [tmp_path / f'p{i}.png' for i in range(MAX_FILES + 1)]
    for f in files:
        cv2.imwrite(str(f), np.full((8, 8, 3), 50, np.uint8))
    *_, status = client.predict([handle_file(str(f)) for f in files], api_name='/restore_photos')
    assert status.startswith(f'**Not restored**: {MAX_FILES + 1} files uploaded; the app restores at most '
                             f'{MAX_FILES} per request (--max_files).')


def test_the_cli_warns_off_loopback_and_hands_auth_to_gradio(tmp_path, monkeypatch, capsys):
    import signal

    import gradio as gr

    from gfpgan.app.cli import main

    ckpt = tmp_path / 'tiny.pth'
    save_tiny_generator(ckpt)
    launched = {}
    monkeypatch.setattr(gr.Blocks, 'launch', lambda self, **kw: launched.update(kw, demo=self))
    monkeypatch.setenv('GRADIO_TEMP_DIR', str(tmp_path))  # main points it into its workspace: restored after
    monkeypatch.setenv('TMPDIR', str(tmp_path))
    monkeypatch.setattr(tempfile, 'tempdir', None)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert main(['--host', '0.0.0.0', '--auth', 'ann:secret', '--model_path', str(ckpt), '--max_files', '3',
                     '--device', 'cpu']) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    err = capsys.readouterr().err
    assert 'WARNING: serving on 0.0.0.0:7860, behind --auth' in err
    assert launched['auth'] == ('ann', 'secret') and launched['server_name'] == '0.0.0.0'
    assert 'Up to 3 photos per request' in launched['demo'].config['components'][0]['props']['value']
    assert not list(tmp_path.glob('gfpgan-app-*'))  # the workspace is removed when main returns
