"""Time the inference pipeline per face on CPU: detection, alignment, restoration, paste-back.

    python scripts/benchmark_inference.py [--images ../shared/data/whole_imgs] [--threads 2] [--repeat 3]

Restoration is timed for a tiny and a full-size (512, v1.3/v1.4 layout) GFPGANv1Clean with random
weights (speed does not depend on the values), all faces of an image in one batch. Prints a Markdown
table (median over `--repeat` runs; wall and process CPU time, since the machine may be shared).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfpgan.archs import build_network  # noqa: E402
from gfpgan.face.alignment import estimate_alignment, inverse_affine, warp_face  # noqa: E402
from gfpgan.face.detection import DlibFaceDetector  # noqa: E402
from gfpgan.face.paste import paste_face  # noqa: E402
from gfpgan.restorer import GFPGANer, arch_options  # noqa: E402

TINY = dict(type='GFPGANv1Clean', out_size=32, num_style_feat=32, channel_multiplier=1, narrow=0.125, num_mlp=1,
            different_w=True, sft_half=True, input_is_latent=True)


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds of `fn()` over `repeat` runs, and its last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--images', default=str(Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'whole_imgs'))
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--upscale', type=int, default=2)
    parser.add_argument('--skip_full', action='store_true', help='skip the full-size 512 generator')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)

    files = sorted(p for p in Path(args.images).iterdir() if p.is_file())
    imgs = [cv2.imread(str(p)) for p in files]
    detector = DlibFaceDetector()
    torch.manual_seed(0)
    nets = {'tiny (out 32, narrow 1/8)': build_network(TINY)}
    if not args.skip_full:
        nets['full 512 (v1.3/v1.4 layout)'] = build_network(arch_options('clean'))
    restorers = {name: GFPGANer(None, net=net, upscale=args.upscale, device='cpu', detector=detector)
                 for name, net in nets.items()}

    totals: dict[str, list[float]] = {}
    n_faces = 0

    def add(stage: str, wall: float, cpu: float) -> None:
        acc = totals.setdefault(stage, [0.0, 0.0])
        acc[0] += wall
        acc[1] += cpu

    for img in imgs:
        w, c, faces = timed(lambda img=img: detector.detect(img), args.repeat)
        add('detection (dlib HOG + 68 landmarks)', w, c)
        n_faces += len(faces)
        w, c, crops = timed(lambda faces=faces, img=img: [warp_face(img, estimate_alignment(f.landmarks))
                                                          for f in faces], args.repeat)
        add('alignment (estimate + warp to 512)', w, c)
        for name, restorer in restorers.items():
            reps = 1 if 'full' in name else args.repeat
            w, c, restored = timed(lambda r=restorer, crops=crops: r.restore_faces(crops, weight=1.0), reps)
            add(f'restoration, {name}', w, c)
        mats = [inverse_affine(estimate_alignment(f.landmarks), args.upscale) for f in faces]
        big = cv2.resize(img, None, fx=args.upscale, fy=args.upscale, interpolation=cv2.INTER_LANCZOS4)

        def paste(big=big, restored=restored, mats=mats):
            canvas = big.copy()
            for face, inv in zip(restored, mats):
                paste_face(canvas, face, inv)
            return canvas

        w, c, _ = timed(paste, args.repeat)
        add(f'paste-back (x{args.upscale}, feathered mask)', w, c)
        w, c, _ = timed(lambda img=img: cv2.resize(img, None, fx=args.upscale, fy=args.upscale,
                                                   interpolation=cv2.INTER_LANCZOS4), args.repeat)
        add(f'background x{args.upscale} Lanczos resize (whole image, spread over its faces)', w, c)

    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    print(f'{len(imgs)} images, {n_faces} faces; {platform.processor() or platform.machine()}, '
          f'{args.threads} threads, torch {torch.__version__}, OpenCV {cv2.__version__}, load average {load:.1f}')
    print('\n| stage | ms per face (wall) | ms per face (CPU) |\n|---|---:|---:|')
    for stage, (wall, cpu) in totals.items():
        print(f'| {stage} | {1000 * wall / n_faces:.1f} | {1000 * cpu / n_faces:.1f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
