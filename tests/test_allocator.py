"""keep_freed_memory: large allocations reuse their pages instead of being page-faulted again on every call."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROBE = """
import json, resource, threading
from gfpgan.utils.allocator import keep_freed_memory
applied = keep_freed_memory()
import torch
torch.set_num_threads(1)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.LeakyReLU(0.2),
                          torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.LeakyReLU(0.2),
                          torch.nn.Conv2d(32, 3, 3, padding=1)).eval()
x = torch.rand(1, 3, 1024, 1024)  # 128 MB activations, like a 512 px face's largest

def faults_of_third_call(out):
    with torch.no_grad():
        for _ in range(3):  # the first calls map the pages; the third shows whether they were kept
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            net(x)
        out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

main, worker = [], []
faults_of_third_call(main)
thread = threading.Thread(target=faults_of_third_call, args=(worker,))
thread.start(); thread.join()
print(json.dumps({'applied': applied, 'main': main[-1], 'thread': worker[-1]}))
"""

def probe(enabled: bool) -> dict:
    env = dict(os.environ, GFPGAN_KEEP_FREED_MEMORY='1' if enabled else '0',
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    out = subprocess.run([sys.executable, '-c', PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='mallopt is glibc')
def test_freed_memory_is_kept_in_main_and_worker_threads():
    off, on = probe(False), probe(True)
    assert off['applied'] is False and on['applied'] is True
    pages = 128 * 2**20 // 4096  # one 128 MB activation's pages
    assert off['main'] > pages and off['thread'] > pages, off  # fresh pages on every call
    # the same pages again (now and then glibc cannot fit one aligned 128 MB block in the freed space: 1/8)
    assert on['main'] < off['main'] // 4 and on['thread'] < off['thread'] // 4, (off, on)
