"""Restore the faces in an image, a video or a folder of both: `python inference_gfpgan.py -i inputs -o results -v 1.4`.

Writes `cropped_faces/`, `restored_faces/`, `cmp/` (input | restored) and `restored_imgs/` under `-o`;
a video (.mp4, .mov, .mkv, .avi, .webm) becomes `restored_videos/NAME.EXT` (faces tracked and their
landmarks smoothed over time, audio copied) and `restored_videos/NAME.faces.json`.
A file that cannot be processed gets a one-line error naming it and the run goes on; the exit code is
1 when any file failed. `-v` weights are looked up in `--weights_dir`, `$GFPGAN_WEIGHTS_DIR`, upstream's
`experiments/pretrained_models/` and `gfpgan/weights/` (under the working directory, then this checkout),
then `~/.cache/gfpgan`; the one used is printed. Missing ones are downloaded into the first of
`--weights_dir`, `$GFPGAN_WEIGHTS_DIR`, `~/.cache/gfpgan` when the network allows.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from gfpgan.face.weights import locate_weights, weights_dir
from gfpgan.utils.image_io import imread, imwrite

SAFE_SUFFIX = re.compile(r'^[A-Za-z0-9_.-]*$')
COLOR_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')  # --ext auto keeps these


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from gfpgan.bg_upsampler import SR_MODELS
    from gfpgan.restorer import ARCH_TYPES, MODEL_VERSIONS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('-i', '--input', default='inputs/whole_imgs', help='input image or folder')
    p.add_argument('-o', '--output', default='results', help='output folder')
    p.add_argument('-v', '--version', default='1.3', choices=list(MODEL_VERSIONS), help='GFPGAN model version')
    p.add_argument('--model_path', help="local checkpoint, or a release URL looked up like -v's files (overrides -v)")
    p.add_argument('--arch', choices=list(ARCH_TYPES), help="arch of --model_path (default: -v's arch)")
    p.add_argument('--channel_multiplier', type=int, help="channel multiplier (default: -v's)")
    p.add_argument('-s', '--upscale', type=float, default=2, help='final upsampling scale of the whole image')
    p.add_argument('--bg_upsampler', default='none', choices=['none', 'realesrgan', *SR_MODELS],
                   help='background upsampler: realesrgan (RealESRGAN_x2plus/x4plus by -s), a released SR '
                        'network by name, or none (a plain resize)')
    p.add_argument('--bg_model_path', help='local weights file of the --bg_upsampler network')
    p.add_argument('--bg_tile', type=int, default=400, help='tile size of the background upsampler, 0 = no tiles')
    p.add_argument('--suffix', default=None, help='suffix of the restored faces and images')
    p.add_argument('--only_center_face', action='store_true', help='only restore the face nearest the centre')
    p.add_argument('--aligned', action='store_true', help='inputs are aligned face crops')
    p.add_argument('--ext', default='auto', choices=['auto', 'jpg', 'png'],
                   help='image extension: auto keeps the input extension')
    p.add_argument('-w', '--weight', type=float, default=1.0,
                   help='restored share of each face: 1 (default) = network output only, what upstream always '
                        'gave (it ignored -w); 0 = input face; 0.5 = half of each')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 ... (default: cuda when available)')
    p.add_argument('--dtype', default=None, choices=['fp32', 'fp16', 'bf16'], help='generator precision')
    p.add_argument('--bf16', action='store_const', const='bf16', dest='dtype', help='same as --dtype bf16')
    p.add_argument('--compile', action='store_true',
                   help='torch.compile the generator: slow first batch, faster after (see BENCHMARKS.md)')
    p.add_argument('--channels_last', default='auto', choices=['auto', 'on', 'off'],
                   help='NHWC layout for the generator (auto: on for the clean archs)')
    p.add_argument('--weights_dir', default=None,
                   help='weights folder (default $GFPGAN_WEIGHTS_DIR or ~/.cache/gfpgan)')
    p.add_argument('--detector', default='dlib', choices=['dlib', 'retinaface'], help='face detector')
    p.add_argument('--parse', action='store_true',
                   help='blend with a face-parsing mask (needs parsing_parsenet.pth) instead of a feathered square')
    p.add_argument('--max_megapixels', type=float, default=100.0, help='refuse images whose output is larger')
    video = p.add_argument_group('video inputs (see gfpgan/video)')
    video.add_argument('--landmark_noise', type=float, default=0.5, help="smoother: detector jitter, px (0.5)")
    video.add_argument('--motion_noise', type=float, default=0.02,
                       help='smoother: face acceleration, px/frame^2; smaller smooths more, 0 = raw detections')
    video.add_argument('--iou_threshold', type=float, default=0.3, help='box overlap that continues a track')
    video.add_argument('--max_missed', type=int, default=3, help='undetected frames a track bridges')
    video.add_argument('--scene_cut', type=float, default=0.5,
                       help='colour-histogram change (0-1) that counts as a scene cut and resets the tracks')
    video.add_argument('--crf', type=int, default=18, help='H.264 quality of the output video (lower = better)')
    video.add_argument('--preset', default='medium', help='x264 speed preset of the output video')
    args = p.parse_args(argv)
    if args.suffix is not None and (not SAFE_SUFFIX.match(args.suffix) or '..' in args.suffix):
        p.error(f'--suffix {args.suffix!r} may only hold letters, digits, "_", "-" and single dots.')
    if args.upscale <= 0:
        p.error(f'-s/--upscale must be > 0, got {args.upscale}.')
    if not 0 <= args.weight <= 1:
        p.error(f'-w/--weight must be in [0, 1], got {args.weight}.')
    return args


def list_inputs(path: Path) -> list[Path]:
    """The input file, or every visible regular file of the folder (sorted; non-images fail one by one)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith('.'))
    raise FileNotFoundError(f'Input {path} does not exist.')


