"""Super-resolve an image or a folder: `python scripts/inference_sr.py -i inputs -o results -s 4 --tile 400`.

`-n` names a released network (default RealESRGAN_x4plus; see `gfpgan.bg_upsampler.SR_MODELS`), whose
weights come from `--model_path`, else the weights folder (`--weights_dir`, `$GFPGAN_WEIGHTS_DIR`,
`~/.cache/gfpgan`; downloaded there once when the network allows). `--net_opt` instead gives the
network config of your own checkpoint as YAML, e.g. `{type: SRVGGNetCompact, num_feat: 32, upscale: 4}`.
Outputs are `<output>/<name>_<suffix>.<ext>`, `-s` times the input size (network scale, then a Lanczos
resize for other factors). A file that fails is reported on one line and the run goes on; the exit
code is 1 when any file failed, 2 when nothing could start.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time
from pathlib import Path

if __package__ in (None, ''):  # run as a script: make the repo importable
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import yaml  # noqa: E402

from gfpgan.bg_upsampler import DTYPES, SR_MODELS, BackgroundUpsampler  # noqa: E402
from gfpgan.utils.image_io import imread, imwrite  # noqa: E402
from inference_gfpgan import COLOR_EXTENSIONS, SAFE_SUFFIX, list_inputs, output_stems  # noqa: E402  (one folder walk for both)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('-i', '--input', default='inputs', help='input image or folder')
    p.add_argument('-o', '--output', default='results', help='output folder')
    p.add_argument('-n', '--model_name', default='RealESRGAN_x4plus', choices=list(SR_MODELS),
                   help='released network (ignored with --net_opt)')
    p.add_argument('--model_path', help='local weights file (default: the release file of -n)')
    p.add_argument('--net_opt', help='network config of --model_path as YAML: a registered arch `type` and its '
                                     'options')
    p.add_argument('--param_key', default='params_ema', help="checkpoint entry with --net_opt (falls back to 'params')")
    p.add_argument('-s', '--outscale', type=float, default=4, help='final scale of the output')
    p.add_argument('-t', '--tile', type=int, default=0, help='tile size in input pixels, 0 = whole image at once')
    p.add_argument('--tile_pad', type=int, default=10, help='context pixels around each tile')
    p.add_argument('--pre_pad', type=int, default=0, help='reflection padding at the bottom/right edges')
    p.add_argument('--suffix', default='out', help='suffix of the output names')
    p.add_argument('--ext', default='auto', choices=['auto', 'jpg', 'png'], help='auto keeps the input extension')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 ... (default: cuda when available)')
    p.add_argument('--dtype', default=None, choices=list(DTYPES), help='precision on CUDA (default fp16; CPU: fp32)')
    p.add_argument('--fp32', action='store_const', const='fp32', dest='dtype', help='same as --dtype fp32')
    p.add_argument('--weights_dir', default=None,
                   help='weights folder (default $GFPGAN_WEIGHTS_DIR or ~/.cache/gfpgan)')
    args = p.parse_args(argv)
    if args.outscale <= 0:
        p.error(f'-s/--outscale must be > 0, got {args.outscale}.')
    if args.tile < 0 or args.tile_pad < 0 or args.pre_pad < 0:
        p.error('--tile, --tile_pad and --pre_pad must be >= 0.')
    if not SAFE_SUFFIX.match(args.suffix) or '..' in args.suffix:
        p.error(f'--suffix {args.suffix!r} may only hold letters, digits, "_", "-" and single dots.')
    if args.net_opt and not args.model_path:
        p.error('--net_opt describes a checkpoint: give it with --model_path.')
    return args


def build_upsampler(args: argparse.Namespace) -> BackgroundUpsampler:
    common = dict(tile=args.tile, tile_pad=args.tile_pad, pre_pad=args.pre_pad, device=args.device,
                  dtype=args.dtype or 'fp16')
    if args.net_opt:
        net_opt = yaml.safe_load(args.net_opt)
        if not isinstance(net_opt, dict) or 'type' not in net_opt:
            raise ValueError(f"--net_opt must be a mapping with a 'type', got {args.net_opt!r}.")
        if not Path(args.model_path).is_file():
            raise FileNotFoundError(f'--model_path {args.model_path} does not exist.')
        return BackgroundUpsampler(args.model_path, net_opt=net_opt, param_key=args.param_key, **common)
    return BackgroundUpsampler.from_release(args.model_name, args.model_path, weights_dir=args.weights_dir, **common)


def output_path(src: Path, stem: str, out_root: Path, args: argparse.Namespace) -> Path:
    """`<stem>_<suffix>.<ext>` (the input extension with `--ext auto`)."""
    ext = src.suffix.lower() if args.ext == 'auto' else f'.{args.ext}'
    if ext not in COLOR_EXTENSIONS:
        ext = '.png'
    return out_root / (f'{stem}_{args.suffix}{ext}' if args.suffix else f'{stem}{ext}')


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        files = list_inputs(Path(args.input))
        upsampler = build_upsampler(args)
    except (OSError, ValueError, RuntimeError, KeyError, yaml.YAMLError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    out_root = Path(args.output).resolve()
    stems = output_stems(files)
    failures = []
    start = time.perf_counter()
    for src in files:
        try:
            out, _ = upsampler.enhance(imread(src), outscale=args.outscale)
            imwrite(out, output_path(src, stems[src], out_root, args))
        except Exception as err:  # one bad file (even out of memory) never stops the run
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            failures.append(message if str(src) in message else f'{src}: {message}')
            print(f'error: {failures[-1]}', file=sys.stderr)
    print(f'Done: {len(files)} images, {len(failures)} failed; {time.perf_counter() - start:.1f} s. '
          f'Results in {out_root}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
