"""Score a folder of restored faces: `gfpgan-evaluate -i RESTORED -r REFERENCE -o REPORT_DIR --metrics ...`.

Files pair by relative path without extension (`a/b.png` restored <-> `a/b.jpg` reference). A file
without a partner, one that cannot be read, or a pair of different sizes is named on one line and
skipped for what needs the pair (no-reference metrics still score a lone restored image); the exit
status is 1 when anything was skipped, 2 on a usage error, else 0. Under torchrun every rank scores
every world_size-th pair and rank 0 writes the report, with the numbers of a single process.

Writes, each atomically: `metrics.csv` (one row per image), `summary.md` (the mean of each metric
with whether higher or lower is better, FID, and the problems) and `grid.png` (the first N pairs:
input if `--input` is given | restored | reference, captioned with their numbers).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

METRICS = {  # command-line name -> registered metric (its direction comes from the registry)
    'psnr': 'calculate_psnr', 'ssim': 'calculate_ssim', 'lpips': 'calculate_lpips', 'niqe': 'calculate_niqe',
    'fid': 'calculate_fid', 'identity': 'calculate_identity_distance', 'lmd': 'calculate_lmd',
}
PER_IMAGE = ('psnr', 'ssim', 'lpips', 'niqe', 'identity', 'lmd')
FULL_REFERENCE = ('psnr', 'ssim', 'lpips', 'identity', 'lmd')
ARCFACE = {'type': 'ResNetArcFace', 'block': 'IRBlock', 'layers': [2, 2, 2, 2], 'use_se': False}


class UsageError(Exception):
    """A bad flag, folder or weights file: reported in one line, exit status 2."""


@dataclass
class Item:
    """One restored image and its partners; `values` are filled by the metrics."""

    name: str
    restored: str
    reference: str | None
    lq: str | None = None
    readable: bool = True
    bad_reference: str | None = None  # the partner file that could not be read
    values: dict[str, float] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog='gfpgan-evaluate', description=__doc__.split('\n\n')[0])
    p.add_argument('-i', '--restored', required=True, help='folder of restored images')
    p.add_argument('-r', '--reference', help='folder of reference (ground-truth) images, paired by name')
    p.add_argument('-o', '--output', required=True, help='report folder (metrics.csv, summary.md, grid.png)')
    p.add_argument('--metrics', help=f'comma-separated, from {",".join(METRICS)} (default: psnr,ssim,lpips,niqe; '
                   'niqe without -r)')
    p.add_argument('--input', dest='lq', help='folder of the degraded inputs, shown in the grid only')
    p.add_argument('--crop-border', type=int, default=0, help='pixels cut from each edge for psnr/ssim/lpips/niqe')
    p.add_argument('--test-y-channel', action='store_true', help='psnr/ssim on the Y channel')
    p.add_argument('--lpips-net', default='vgg', choices=('vgg', 'alex'))
    p.add_argument('--lpips-version', default='0.1', choices=('0.1', '0.0'))
    p.add_argument('--lpips-backbone', help="torchvision-format vgg16/alexnet weights (default: torch's hub cache)")
    p.add_argument('--identity-weights', help='ArcFace weights for identity (e.g. arcface_resnet18.pth)')
    p.add_argument('--identity-network', default=json.dumps(ARCFACE),
                   help='the embedding network as a JSON option dict (default: %(default)s)')
    p.add_argument('--identity-param-key', default='params_ema')
    p.add_argument('--fid-stats', help='.npz with mu/sigma of the real images (instead of the reference folder)')
    p.add_argument('--fid-source', default='auto', help="FID network: auto, fid_helper, pytorch_fid")
    p.add_argument('--fid-weights', help='pt_inception-2015-12-05-6726825d.pth for --fid-source pytorch_fid')
    p.add_argument('--fid-cache-dir', help='cache the reference folder\'s FID statistics here')
    p.add_argument('--grid', type=int, default=8, help='pairs shown in grid.png (0: no grid)')
    p.add_argument('--grid-size', type=int, default=256, help='tile size in grid.png')
    p.add_argument('--batch-size', type=int, default=8, help='images per batch for lpips/identity/fid')
    p.add_argument('--device', default='auto', help="'auto' (cuda when present), 'cpu', 'cuda', ...")
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = p.parse_args(argv)
    default = 'psnr,ssim,lpips,niqe' if args.reference else 'niqe'
    args.metrics = [m.strip() for m in (args.metrics or default).split(',') if m.strip()]
    unknown = [m for m in args.metrics if m not in METRICS]
    if unknown or not args.metrics:
        p.error(f'unknown metric(s) {", ".join(unknown) or "(none given)"}; choose from {", ".join(METRICS)}')
    paired = [m for m in args.metrics if m in FULL_REFERENCE]
    if paired and not args.reference:
        p.error(f'{", ".join(paired)} compare with a reference: give -r REFERENCE (without it: niqe, and fid with '
                '--fid-stats)')
    return args


def _index(folder: str | None) -> dict[str, str]:
    """{relative path without extension: file} of the images under `folder` (recursive)."""
    from gfpgan.utils.image_io import is_image_file

    if folder is None:
        return {}
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f'folder not found: {folder}')
    return {str(p.relative_to(root).with_suffix('')): str(p) for p in sorted(root.rglob('*'))
            if p.is_file() and is_image_file(p)}


Problem = tuple[str, bool]  # (one line naming the file and what happened, whether something was skipped)


def pair_files(args: argparse.Namespace) -> tuple[list[Item], list[Problem]]:
    """Items sorted by name, and one problem per reference that has no restored partner."""
    restored, reference, lq = _index(args.restored), _index(args.reference), _index(args.lq)
    if not restored:
        raise UsageError(f'no images in {args.restored}')
    items = [Item(n, p, reference.get(n), lq.get(n)) for n, p in sorted(restored.items())]
    problems = []
    if args.reference is not None:
        problems += [(f'{reference[n]}: no restored image of this name in {args.restored}; skipped', True)
                     for n in sorted(set(reference) - set(restored))]
    return items, problems


def _device(name: str) -> torch.device:
    if name == 'auto':
        return torch.device('cuda', torch.cuda.current_device()) if torch.cuda.is_available() else torch.device('cpu')
    return torch.device(name)


class Scorer:
    """The metrics of one run, built once; `score(chunks)` fills `item.values` and returns the problems."""

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        from gfpgan.metrics import METRIC_REGISTRY

        self.args, self.device = args, device
        self.fns = {m: METRIC_REGISTRY.get(METRICS[m]) for m in args.metrics}
        self.id_net = None
        if 'identity' in args.metrics:
            from gfpgan.archs.identity_embedding import build_embedding_network

            if not args.identity_weights:
                raise UsageError('identity needs --identity-weights (ArcFace weights, e.g. arcface_resnet18.pth)')
            try:
                network = json.loads(args.identity_network)
            except json.JSONDecodeError as err:
                raise UsageError(f'--identity-network is not JSON: {err}') from err
            try:
                self.id_net = build_embedding_network(network, args.identity_weights, args.identity_param_key)
            except (FileNotFoundError, KeyError, RuntimeError) as err:
                raise UsageError(f'identity network: {err}') from err
            self.id_net.to(device)
        if 'lmd' in args.metrics:
            from gfpgan.metrics.landmark_metric import landmark_detector

            try:
                landmark_detector()
            except (ImportError, FileNotFoundError) as err:
                raise UsageError(f'lmd: {err}') from err
        if 'lpips' in args.metrics:
            from gfpgan.metrics.lpips_metric import build_lpips

            try:
                build_lpips(args.lpips_net, args.lpips_version, args.lpips_backbone, device)
            except (FileNotFoundError, ImportError, KeyError, ValueError) as err:
                raise UsageError(f'lpips: {err}') from err

    def _pixel_metrics(self, item: Item, img: np.ndarray, ref: np.ndarray | None,
                       landmark_ref: np.ndarray | None) -> list[Problem]:
        """The per-image numpy metrics; one that cannot score this image (e.g. NIQE on a tiny one) is left out.

        `landmark_ref` may differ in size from `img` (LMD measures in the reference's pixels); `ref` may not.
        """
        a, problems = self.args, []
        calls = {'niqe': lambda: self.fns['niqe'](img, crop_border=a.crop_border)}
        if ref is not None:
            for m in ('psnr', 'ssim'):
                calls[m] = lambda m=m: self.fns[m](img, ref, crop_border=a.crop_border, test_y_channel=a.test_y_channel)
        if landmark_ref is not None:
            calls['lmd'] = lambda: self.fns['lmd'](img, landmark_ref)
        for m, call in calls.items():
            if m in self.fns:
                try:
                    item.values[m] = call()
                except ValueError as err:
                    problems.append((f'{item.restored}: {m} left out: {err}', True))
        return problems

    def _network_metrics(self, batch: list[tuple[Item, np.ndarray, np.ndarray]]) -> None:
        from gfpgan.metrics.identity_metric import identity_distance_pt
        from gfpgan.metrics.lpips_metric import calculate_lpips_pt

        def rgb(imgs: list[np.ndarray]) -> torch.Tensor:
            x = np.stack([i[:, :, ::-1] for i in imgs]).astype(np.float32) / np.float32(255.0)
            return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(self.device)

        x, y = rgb([b[1] for b in batch]), rgb([b[2] for b in batch])
        a = self.args
        if 'lpips' in self.fns:
            values = calculate_lpips_pt(x, y, a.crop_border, a.lpips_net, a.lpips_version, a.lpips_backbone)
            for (item, _, _), v in zip(batch, values.tolist()):
                item.values['lpips'] = v
        if self.id_net is not None:
            values = identity_distance_pt(x * 2 - 1, y * 2 - 1, self.id_net)
            for (item, _, _), v in zip(batch, values.tolist()):
                item.values['identity'] = v

    def score(self, chunks: list[list[Item]], progress: bool) -> list[Problem]:
        """Score chunk by chunk; a network batch never spans two chunks, so its contents (and float
        rounding) do not depend on how chunks are spread over ranks."""
        from tqdm import tqdm

        from gfpgan.utils.image_io import ImageReadError, imread

        problems: list[Problem] = []
        batch: list[tuple[Item, np.ndarray, np.ndarray]] = []
        needs_pair = any(m in self.fns for m in FULL_REFERENCE)

        def flush() -> None:
            if batch:
                self._network_metrics(batch)
                batch.clear()

        bar = tqdm(total=sum(map(len, chunks)), desc='Evaluate', unit='img', disable=not progress)
        for item in (it for chunk in chunks for it in [*chunk, None]):
            if item is None:  # end of a chunk
                flush()
                continue
            bar.update()
            try:
                img = imread(item.restored)
            except ImageReadError as err:
                problems.append((f'{str(err).rstrip(".")}; skipped', True))
                item.readable = False
                continue
            if _is_gray(img):
                problems.append((f'{item.restored}: grayscale image; scored as three equal channels', False))
            ref = None
            if item.reference is not None:
                try:
                    ref = imread(item.reference)
                except ImageReadError as err:
                    problems.append((f'{str(err).rstrip(".")}; {item.name} scored without a reference', True))
                    item.bad_reference, item.reference = item.reference, None
            elif self.args.reference is not None and needs_pair:
                problems.append((f'{item.restored}: no reference named {item.name}.* in {self.args.reference}; '
                                 'scored without a reference', True))
            landmark_ref = ref
            if ref is not None and ref.shape != img.shape:
                problems.append((f'{item.restored}: size {img.shape[1]}x{img.shape[0]} differs from its reference '
                                 f'{item.reference} ({ref.shape[1]}x{ref.shape[0]}); only niqe and lmd scored', True))
                ref = None
            problems += self._pixel_metrics(item, img, ref, landmark_ref)
            if ref is not None and (self.id_net is not None or 'lpips' in self.fns):
                if batch and batch[0][1].shape != img.shape:
                    flush()
                batch.append((item, img, ref))
                if len(batch) >= self.args.batch_size:
                    flush()
        bar.close()
        return problems


def _is_gray(img: np.ndarray) -> bool:
    return bool((img[:, :, 0] == img[:, :, 1]).all() and (img[:, :, 1] == img[:, :, 2]).all())


def compute_fid(args: argparse.Namespace, items: list[Item],
                device: torch.device) -> tuple[float | None, list[Problem]]:
    """FID of the readable restored images against `--fid-stats` or the reference folder (every rank calls it)."""
    from gfpgan.metrics import fid_metric as fm

    restored = [it.restored for it in items if it.readable]
    if len(restored) < 2:
        return None, [(f'fid: needs at least 2 readable restored images, got {len(restored)}; left out', True)]
    try:
        extractor = fm.build_fid_extractor(args.fid_source, args.fid_weights, device)
    except (RuntimeError, ValueError, FileNotFoundError) as err:
        raise UsageError(f'fid: {err}') from err
    if args.fid_stats:
        if not os.path.isfile(args.fid_stats):
            raise UsageError(f'--fid-stats file not found: {args.fid_stats}')
        with np.load(args.fid_stats) as data:
            if 'mu' not in data or 'sigma' not in data:
                raise UsageError(f'{args.fid_stats} has no mu/sigma arrays (keys: {", ".join(data.files)})')
            mu_ref, sigma_ref = data['mu'], data['sigma']
    elif args.reference is not None:
        mu_ref, sigma_ref, problems = _reference_stats(args, items, extractor)
    else:
        raise UsageError('fid needs the real side: -r REFERENCE or --fid-stats STATS.npz')
    mu, sigma = fm.compute_stats(restored, extractor, args.batch_size).mean_cov()
    return fm.calculate_fid(mu, sigma, mu_ref, sigma_ref), problems if not args.fid_stats else []


def _reference_stats(args: argparse.Namespace, items: list[Item], extractor) -> tuple[np.ndarray, np.ndarray,
                                                                                       list[Problem]]:
    """FID statistics of the reference folder's readable images (cached when all of them are readable).

    Every rank must agree on the file list before the sharded pass (a rank that failed to read a file
    would leave the others waiting), so unreadable files are found first: the paired ones were read
    while scoring, the unpaired ones are tried here.
    """
    from gfpgan.metrics import fid_metric as fm
    from gfpgan.utils.image_io import ImageReadError, imread

    paths = fm.list_images(args.reference)
    bad = {it.bad_reference for it in items if it.bad_reference}
    seen = {it.reference for it in items if it.reference} | bad
    problems = []
    for p in paths:
        if p not in seen:
            try:
                imread(p)
            except ImageReadError as err:
                bad.add(p)
                problems.append((f'{str(err).rstrip(".")}; left out of the FID reference set', True))
    if not bad:
        return (*fm.reference_stats(args.reference, extractor, args.fid_cache_dir, args.batch_size), problems)
    mu, sigma = fm.compute_stats([p for p in paths if p not in bad], extractor, args.batch_size).mean_cov()
    return mu, sigma, problems


def _gather(items: list[Item], problems: list[Problem]) -> tuple[list[Item], list[Problem]]:
    """Every rank's items and problem lines, on every rank, in name order (a no-op in one process)."""
    from gfpgan.utils.dist import get_dist_info

    world = get_dist_info()[1]
    if world == 1:
        return items, problems
    import torch.distributed as dist

    gathered: list = [None] * world
    dist.all_gather_object(gathered, (items, problems))
    all_items = sorted((it for part, _ in gathered for it in part), key=lambda it: it.name)
    return all_items, [line for _, part in gathered for line in part]


def _fmt(v: float) -> str:
    return f'{v:.8g}'


def write_report(out: Path, items: list[Item], metrics: list[str], fid: float | None, problems: list[Problem],
                 grid: int, grid_size: int) -> None:
    from gfpgan.metrics import METRIC_REGISTRY
    from gfpgan.utils.checkpoint_io import atomic_write

    cols = [m for m in metrics if m in PER_IMAGE]
    rows = ['name,restored,reference,' + ','.join(cols)]
    for it in items:
        cells = [_fmt(it.values[m]) if m in it.values else '' for m in cols]
        rows.append(','.join([_csv(it.name), _csv(it.restored), _csv(it.reference or ''), *cells]))
    md = ['# Evaluation', '', '| metric | mean | images | better |', '|---|---|---|---|']
    for m in cols:
        vals = [it.values[m] for it in items if m in it.values]
        mean = _fmt(math.fsum(vals) / len(vals)) if vals else 'n/a'
        md.append(f'| {m} | {mean} | {len(vals)} | {METRIC_REGISTRY.meta(METRICS[m]).get("better", "?")} |')
    if 'fid' in metrics:
        n = sum(it.readable for it in items)
        md.append(f'| fid | {_fmt(fid) if fid is not None else "n/a"} | {n} | '
                  f'{METRIC_REGISTRY.meta("calculate_fid")["better"]} |')
    md += ['', f'{len(items)} restored files; {len(problems)} problem(s).']
    if problems:
        md += ['', '## Problems', ''] + [f'- {line}' for line, _ in problems]
    for name, lines in (('metrics.csv', rows), ('summary.md', md)):
        atomic_write(out / name, lambda tmp, lines=lines: Path(tmp).write_text('\n'.join(lines) + '\n'))
    shown = [it for it in items if it.readable and it.reference is not None][:grid]
    if shown:
        from gfpgan.utils.image_io import imwrite

        imwrite(make_grid(shown, cols, grid_size), out / 'grid.png')


def _csv(text: str) -> str:
    return f'"{text}"' if any(c in text for c in ',"\n') else text


def make_grid(items: list[Item], cols: list[str], size: int) -> np.ndarray:
    """One row per item: [input |] restored | reference tiles, with the item's numbers under them."""
    from gfpgan.utils.image_io import ImageReadError, imread

    with_lq = any(it.lq for it in items)
    caption_h = 22
    rows = []
    for it in items:
        tiles = []
        for path in ([it.lq] if with_lq else []) + [it.restored, it.reference]:
            try:
                tile = cv2.resize(imread(path), (size, size), interpolation=cv2.INTER_AREA) if path else None
            except ImageReadError:
                tile = None
            tiles.append(tile if tile is not None else np.zeros((size, size, 3), np.uint8))
        row = np.concatenate(tiles, axis=1)
        caption = np.full((caption_h, row.shape[1], 3), 255, np.uint8)
        text = it.name + '  ' + '  '.join(f'{m} {it.values[m]:.4g}' for m in cols if m in it.values)
        cv2.putText(caption, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate([row, caption], axis=0))
    return np.concatenate(rows, axis=0)


def evaluate(args: argparse.Namespace) -> int:
    """Run the evaluation (all ranks); return the exit status."""
    from gfpgan.utils.dist import get_dist_info, init_dist, is_main_process

    if int(os.environ.get('WORLD_SIZE', '1')) > 1:
        init_dist()
    rank, world = get_dist_info()
    device = _device(args.device)
    items, problems = pair_files(args)
    scorer = Scorer(args, device)
    # chunks of batch_size consecutive pairs, dealt round-robin: every network batch holds the same
    # images whatever the number of ranks, so the numbers equal a single process's
    chunks = [items[i:i + args.batch_size] for i in range(0, len(items), args.batch_size)][rank::world]
    problems_mine = scorer.score(chunks, progress=is_main_process() and not args.no_progress)
    items, more = _gather([it for chunk in chunks for it in chunk], problems_mine)
    problems += sorted(more)  # in path order, whichever rank met them
    fid = None
    if 'fid' in args.metrics:
        fid, fid_problems = compute_fid(args, items, device)
        problems += fid_problems
    if is_main_process():
        write_report(Path(args.output), items, args.metrics, fid, problems, args.grid, args.grid_size)
        for line, _ in problems:
            print(line, file=sys.stderr, flush=True)
        summary = ', '.join(f'{m} {_mean(items, m)}' for m in args.metrics if m in PER_IMAGE)
        print(f'{len(items)} images scored: {summary}{f", fid {fid:.4f}" if fid is not None else ""}. '
              f'Report: {args.output}', flush=True)
    return 1 if any(skipped for _, skipped in problems) else 0


def _mean(items: list[Item], m: str) -> str:
    vals = [it.values[m] for it in items if m in it.values]
    return f'{math.fsum(vals) / len(vals):.4f}' if vals else 'n/a'


def main(argv: Sequence[str] | None = None) -> int:
    from gfpgan.utils.dist import shutdown_dist

    args = parse_args(argv)
    ok = False
    try:
        status = evaluate(args)
        ok = True
        return status
    except UsageError as err:
        print(f'gfpgan-evaluate: error: {err}', file=sys.stderr, flush=True)
        return 2
    finally:
        shutdown_dist(synchronize=ok)


if __name__ == '__main__':
    sys.exit(main())