def output_stems(files: list[Path]) -> dict[Path, str]:
    """Output base name per input: the stem, or stem_ext when two inputs share a stem (a.jpg, a.png)."""
    counts = Counter(f.stem for f in files)
    return {f: (f.stem if counts[f.stem] == 1 else f'{f.stem}_{f.suffix.lstrip(".")}') for f in files}


def inside(root: Path, *parts: str) -> Path:
    """`root / parts`, refusing any name that would land outside `root`."""
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f'Output name {"/".join(parts)!r} would escape the output folder {root}.')
    return path


def resolve_model(args: argparse.Namespace) -> tuple[str, str, int]:
    from gfpgan.restorer import MODEL_VERSIONS

    arch, channel_multiplier, url = MODEL_VERSIONS[args.version]
    arch = args.arch or arch
    channel_multiplier = args.channel_multiplier or channel_multiplier
    if args.model_path:
        if args.model_path.startswith(('https://', 'http://')):  # a release URL: looked up like -v's
            url = args.model_path
        elif Path(args.model_path).is_file():
            return args.model_path, arch, channel_multiplier
        else:
            raise FileNotFoundError(f'--model_path {args.model_path} does not exist.')
    path, where = locate_weights(url, args.weights_dir)
    print(f'weights: {path} ({where})', file=sys.stderr)
    return path, arch, channel_multiplier


def build_bg_upsampler(args: argparse.Namespace):
    if args.bg_upsampler == 'none':
        return None
    from gfpgan.bg_upsampler import BackgroundUpsampler

    return BackgroundUpsampler.from_release(args.bg_upsampler, args.bg_model_path, upscale=args.upscale,
                                            weights_dir=args.weights_dir, tile=args.bg_tile, device=args.device,
                                            dtype=args.dtype)


def restore_video(restorer, args, src: Path, stem: str, out_root: Path):
    """Restore one video into `restored_videos/`; returns the `VideoResult`."""
    if args.aligned:
        raise ValueError(f'{src}: --aligned takes aligned face crops, not videos; run videos without it.')
    suffix = f'_{args.suffix}' if args.suffix else ''
    dst = inside(out_root, 'restored_videos', f'{stem}{suffix}{src.suffix.lower()}')
    return restorer.enhance_video(src, dst, weight=args.weight, only_center_face=args.only_center_face,
                                  progress=True, landmark_noise=args.landmark_noise,
                                  motion_noise=args.motion_noise, iou_threshold=args.iou_threshold,
                                  max_missed=args.max_missed, scene_cut=args.scene_cut, crf=args.crf,
                                  preset=args.preset)


