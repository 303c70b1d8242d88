"""Images from a trained unconditional GAN (GANModel checkpoints).

    # 64 samples from the EMA generator as a grid, and as separate files
    python scripts/generate.py sample -opt options/train_dcgan.yml --ckpt experiments/X/models/net_g_latest.pth -n 64
    # an interpolation strip (PNG) and GIF between two random latents
    python scripts/generate.py interp -opt options/train_dcgan.yml --ckpt ... --steps 16 --gif
    # the same latents through every saved checkpoint, one row each
    python scripts/generate.py montage -opt options/train_dcgan.yml --models experiments/X/models

The generator is built from the option file's `network_g`; `--raw` uses `params` instead of `params_ema`.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

if __package__ in (None, ''):  # run as a script: make the repo importable
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

from gfpgan.models.gan_sampling import (  # noqa: E402
    list_generator_checkpoints,
    load_generator,
    progress_montage,
    save_interpolation,
    save_samples,
    seeded_inputs,
)
from gfpgan.utils.image_io import imwrite  # noqa: E402
from gfpgan.utils.options import yaml_load  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('mode', choices=('sample', 'interp', 'montage'))
    parser.add_argument('-opt', required=True, help='option file whose network_g built the checkpoint')
    parser.add_argument('--ckpt', help='net_g_<iter>.pth (sample, interp)')
    parser.add_argument('--models', help='models folder with net_g_<iter>.pth files (montage)')
    parser.add_argument('-o', '--output', default='results/generated', help='output folder')
    parser.add_argument('-n', '--num', type=int, default=16, help='number of images (sample, montage columns)')
    parser.add_argument('--nrow', type=int, default=0, help='images per grid row (default: square-ish)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--raw', action='store_true', help='use the raw generator (params), not the EMA one')
    parser.add_argument('--steps', type=int, default=12, help='interpolation steps')
    parser.add_argument('--lerp', action='store_true', help='linear instead of spherical interpolation')
    parser.add_argument('--gif', action='store_true', help='also write the interpolation as a GIF (needs Pillow)')
    parser.add_argument('--separate', action='store_true', help='also write each sample as its own file')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    opt = yaml_load(args.opt)
    if not isinstance(opt, dict) or 'network_g' not in opt:
        print(f'generate.py: {args.opt} has no network_g block.', file=sys.stderr)
        return 2
    network_opt = opt['network_g']
    use_ema = not args.raw
    if args.mode in ('sample', 'interp') and not args.ckpt:
        print(f'generate.py: {args.mode} needs --ckpt.', file=sys.stderr)
        return 2
    if args.mode == 'montage' and not args.models:
        print('generate.py: montage needs --models (a folder of net_g_<iter>.pth).', file=sys.stderr)
        return 2
    if args.mode == 'montage':
        checkpoints = list_generator_checkpoints(args.models)
        probe = load_generator(network_opt, checkpoints[0][1], use_ema=use_ema)
        z, labels = seeded_inputs(probe, args.num, args.seed, network_opt)
        path = osp.join(args.output, 'progress_montage.png')
        imwrite(progress_montage(network_opt, checkpoints, z, use_ema=use_ema, device=args.device, labels=labels),
                path)
        print(f'{len(checkpoints)} checkpoints -> {path}')
        return 0
    net = load_generator(network_opt, args.ckpt, use_ema=use_ema, device=args.device)
    if args.mode == 'sample':
        save_samples(net, args.output, args.num, args.seed, args.nrow, args.separate)
        print(f'{args.num} samples -> {args.output}')
        return 0
    save_interpolation(net, args.output, args.steps, args.seed, 'lerp' if args.lerp else 'slerp', args.gif)
    print(f'{args.steps}-step interpolation -> {args.output}')
    return 0

if __name__ == '__main__':
    sys.exit(main())
