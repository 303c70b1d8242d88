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
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from launch import free_port, subprocess_env
from test_app_uploads import write_malformed
from test_restorer import save_tiny_generator

pytest.importorskip('gradio', reason='the web app needs the app extra: pip install -e .[app]')
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MAX_MEGAPIXELS = 4  # small, so that the downscaling path is cheap to exercise


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
                                 '--max_megapixels', str(MAX_MEGAPIXELS), '--concurrency', '2'],
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


# ---------------------------------------------------------------- the video tab (once gfpgan.video exists)

def test_the_video_tab_is_there_exactly_when_video_restoration_is(client):
    from gfpgan.app.ui import video_available

    endpoints = client.view_api(print_info=False, return_format='dict')['named_endpoints']
    assert '/restore' in endpoints and '/restore_photos' in endpoints
    assert ('/restore_video' in endpoints) == video_available()


def test_restore_video_gives_a_clip_upscale_times_the_input(client, data_dir, tmp_path):
    from gfpgan.app.ui import video_available

    if not video_available():
        pytest.skip('no video restoration yet (gfpgan.video / GFPGANer.enhance_video)')
    frame = cv2.imread(str(shared_photo(data_dir)))[:232, :352]  # even sizes for the codec
    src = tmp_path / 'clip.mp4'
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*'mp4v'), 5, (frame.shape[1], frame.shape[0]))
    for _ in range(4):
        writer.write(frame)
    writer.release()
    result = client.predict(handle_file(str(src)), upscale=2, api_name='/restore_video')
    path = result['video'] if isinstance(result, dict) else result
    cap = cv2.VideoCapture(path)
    ok, first = cap.read()
    assert ok and first.shape == (464, 704, 3)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4


def test_the_video_tab_hands_the_clip_to_enhance_video(tmp_path, monkeypatch):
    """The tab's plumbing, in process, before `GFPGANer.enhance_video` exists on this branch: a stand-in
    records the call (which file, where to, which options) and writes the output the page then serves."""
    from gfpgan.app.service import LocalModel, RestorerService
    from gfpgan.app.ui import RestorePage, build_demo
    from gfpgan.app.uploads import UploadLimits
    from gfpgan.app.workspace import Workspace
    from gfpgan.restorer import GFPGANer

    ckpt = tmp_path / 'tiny.pth'
    save_tiny_generator(ckpt)
    service = RestorerService([LocalModel(str(ckpt))], device='cpu')
    workspace = Workspace(parent=str(tmp_path))
    calls = []

    def enhance_video(self, src, dst, **options):
        calls.append((self.upscale, Path(src).name, options))
        Path(dst).write_bytes(b'video')

    monkeypatch.setattr(GFPGANer, 'enhance_video', enhance_video, raising=False)
    demo = build_demo(service, UploadLimits(max_file_mb=0.001), workspace, video=True)
    assert 'restore_video' in {fn.api_name for fn in demo.fns.values()}
    clip = tmp_path / 'clip.mp4'
    clip.write_bytes(b'x' * 100)
    page = RestorePage(service, UploadLimits(max_file_mb=1), workspace)
    out = Path(page.restore_video(str(clip), service.default_choice, 2, 0.5, True))
    assert out.read_bytes() == b'video' and out.name == 'clip_restored.mp4' and workspace.results_dir in out.parents
    assert calls == [(2, 'clip.mp4', {'weight': 0.5, 'only_center_face': True})]
    clip.write_bytes(b'x' * 2**21)
    with pytest.raises(Exception, match=r'clip.mp4: 2.0 MB is over the 1 MB upload limit'):
        page.restore_video(str(clip), service.default_choice, 2, 0.5, True)
    workspace.remove()