def restore_one(restorer, args, src: Path, stem: str, out_root: Path) -> int:
    """Restore one file and write its outputs; returns the number of faces restored."""
    img = imread(src)
    cropped, restored, restored_img = restorer.enhance(img, has_aligned=args.aligned,
                                                       only_center_face=args.only_center_face,
                                                       paste_back=True, weight=args.weight)
    suffix = f'_{args.suffix}' if args.suffix else ''
    for idx, (crop, face) in enumerate(zip(cropped, restored)):
        imwrite(crop, inside(out_root, 'cropped_faces', f'{stem}_{idx:02d}.png'))
        imwrite(face, inside(out_root, 'restored_faces', f'{stem}_{idx:02d}{suffix}.png'))
        imwrite(np.concatenate([crop, face], axis=1), inside(out_root, 'cmp', f'{stem}_{idx:02d}.png'))
    if restored_img is not None:
        ext = src.suffix.lower() if args.ext == 'auto' else f'.{args.ext}'
        if ext not in COLOR_EXTENSIONS:  # e.g. .pgm (gray only) or no extension
            ext = '.png'
        imwrite(restored_img, inside(out_root, 'restored_imgs', f'{stem}{suffix}{ext}'))
    return len(restored)


def report_video(src: Path, result) -> None:
    """One line per restored video, plus notes for a clip without faces or with a variable frame rate."""
    from tqdm import tqdm

    tqdm.write(f'{src}: {result.frames} frames at {result.fps:.3f} fps, {result.faces} faces in {result.tracks} '
               f'tracks, {result.scene_cuts} scene cuts, {result.frames_per_second:.2f} frames/s -> {result.dst}',
               file=sys.stderr)
    if result.faces == 0:
        done = 'copied it unchanged' if result.copied else 'wrote the upscaled frames only'
        tqdm.write(f'note: no face found in {src}; {done}', file=sys.stderr)
    if result.variable_frame_rate:
        tqdm.write(f'note: {src} has a variable frame rate; every frame kept its own timestamp', file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from gfpgan.restorer import GFPGANer
    from gfpgan.utils.allocator import keep_freed_memory
    from gfpgan.video.io import VIDEO_EXTENSIONS

    keep_freed_memory()  # large CPU tensors reuse their pages between faces (gfpgan/utils/allocator.py)
    try:
        files = list_inputs(Path(args.input))
        model_path, arch, channel_multiplier = resolve_model(args)
        restorer = GFPGANer(model_path, upscale=args.upscale, arch=arch, channel_multiplier=channel_multiplier,
                            bg_upsampler=build_bg_upsampler(args), device=args.device, dtype=args.dtype,
                            detector=args.detector, weights_dir=str(weights_dir(args.weights_dir)),
                            max_output_megapixels=args.max_megapixels, use_parse=args.parse,
                            channels_last={'auto': None, 'on': True, 'off': False}[args.channels_last],
                            compile=args.compile)
        if not args.aligned:
            restorer.face_helper.detector  # noqa: B018 - build it now: a missing detector file fails once, here
    except (OSError, ValueError, RuntimeError, KeyError, ImportError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    out_root = Path(args.output).resolve()
    stems = output_stems(files)
    failures, faceless, n_faces = [], [], 0
    n_videos = sum(f.suffix.lower() in VIDEO_EXTENSIONS for f in files)
    start = time.perf_counter()
    for src in tqdm(files, desc='Restoring', unit='file', file=sys.stderr):
        is_video = src.suffix.lower() in VIDEO_EXTENSIONS
        try:
            if is_video:
                result = restore_video(restorer, args, src, stems[src], out_root)
                found = result.faces
            else:
                found = restore_one(restorer, args, src, stems[src], out_root)
        except Exception as err:  # one bad file (even a MemoryError) never stops the run
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            if str(src) not in message:
                message = f'{src}: {message}'
            failures.append(message)
            tqdm.write(f'error: {message}', file=sys.stderr)
            continue
        n_faces += found
        if is_video:
            report_video(src, result)
        if found == 0 and not args.aligned:
            faceless.append(src)
            if not is_video:
                tqdm.write(f'note: no face found in {src}; wrote the upscaled image only', file=sys.stderr)
    seconds = time.perf_counter() - start
    per_face = f'{seconds / n_faces:.3f} s per face' if n_faces else 'no faces'
    videos = f', {n_videos} videos' if n_videos else ''
    print(f'Done: {len(files) - n_videos} images{videos}, {n_faces} faces restored, {len(faceless)} without a face, '
          f'{len(failures)} failed; {seconds:.1f} s ({per_face}). Results in {out_root}')
    for message in failures:
        print(f'  failed: {message}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
