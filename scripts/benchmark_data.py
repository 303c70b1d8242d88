"""FFHQ degradation throughput: samples/s per dataloader worker (numpy path) and of the batched torch path.

    python scripts/benchmark_data.py                       # prints a markdown table
    python scripts/benchmark_data.py --append BENCHMARKS.md

A worker is emulated by one thread (torch and OpenCV), as in a DataLoader worker process. Both wall
time and process CPU time are reported: on a shared machine CPU time is the steadier number.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from gfpgan.data.degradations_torch import GPUFFHQDegrader  # noqa: E402
from gfpgan.data.ffhq_degradation_dataset import FFHQDegradationDataset  # noqa: E402
from gfpgan.utils.image_io import imfrombytes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# options of upstream's options/train_gfpgan_v1.yml
RECIPE = dict(out_size=512, mean=[0.5] * 3, std=[0.5] * 3, use_hflip=True, blur_kernel_size=41,
              kernel_list=['iso', 'aniso'], kernel_prob=[0.5, 0.5], blur_sigma=[0.1, 10], downsample_range=[0.8, 8],
              noise_range=[0, 20], jpeg_range=[60, 100], color_jitter_prob=0.3, color_jitter_shift=20,
              color_jitter_pt_prob=0.3, gray_prob=0.01)
ALL_ON = dict(RECIPE, color_jitter_prob=1, color_jitter_pt_prob=1, gray_prob=1)


def timed(fn: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) per call, after one warm-up call."""
    fn()
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - wall) / repeats, (time.process_time() - cpu) / repeats


def machine() -> str:
    try:
        lines = subprocess.run(['lscpu'], capture_output=True, text=True, check=False).stdout.splitlines()
        model = next((ln.split(':', 1)[1].strip() for ln in lines if ln.startswith('Model name')), platform.processor())
    except OSError:
        model = platform.processor()
    import os

    gpu = f', GPU {torch.cuda.get_device_name(0)}' if torch.cuda.is_available() else ''
    return f'{model}, {os.cpu_count()} cores{gpu}; torch {torch.__version__}, OpenCV {cv2.__version__}'


def run(data_root: Path, repeats: int, batch: int) -> list[tuple[str, float, float]]:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    rows = []
    png = (data_root / '00000000.png').read_bytes()
    wall, cpu = timed(lambda: imfrombytes(png, float32=True), repeats * 2)
    rows.append(('decode 512 px PNG only (what a worker does for the GPU path)', wall, cpu))
    for name, opt in (('numpy path, upstream recipe', RECIPE), ('numpy path, all probabilities 1', ALL_ON)):
        ds = FFHQDegradationDataset(dict(opt, dataroot_gt=str(data_root)))
        np.random.seed(0)
        wall, cpu = timed(lambda ds=ds: ds[0], repeats)
        rows.append((f'{name} (1 worker)', wall, cpu))
    gt = torch.rand(batch, 3, 512, 512)
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    for device in devices:
        x = gt.to(device)
        sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
        for mode in ('opencv', 'skip'):
            deg = GPUFFHQDegrader(dict(RECIPE, jpeg_mode=mode))
            wall, cpu = timed(lambda deg=deg, x=x: deg(x), max(2, repeats // batch), sync)
            threads = '1 thread' if device == 'cpu' else 'GPU'
            rows.append((f'torch batch {batch} on {device} ({threads}), JPEG {mode}', wall / batch, cpu / batch))
    return rows


def table(rows: list[tuple[str, float, float]]) -> str:
    out = ['| what (512 px) | samples/s (wall) | ms/sample (wall) | ms/sample (CPU) |', '|---|---:|---:|---:|']
    out += [f'| {n} | {1 / w:.1f} | {w * 1e3:.1f} | {c * 1e3:.1f} |' for n, w, c in rows]
    return '\n'.join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', default=str(REPO.parent / 'shared' / 'data' / 'ffhq_512'),
                        help='folder of 512 px faces')
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--append', help='append the section to this markdown file (created with a heading if absent)')
    args = parser.parse_args(argv)
    rows = run(Path(args.data), args.repeats, args.batch)
    import os

    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    gpu_note = '' if torch.cuda.is_available() else ' No GPU here: run it on a CUDA machine for the GPU rows.'
    section = (f'\n## Data: FFHQ degradation throughput\n\n`python scripts/benchmark_data.py` on {machine()} '
               f'(load average {load:.1f} at the end of the run: wall times include waiting for shared cores).\n'
               'One worker = one thread (torch and OpenCV). The torch path times a whole batch and reports per '
               'sample; with `JPEG opencv` each sample makes a CPU round trip through the real codec, with '
               f'`skip` JPEG is left out.{gpu_note}\n\n' + table(rows) + '\n')
    print(section)
    if args.append:
        path = Path(args.append)
        text = path.read_text() if path.exists() else '# Benchmarks\n'
        path.write_text(text.rstrip('\n') + '\n' + section)
    return 0


if __name__ == '__main__':
    sys.exit(main())
