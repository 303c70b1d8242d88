"""`gfpgan-gan` (or `python -m gfpgan.gan`): train a GAN on a folder of images with one command, then sample it.

    gfpgan-gan train --data ./images --image-size 64                 # DCGAN, no option file needed
    gfpgan-gan train --data data/faces --image-size 256 --model lightweight --amp bf16
    gfpgan-gan train --data_path data/pets --conditional --epochs 200 --batch_size 64 --lr_g 0.0002 \\
        --lr_d 0.0001 --image_size 64 --accumulation_steps 4        # the DCGAN script's flags; class folders
    gfpgan-gan train --name X ... --auto_resume                        # continue from the newest state
    gfpgan-gan generate --name X [--num 64] | interpolate --name X [--gif] | progress --name X

`train` checks the folder first (one line per problem), writes the equivalent option file as
`experiments/<name>/<name>.yml` (repeat or resume it with `gfpgan/train.py -opt ... [--auto_resume]`, or
launch it with torchrun) and runs train.py's pipeline. With `--conditional` the folder is an ImageFolder
layout (`DIR/<class>/*.jpg`) and the class folders are the labels. `--accumulation_steps k` keeps
`--batch_size` per forward pass and steps the optimizers once per k of them (a k times larger batch).
The sampling commands use `models/net_g_latest.pth` (else the newest `net_g_<iter>.pth`) or, with
`--best`, `net_g_best.pth`, and write into `results/<name>/`.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import yaml

from gfpgan.data.folder_check import DataFolderError, check_image_folder, class_of


def network_blocks(model: str, image_size: int, latent_dim: int, base_channels: int, num_classes: int) -> tuple:
    """(network_g, network_d) of `--model` for the image size (and classes, for a conditional DCGAN)."""
    if model == 'lightweight':
        g = dict(type='LightweightGANGenerator', latent_dim=latent_dim, image_size=image_size,
                 base_channels=base_channels)
        d = dict(type='LightweightGANDiscriminator', image_size=image_size, base_channels=base_channels)
        return g, d
    if num_classes:
        return (dict(type='ConditionalDCGANGenerator', num_classes=num_classes, latent_dim=latent_dim,
                     image_size=image_size, base_channels=base_channels),
                dict(type='ConditionalDCGANDiscriminator', num_classes=num_classes, projection=True,
                     image_size=image_size, base_channels=base_channels))
    return (dict(type='DCGANGenerator', latent_dim=latent_dim, image_size=image_size, base_channels=base_channels),
            dict(type='DCGANDiscriminator', image_size=image_size, base_channels=base_channels))


def train_options(args: argparse.Namespace, num_classes: int) -> dict:
    """The option file equivalent to the `train` flags."""
    lightweight = args.model == 'lightweight'
    g, d = network_blocks(args.model, args.image_size, args.latent_dim, args.base_channels, num_classes)
    root = Path(args.data).resolve()
    data = dict(name=root.name or 'images', type='ImageFolderDataset', dataroot=str(root),
                image_size=args.image_size, use_hflip=True, class_labels=bool(num_classes),
                batch_size_per_gpu=args.batch_size * args.accumulation_steps, num_worker_per_gpu=args.workers)
    if args.channels != 3:
        data['channels'] = g['out_channels'] = d['in_channels'] = args.channels
    adam = dict(type='Adam', betas=[0.5, 0.9] if lightweight else [0.5, 0.999])
    train = dict(optim_g=dict(adam, lr=args.lr_g), optim_d=dict(adam, lr=args.lr_d),
                 gan_opt=dict(type='GANLoss', gan_type='hinge' if lightweight or num_classes else 'vanilla'),
                 accumulate_grad_batches=args.accumulation_steps, ema_decay=0.999)
    train.update({'epochs': args.epochs} if args.epochs else {'total_iter': args.iters})
    if lightweight:
        train['diffaug'] = dict(policy='color,translation,cutout', prob=0.5)
    opt = dict(name=args.name, model_type='GANModel', num_gpu=args.num_gpu, manual_seed=args.seed,
               datasets=dict(train=data), network_g=g, network_d=d, train=train,
               val=dict(grids=dict(freq=args.save_every, num=args.num_samples)),
               logger=dict(print_freq=args.print_every, save_checkpoint_freq=args.save_every, use_tb_logger=False))
    if args.amp:
        opt['amp'] = args.amp
    return opt


def run_train(args: argparse.Namespace) -> int:
    from gfpgan.train import train_pipeline
    from gfpgan.utils.checkpoint_io import atomic_write
    from gfpgan.utils.options import OptionError

    if args.conditional and args.model != 'dcgan':
        return _error('--conditional trains a class-conditional DCGAN; use --model dcgan.')
    try:
        paths = check_image_folder(args.data, same_size=False, class_labels=args.conditional)
    except DataFolderError as err:
        return _error(str(err))
    num_classes = len({class_of(p, args.data) for p in paths}) if args.conditional else 0
    opt = train_options(args, num_classes)
    with tempfile.TemporaryDirectory() as tmp:  # train.py copies it into experiments/<name>/
        opt_file = Path(tmp) / f'{args.name}.yml'
        atomic_write(opt_file, lambda t: Path(t).write_text(yaml.safe_dump(opt, sort_keys=False)))
        argv = ['-opt', str(opt_file)] + (['--auto_resume'] if args.auto_resume else [])
        try:
            folder = train_pipeline(args.root, argv)
        except (OptionError, DataFolderError) as err:
            return _error(str(err))
    print(f'Trained {args.name} on {len(paths)} images -> {folder} (options: {Path(folder) / opt_file.name})')
    return 0


def experiment(args: argparse.Namespace) -> tuple[dict, Path]:
    """(option file, checkpoint) of experiment `--name`: best, or latest, else the newest one."""
    from gfpgan.models.gan_sampling import list_generator_checkpoints

    root = Path(args.root) / 'experiments' / args.name
    opt_file = root / f'{args.name}.yml'
    if not opt_file.is_file():
        raise FileNotFoundError(f'{opt_file}: no such option file; is {args.name!r} an experiment trained by '
                                f'gfpgan-gan train (looked under {Path(args.root) / "experiments"})?')
    models = root / 'models'
    if args.best:
        ckpt = models / 'net_g_best.pth'
        if not ckpt.is_file():
            raise FileNotFoundError(f'{ckpt}: no best checkpoint (it needs validation with keep_best); drop --best.')
    else:
        ckpt = models / 'net_g_latest.pth'
        if not ckpt.is_file():
            ckpt = list_generator_checkpoints(models)[-1][1]
    return yaml.safe_load(opt_file.read_text()), ckpt


def _use_ema(ckpt: Path, raw: bool) -> bool:
    """The EMA generator unless --raw or training kept none."""
    from gfpgan.utils.checkpoint_io import load_checkpoint

    return not raw and 'params_ema' in load_checkpoint(ckpt)


def _generator(network_opt: dict, ckpt: Path, raw: bool):
    from gfpgan.models.gan_sampling import load_generator

    return load_generator(network_opt, ckpt, use_ema=_use_ema(ckpt, raw))


def run_sampling(args: argparse.Namespace) -> int:
    from gfpgan.models.gan_sampling import (
        list_generator_checkpoints,
        progress_rows,
        save_gif,
        save_interpolation,
        save_samples,
        seeded_inputs,
    )

    try:
        opt, ckpt = experiment(args)
    except FileNotFoundError as err:
        return _error(str(err))
    out = Path(args.output or Path(args.root) / 'results' / args.name)
    net_opt = opt['network_g']
    if args.command == 'generate':
        path = save_samples(_generator(net_opt, ckpt, args.raw), out, args.num, args.seed, args.nrow, args.separate)
    elif args.command == 'interpolate':
        path = save_interpolation(_generator(net_opt, ckpt, args.raw), out, args.steps, args.seed, gif=args.gif)
    else:
        checkpoints = list_generator_checkpoints(ckpt.parent)
        z, labels = seeded_inputs(_generator(net_opt, checkpoints[0][1], args.raw), args.num, args.seed, net_opt)
        path = out / 'progress.gif'
        save_gif(progress_rows(net_opt, checkpoints, z, _use_ema(checkpoints[0][1], args.raw), labels=labels), path,
                 duration_ms=args.frame_ms)
    print(f'{args.command}: {ckpt.name} -> {path}')
    return 0


def _error(message: str) -> int:
    for line in message.splitlines():
        print(f'gfpgan-gan: error: {line}', file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='gfpgan-gan', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    t = sub.add_parser('train', help='train on a folder of images')
    t.add_argument('--data', '--data_path', required=True, help='image folder (class folders with --conditional)')
    t.add_argument('--image-size', '--image_size', dest='image_size', type=int, required=True,
                   help='side of the square images (resized and centre-cropped)')
    t.add_argument('--model', choices=('dcgan', 'lightweight'), default='dcgan')
    t.add_argument('--conditional', action='store_true', help='class-conditional: the class folders are labels')
    length = t.add_mutually_exclusive_group()
    length.add_argument('--epochs', type=int, help='passes over the data')
    length.add_argument('--iters', type=int, default=None, help='iterations (default 10000)')
    t.add_argument('--batch_size', '--batch-size', type=int, default=64, help='images per forward pass and process')
    t.add_argument('--lr_g', type=float, default=2e-4)
    t.add_argument('--lr_d', type=float, default=2e-4)
    t.add_argument('--accumulation_steps', type=int, default=1, help='forward passes per optimizer step')
    t.add_argument('--latent_dim', type=int, help='default: 100 (dcgan), 256 (lightweight)')
    t.add_argument('--base_channels', type=int, help='width of the networks; default: 64 (dcgan), 16 (lightweight)')
    t.add_argument('--channels', type=int, choices=(1, 3, 4), default=3, help='1 grey, 3 RGB, 4 RGBA')
    t.add_argument('--amp', choices=('bf16', 'fp16'), help='mixed precision (GPU)')
    t.add_argument('--name', default='gan', help='experiment name: experiments/<name>')
    t.add_argument('--num_gpu', default='auto', help="'auto' (default): every visible GPU, else the CPU; 0: CPU")
    t.add_argument('--seed', type=int, default=0)
    t.add_argument('--workers', type=int, default=0, help='data loader workers per process')
    t.add_argument('--save_every', type=int, default=1000, help='checkpoint and sample grid every N iterations')
    t.add_argument('--print_every', type=int, default=100)
    t.add_argument('--num_samples', type=int, default=64, help='images per sample grid')
    t.add_argument('--auto_resume', action='store_true', help='continue from the newest training state')
    for name, helptext in (('generate', 'a grid of samples'), ('interpolate', 'a latent interpolation'),
                           ('progress', 'a GIF of the same samples across checkpoints')):
        s = sub.add_parser(name, help=helptext)
        s.add_argument('--name', required=True, help='experiment name')
        s.add_argument('--best', action='store_true', help='net_g_best.pth instead of the latest checkpoint')
        s.add_argument('--raw', action='store_true', help='the raw generator, not the EMA one')
        s.add_argument('--num', type=int, default=16, help='samples (generate, progress)')
        s.add_argument('--nrow', type=int, default=0)
        s.add_argument('--seed', type=int, default=0)
        s.add_argument('--steps', type=int, default=12, help='interpolation steps')
        s.add_argument('--gif', action='store_true', help='interpolate: also a GIF')
        s.add_argument('--separate', action='store_true', help='generate: also one file per sample')
        s.add_argument('--frame_ms', type=int, default=400, help='progress: milliseconds per frame')
        s.add_argument('-o', '--output', help='output folder (default results/<name>)')
    for s in sub.choices.values():
        s.add_argument('--root', default=os.getcwd(), help='folder holding experiments/ and results/')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from gfpgan.utils.allocator import keep_freed_memory

    args = build_parser().parse_args(argv)
    keep_freed_memory()  # large CPU tensors reuse their pages between calls (gfpgan/utils/allocator.py)
    if args.command == 'train':
        if args.epochs is None and args.iters is None:
            args.iters = 10000
        lightweight = args.model == 'lightweight'
        args.latent_dim = args.latent_dim or (256 if lightweight else 100)
        args.base_channels = args.base_channels or (16 if lightweight else 64)
        if args.num_gpu != 'auto':
            args.num_gpu = int(args.num_gpu)
        return run_train(args)
    return run_sampling(args)


if __name__ == '__main__':
    sys.exit(main())
