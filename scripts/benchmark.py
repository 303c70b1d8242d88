"""Benchmarks, one section per concern; each prints a markdown block that can go into BENCHMARKS.md.

    python scripts/benchmark.py                  # all sections (~15 min on 2 busy cores)
    python scripts/benchmark.py --quick          # no torch.compile, batch 1 only, fewer repeats (~4 min)
    python scripts/benchmark.py --list
    python scripts/benchmark.py --sections arch train --threads 2 --append BENCHMARKS.md

A section is a function `(args) -> markdown` registered with `@section(name, help)`; add new ones
(data, inference, training, ...) the same way. Every table reports ratios against a baseline timed
in the same run, because absolute numbers on a shared machine drift from run to run.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmark_data

import torch  # noqa: E402
from benchmark_train import patched  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
V14_ARGS = dict(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None, fix_decoder=False,
                num_mlp=8, input_is_latent=True, different_w=True, narrow=1, sft_half=True)


@dataclass
class Section:
    name: str
    help: str
    run: Callable[[argparse.Namespace], str]


SECTIONS: dict[str, Section] = {}


def section(name: str, help: str) -> Callable:
    """Register a benchmark section under `name` (refuses duplicates)."""

    def deco(fn: Callable[[argparse.Namespace], str]) -> Callable[[argparse.Namespace], str]:
        if name in SECTIONS:
            raise KeyError(f"benchmark section '{name}' is registered twice")
        SECTIONS[name] = Section(name, help, fn)
        return fn

    return deco


def machine_description() -> str:
    """CPU model (lscpu), cores torch uses, torch version, and the GPU when there is one."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(Exception):
        out = subprocess.run(['lscpu'], capture_output=True, text=True, timeout=10).stdout
        cpu = next(line.split(':', 1)[1].strip() for line in out.splitlines() if line.startswith('Model name'))
    text = f'CPU: {cpu}, {torch.get_num_threads()} threads; torch {torch.__version__}'
    if torch.cuda.is_available():
        text += f'; GPU: {torch.cuda.get_device_name()} (CUDA {torch.version.cuda})'
    return text


def time_call(fn: Callable[[], object], warmup: int, iters: int, cuda: bool) -> float:
    """Median seconds per call after `warmup` calls (synchronised on CUDA)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def interleaved_medians(fns: dict[str, Callable[[], object]], warmup: int, rounds: int,
                        cuda: bool = False) -> dict[str, float]:
    """Median seconds per call of each function, timed round-robin so load drift hits all of them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(time_call(fn, 0, 1, cuda))
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


def load_note() -> str:
    with contextlib.suppress(OSError, AttributeError):
        return f'load average {os.getloadavg()[0]:.1f} at the end of the section'
    return 'load average unknown'


RESULTS: dict[str, float] = {}  # numbers one section leaves for a later one (e.g. train it/s for the data ratio)


# ---------------------------------------------------------------- arch: GFPGANv1Clean forward
UPSTREAM_LABEL = 'upstream-structured reference, fp32 eager'
COMPILED_LABEL = 'ours, fp32 channels_last + torch.compile (inductor, frozen weights)'
DEFAULT_LABEL = 'ours, default (`prepare_for_inference`: channels_last + prepacked convs)'


@contextlib.contextmanager
def upstream_structure():
    """Run GFPGANv1Clean the way upstream's code is structured, to time it against ours.

    Upstream builds a per-sample modulated weight and runs a grouped conv (one group per sample),
    upsamples before the 1x1 skip conv, concatenates the SFT halves and adds noise, bias and skips
    out of place; its native upfirdn2d (the discriminator's blur on CPU) folds the channels into the
    batch and runs a single-channel conv. Ours shares one conv across the batch (or folds the style into
    the weight at batch 1), runs the skip conv on the smaller grid, works in place and filters with one
    depthwise conv. Same arithmetic, so the outputs agree to float rounding.
    """
    import torch.nn.functional as F

    from gfpgan.archs import gfpganv1_clean_arch as gfp
    from gfpgan.archs import stylegan2_clean_arch as sg
    from gfpgan.ops import upfirdn2d as fir

    def grouped_modulated_conv(self, x, style, gain=1.0, bias=None):
        b, c = x.shape[:2]
        k, o = self.kernel_size, self.out_channels
        weight = self.weight * self.modulation(style).view(b, 1, c, 1, 1)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4], keepdim=True) + self.eps)
        if self.sample_mode:
            scale = 2 if self.sample_mode == 'upsample' else 0.5
            x = F.interpolate(x, scale_factor=scale, mode='bilinear', align_corners=False)
        out = F.conv2d(x.reshape(1, b * c, *x.shape[2:]), weight.view(b * o, c, k, k), padding=self.padding,
                       groups=b)
        out = out.view(b, o, *out.shape[2:]) * gain
        return out if bias is None else out + bias

    def style_conv(self, x, style, noise=None):
        out = self.modulated_conv(x, style, gain=sg.SQRT2)
        if noise is None:
            noise = out.new_empty(out.shape[0], 1, *out.shape[2:]).normal_()
        return F.leaky_relu(out + self.weight * noise + self.bias, 0.2)

    def to_rgb(self, x, style, skip=None):
        out = self.modulated_conv(x, style) + self.bias
        if skip is not None:
            out = out + (F.interpolate(skip, scale_factor=2, mode='bilinear', align_corners=False)
                         if self.upsample else skip)
        return out

    def resblock(self, x):
        scale = 0.5 if self.mode == 'down' else 2
        out = F.leaky_relu(self.conv1(x), 0.2)
        out = F.interpolate(out, scale_factor=scale, mode='bilinear', align_corners=False)
        out = F.leaky_relu(self.conv2(out), 0.2)
        return out + self.skip(F.interpolate(x, scale_factor=scale, mode='bilinear', align_corners=False))

    def apply_sft(self, out, scale, shift):
        same, sft = out.chunk(2, dim=1)
        return torch.cat([same, sft * scale + shift], dim=1) if self.sft_half else out * scale + shift

    def encoder_conv(self, conv, x):
        return F.leaky_relu(conv(x), 0.2)

    patches = [(sg.CleanModulatedConv2d, 'forward', grouped_modulated_conv),
               (sg.CleanStyleConv, 'forward', style_conv), (sg.CleanToRGB, 'forward', to_rgb),
               (gfp.CleanResBlock, 'forward', resblock), (gfp.StyleGAN2GeneratorCSFT, '_apply_sft', apply_sft),
               (gfp.GFPGANv1Clean, '_encoder_conv', encoder_conv), (fir, 'filter_depthwise', fir.filter_folded)]
    with patched(patches):
        yield


def _image(batch: int, device: str = 'cpu') -> torch.Tensor:
    return (torch.rand(batch, 3, 512, 512, generator=torch.Generator().manual_seed(1)) * 2 - 1).to(device)


@section('arch', 'GFPGANv1Clean-512 (v1.4 arguments) CPU fp32 forward: ours (eager, channels_last, compiled) '
                 'vs an upstream-structured reference')
def bench_arch(args: argparse.Namespace) -> str:
    import copy

    from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
    from gfpgan.inference_speed import prepare_for_inference

    torch.manual_seed(0)
    net = GFPGANv1Clean(**V14_ARGS).eval().requires_grad_(False)
    default = prepare_for_inference(copy.deepcopy(net), device='cpu')  # what GFPGANer / the CLI run
    unpacked = prepare_for_inference(copy.deepcopy(net), device='cpu', prepack=False)
    fast = prepare_for_inference(copy.deepcopy(net), device='cpu', channels_last=True, compile=args.compile)
    kwargs = dict(randomize_noise=False, return_rgb=False)
    rows, notes = [], []
    for batch in args.cpu_batches:
        x = _image(batch)

        def reference(x=x):
            with torch.inference_mode(), upstream_structure():
                return net(x, **kwargs)[0]

        def eager(x=x):
            with torch.inference_mode():
                return net(x, **kwargs)[0]

        fns = {UPSTREAM_LABEL: reference, 'ours, fp32 eager (NCHW)': eager,
               'ours, fp32 channels_last, convs not prepacked': lambda x=x: unpacked(x, **kwargs)[0],
               DEFAULT_LABEL: lambda x=x: default(x, **kwargs)[0]}
        if args.compile and batch == 1:
            start = time.perf_counter()
            fast(x, **kwargs)  # compiles
            notes.append(f'torch.compile took {time.perf_counter() - start:.0f} s (first call, batch {batch}).')
            fns[COMPILED_LABEL] = lambda x=x: fast(x, **kwargs)[0]
        rounds = args.iters if batch == 1 else args.large_batch_iters
        medians = interleaved_medians(fns, args.warmup if batch == 1 else 0, rounds)
        ref_out = reference().float()
        base = medians[UPSTREAM_LABEL]
        for label, fn in fns.items():
            diff = (fn().float() - ref_out).abs().max().item()
            rows.append(('cpu', batch, label, medians[label], base / medians[label], diff))
            print(f'  cpu b{batch} {label}: {medians[label] / batch * 1000:.0f} ms/face', flush=True)
        RESULTS[f'cpu_b{batch}_best_s_per_face'] = min(medians.values()) / batch
    lines = [
        '## Architecture: GFPGANv1Clean-512 forward on CPU (v1.4 arguments, fp32)',
        '',
        f'Machine: {machine_description()}; {load_note()}'
        + ('; this process keeps freed memory (`--keep-freed-memory`, as the inference CLIs run).'
           if args.keep_freed_memory else '; glibc\'s default allocator settings.'),
        f'`python scripts/benchmark.py --sections arch` ({args.warmup} warm-up + {args.iters} timed calls per variant '
        f'at batch 1, {args.large_batch_iters} at larger batches, variants timed round-robin, median; random '
        'weights, `randomize_noise=False`, `return_rgb=False`, inference_mode). Speed-up is against the '
        'upstream-structured reference at the same batch size; max |diff| is the largest output difference '
        'from it. ' + ' '.join(notes),
        '',
        '| device | batch | variant | ms / face | faces / s | speed-up vs reference | max abs diff |',
        '|---|---:|---|---:|---:|---:|---:|',
    ]
    for device, batch, label, sec, ratio, diff in rows:
        lines.append(f'| {device} | {batch} | {label} | {1000 * sec / batch:.0f} | {batch / sec:.2f} | '
                     f'{ratio:.2f}x | {diff:.1e} |')
    lines.append('')
    for _, batch, label, _, ratio, diff in rows:
        target = {DEFAULT_LABEL: 1.6, COMPILED_LABEL: 2.0}.get(label)
        if target:
            verdict = 'met' if ratio >= target and diff <= 1e-4 else 'NOT met'
            lines.append(f'- batch {batch}, {label}: **{ratio:.2f}x** the reference (target {target}x, outputs '
                         f'within 1e-4: {diff:.1e}): {verdict}.')
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- allocator: keep_freed_memory on / off
ALLOCATOR_CHILD = """
import json, resource, sys, time
from gfpgan.utils.allocator import keep_freed_memory
applied = keep_freed_memory()
import torch
sys.path.insert(0, 'scripts')
from benchmark import V14_ARGS, _image
from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
from gfpgan.inference_speed import prepare_for_inference
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
fast = prepare_for_inference(GFPGANv1Clean(**V14_ARGS), device='cpu')
out = {'applied': applied}
for batch in map(int, sys.argv[3:]):
    x = _image(batch)
    fast(x, randomize_noise=False, return_rgb=False)
    times, faults = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(int(sys.argv[2])):
        start = time.perf_counter()
        fast(x, randomize_noise=False, return_rgb=False)
        times.append(time.perf_counter() - start)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / len(times)
    out[batch] = (sorted(times)[len(times) // 2] / batch, faults)
out['peak_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


@section('allocator', 'GFPGANv1Clean-512 default CPU path with and without keep_freed_memory (the inference CLIs '
                      'turn it on), one process per setting, alternated')
def bench_allocator(args: argparse.Namespace) -> str:
    import json
    import statistics

    runs: dict[str, list[dict]] = {'0': [], '1': []}
    batches = [str(b) for b in args.cpu_batches]
    for _ in range(args.allocator_rounds):
        for setting in runs:
            env = dict(os.environ, GFPGAN_KEEP_FREED_MEMORY=setting,
                       PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
            out = subprocess.run([sys.executable, '-c', ALLOCATOR_CHILD, str(args.threads or 0), str(args.iters),
                                  *batches], cwd=REPO, env=env, capture_output=True, text=True, check=True)
            runs[setting].append(json.loads(out.stdout.strip().splitlines()[-1]))
    applied = all(r['applied'] for r in runs['1'])
    lines = ['## Allocator: `keep_freed_memory()` on the CPU inference path', '',
             f'Machine: {machine_description()}; {load_note()}. `python scripts/benchmark.py --sections allocator` '
             f'(GFPGANv1Clean-512, v1.4 arguments, the default `prepare_for_inference` path; one process per '
             f'setting, {args.allocator_rounds} alternated rounds, each 1 warm-up + {args.iters} calls per batch, '
             'median). `GFPGAN_KEEP_FREED_MEMORY=0` is glibc\'s default; `1` is what `inference_gfpgan.py` and '
             f'`gfpgan-app` run{"" if applied else " (NOT applied here: not glibc)"}.', '',
             '| batch | default: ms / face | kept: ms / face | speed-up | page faults / call: default | kept |',
             '|---:|---:|---:|---:|---:|---:|']
    for batch in batches:
        off = [r[batch] for r in runs['0']]
        on = [r[batch] for r in runs['1']]
        t_off, t_on = statistics.median(t for t, _ in off), statistics.median(t for t, _ in on)
        f_off, f_on = statistics.median(f for _, f in off), statistics.median(f for _, f in on)
        lines.append(f'| {batch} | {1000 * t_off:.0f} | {1000 * t_on:.0f} | {t_off / t_on:.2f}x | {f_off:.0f} | '
                     f'{f_on:.0f} |')
        print(f'  allocator b{batch}: {t_off / t_on:.2f}x', flush=True)
    peak_off = statistics.median(r['peak_mb'] for r in runs['0'])
    peak_on = statistics.median(r['peak_mb'] for r in runs['1'])
    lines += ['', f'Peak resident memory of the whole run: {peak_off:.0f} MB by default, {peak_on:.0f} MB kept.']
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- gpu: bf16 + channels_last + compile
FLOP_PER_FACE = 396e9  # GFPGANv1Clean-512 forward (multiply-adds x 2)
BF16_PEAK_TFLOPS = {'H200': 989.0, 'H100 PCIe': 756.0, 'H100 NVL': 835.0, 'H100': 989.0,
                    'A100': 312.0, 'L40S': 362.0, 'L4': 121.0, 'A10': 125.0,
                    '4090': 165.0, '3090': 71.0}  # dense bf16 tensor-core peaks (vendor datasheets)


def _bf16_peak(args: argparse.Namespace) -> float | None:
    if args.gpu_peak_tflops:
        return args.gpu_peak_tflops * 1e12
    name = torch.cuda.get_device_name()
    return next((tf * 1e12 for key, tf in BF16_PEAK_TFLOPS.items() if key in name), None)


def _psnr(out: torch.Tensor, ref: torch.Tensor) -> float:
    mse = ((out.float().clamp(-1, 1) - ref.float().clamp(-1, 1)) / 2).pow(2).mean().item()
    return float('inf') if mse == 0 else 10 * math.log10(1 / mse)


@section('gpu', 'GFPGANv1Clean-512 on CUDA: fp32 eager vs bf16 + channels_last + torch.compile (+ CUDA graphs)')
def bench_gpu(args: argparse.Namespace) -> str:
    title = '## GPU: GFPGANv1Clean-512 inference (bf16 + channels_last + torch.compile vs fp32 eager)\n\n'
    if not torch.cuda.is_available() or args.no_cuda:
        reason = 'no CUDA device on this machine' if not torch.cuda.is_available() else '--no-cuda given'
        print(f'  gpu: skipped ({reason})', flush=True)
        return (title + f'Skipped: {reason}. On a GPU machine this section times, at batch 1 and at '
                f'{", ".join(map(str, args.cuda_batches[1:])) or "a larger batch"}: fp32 eager (baseline), '
                'bf16 + channels_last eager, '
                'bf16 + channels_last + `torch.compile`, and at batch 1 also `mode="reduce-overhead"` (CUDA '
                'graphs); it reports faces/s, the speed-up over fp32 eager, the fraction of the bf16 peak '
                f'({FLOP_PER_FACE / 1e9:.0f} GFLOP per face) and the bf16 PSNR against fp32 (target >= 40 dB).\n')
    import copy

    from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
    from gfpgan.inference_speed import prepare_for_inference

    torch.manual_seed(0)
    net = GFPGANv1Clean(**V14_ARGS).eval()
    kwargs = dict(randomize_noise=False, return_rgb=False)
    peak = _bf16_peak(args)
    rows = []
    for batch in args.cuda_batches:
        torch._dynamo.reset()
        x = _image(batch, 'cuda')
        variants = {
            'fp32 eager': prepare_for_inference(copy.deepcopy(net), device='cuda', channels_last=False),
            'bf16 + channels_last': prepare_for_inference(copy.deepcopy(net), device='cuda', dtype='bf16'),
            'bf16 + channels_last + compile': prepare_for_inference(copy.deepcopy(net), device='cuda', dtype='bf16',
                                                                   compile=True),
        }
        if batch == 1:
            variants['bf16 + channels_last + compile (reduce-overhead: CUDA graphs)'] = prepare_for_inference(
                copy.deepcopy(net), device='cuda', dtype='bf16', compile=True, compile_mode='reduce-overhead')
        fns = {label: (lambda g=g, x=x: g(x, **kwargs)[0]) for label, g in variants.items()}
        medians = interleaved_medians(fns, args.cuda_warmup, args.cuda_iters, cuda=True)
        ref = fns['fp32 eager']().float().clone()
        for label, fn in fns.items():
            out = fn().float().clone()
            fps = batch / medians[label]
            frac = f'{100 * fps * FLOP_PER_FACE / peak:.1f} %' if peak else 'unknown peak (--gpu-peak-tflops)'
            rows.append((batch, label, fps, medians['fp32 eager'] / medians[label], frac, _psnr(out, ref)))
            print(f'  cuda b{batch} {label}: {fps:.1f} faces/s', flush=True)
        del variants, fns
        torch.cuda.empty_cache()
    lines = [title.rstrip('\n'), '', f'Machine: {machine_description()}.',
             f'{args.cuda_warmup} warm-up + {args.cuda_iters} timed calls, round-robin, median.', '',
             '| batch | variant | faces / s | speed-up vs fp32 eager | of bf16 peak | PSNR vs fp32 (dB) |',
             '|---:|---|---:|---:|---:|---:|']
    lines += [f'| {b} | {label} | {fps:.1f} | {r:.2f}x | {frac} | {p:.1f} |' for b, label, fps, r, frac, p in rows]
    b1 = max((r for r in rows if r[0] == 1), key=lambda r: r[2])
    best = max(rows, key=lambda r: r[2])
    lines += ['', f'- batch 1: {b1[2]:.1f} faces/s ({b1[1]}, {b1[4]} of the bf16 peak); best batch {best[0]}: '
              f'{best[2]:.1f} faces/s ({best[1]}, {best[4]} of the bf16 peak).']
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- train: one GFPGANModel step
def tiny_train_options(tmp: Path, **top: object) -> dict:
    """options/train_gfpgan_tiny.yml with the data paths resolved and experiment folders in `tmp`."""
    from gfpgan.utils.options import yaml_load

    opt = yaml_load(REPO / 'options' / 'train_gfpgan_tiny.yml')
    for ds in opt['datasets'].values():
        for key in ('dataroot_gt', 'component_path'):
            if ds.get(key):
                ds[key] = str((REPO / ds[key]).resolve())
    opt.update(is_train=True, dist=False, rank=0, world_size=1, **top)
    opt['path'].update(models=str(tmp / 'models'), training_states=str(tmp / 'states'),
                       visualization=str(tmp / 'vis'))
    return opt


@section('train', 'GFPGANModel training step, tiny config on CPU: iterations/s per mode (fp32, channels_last, bf16)')
def bench_train(args: argparse.Namespace) -> str:
    import tempfile

    from gfpgan.data import build_dataset
    from gfpgan.models import build_model

    modes = {'fp32 eager': {}, 'fp32 channels_last': {'channels_last': True},
             'bf16 autocast (reduced precision)': {'amp': 'bf16'},
             'bf16 autocast + channels_last (reduced precision)': {'amp': 'bf16', 'channels_last': True}}
    with tempfile.TemporaryDirectory() as tmp:
        models, losses = {}, {}
        base_opt = tiny_train_options(Path(tmp))
        ds_opt = base_opt['datasets']['train']
        batch_size = ds_opt['batch_size_per_gpu']
        items = [build_dataset(dict(ds_opt, seed=s))[0] for s in range(batch_size)]
        batch = {k: torch.stack([i[k] for i in items]) if torch.is_tensor(items[0][k]) else [i[k] for i in items]
                 for k in items[0]}
        for label, top in modes.items():
            torch.manual_seed(0)
            models[label] = build_model(tiny_train_options(Path(tmp) / label.split()[0], **top))
        step = {label: 0 for label in modes}

        def run(label: str) -> None:
            step[label] += 1
            models[label].feed_data(batch)
            models[label].optimize_parameters(step[label])
            log = models[label].log_dict
            losses.setdefault(label, sum(float(v) for k, v in log.items() if k.startswith('l_g_')))

        fns = {label: (lambda label=label: [run(label) for _ in range(args.train_steps)]) for label in modes}
        medians = interleaved_medians(fns, 1, args.train_rounds)
    base = medians['fp32 eager']
    rows = [(label, args.train_steps / sec, base / sec, losses[label]) for label, sec in medians.items()]
    RESULTS['train_its'] = args.train_steps / base
    RESULTS['train_batch'] = batch_size
    RESULTS['train_workers'] = ds_opt.get('num_worker_per_gpu') or 0
    lines = ['## Training step: tiny GFPGAN config on CPU', '',
             f'Machine: {machine_description()}; {load_note()}. `options/train_gfpgan_tiny.yml` (64 px, batch '
             f'{batch_size}, full loss recipe), one fixed batch; {args.train_rounds} rounds of {args.train_steps} '
             'steps per mode, round-robin, median. The first step\'s summed `l_g_*` losses show that the modes '
             'compute the same loss (fp32 modes equal to float rounding).', '',
             '| mode | iterations / s | speed-up vs fp32 eager | first-step sum of l_g_* |', '|---|---:|---:|---:|']
    lines += [f'| {label} | {its:.2f} | {r:.2f}x | {loss:.5f} |' for label, its, r, loss in rows]
    lines += ['', 'GPU rows (the 512 recipe, bf16 + channels_last, target >= 2x fp32): skipped, no CUDA device '
              'here.' if not torch.cuda.is_available() else '']
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- gfpgan_iter: one GFPGAN iteration, model vs upstream
GFPGAN_ITER_G = dict(out_size=128, num_style_feat=256, channel_multiplier=1, decoder_load_path=None,
                     fix_decoder=False, num_mlp=8, input_is_latent=True, different_w=True, narrow=0.5, sft_half=True)
ITER_REFERENCE = 'upstream-structured reference, fp32 eager'


@section('gfpgan_iter', 'One GFPGAN training iteration (128 px by default): GFPGANModel (fp32, channels_last, bf16, '
                        'compile) vs the upstream-structured eager reference, losses compared')
def bench_gfpgan_iter(args: argparse.Namespace) -> str:
    import tempfile

    from benchmark_train import UpstreamGFPGANStep, iteration_options, synthetic_batch

    from gfpgan.models import build_model

    device = args.iter_device
    if device.startswith('cuda') and not torch.cuda.is_available():
        print('  gfpgan_iter: skipped (no CUDA device)', flush=True)
        return '## Training: one GFPGAN iteration\n\nSkipped: --iter-device cuda but no CUDA device here.\n'
    network_g = dict(GFPGAN_ITER_G, out_size=args.iter_size)
    modes = {'GFPGANModel, fp32 eager': {}, 'GFPGANModel, fp32 channels_last': {'channels_last': True},
             'GFPGANModel, bf16 autocast (reduced precision)': {'amp': 'bf16'},
             'GFPGANModel, bf16 autocast + channels_last (reduced precision)': {'amp': 'bf16', 'channels_last': True}}
    if args.iter_compile:
        modes['GFPGANModel, fp32 torch.compile (inductor)'] = {'compile': True}
    data = synthetic_batch(args.iter_size, args.iter_batch)
    first: dict[str, dict[str, float]] = {}
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for i, (label, top) in enumerate(modes.items()):
            opt = iteration_options(network_g, Path(tmp) / str(i), num_gpu=int(device.startswith('cuda')), **top)
            torch.manual_seed(0)  # same weights in every mode and in the reference
            models[label] = build_model(opt)
        reference = UpstreamGFPGANStep(next(iter(models.values())), data)
        step = dict.fromkeys([ITER_REFERENCE, *modes], 0)

        def run(label: str) -> None:
            step[label] += 1  # iterations 1, 2, ...: none is an R1 iteration (every 16)
            torch.manual_seed(100 + step[label])  # the same noise maps in every mode
            if label == ITER_REFERENCE:
                with upstream_structure():
                    logs = reference.step()
            else:
                model = models[label]
                model.feed_data(data)
                model.optimize_parameters(step[label])
                logs = {k: float(v) for k, v in model.log_dict.items()}
            first.setdefault(label, logs)

        if args.iter_compile:  # the first call compiles: outside the timed rounds
            label = 'GFPGANModel, fp32 torch.compile (inductor)'
            start = time.perf_counter()
            run(label)
            notes.append(f'The first compiled iteration took {time.perf_counter() - start:.0f} s (compiling); its '
                         'losses are the ones compared.')
        fns = {label: (lambda label=label: run(label)) for label in [ITER_REFERENCE, *modes]}
        medians = interleaved_medians(fns, 1, args.iter_rounds, cuda=device.startswith('cuda'))
    base = medians[ITER_REFERENCE]
    ref = first[ITER_REFERENCE]
    lines = [f'## Training: one GFPGAN iteration on {device}, GFPGANModel vs the upstream-structured reference', '',
             f'Machine: {machine_description()}; {load_note()}. `python scripts/benchmark.py --sections gfpgan_iter` '
             f'(`scripts/benchmark_train.py`): GFPGANv1Clean {args.iter_size} px (narrow {GFPGAN_ITER_G["narrow"]}, '
             f'channel multiplier 1), batch {args.iter_batch}; upstream\'s train_gfpgan_v1 losses: pixel, pyramid L1 '
             'on every RGB, VGG19 perceptual + style, StyleGAN2 discriminator (wgan_softplus), three facial-component '
             'discriminators + Gram style, ArcFace-18 identity, EMA; G step, D step, component D steps (Adam). The '
             'reference is upstream\'s `optimize_parameters` written out on copies of the same weights, run with '
             'upstream\'s layer structure (`upstream_structure()`); the modes are `GFPGANModel.optimize_parameters` '
             f'with the option shown. Random weights and data, the same in every mode; 1 warm-up + {args.iter_rounds} '
             'iterations per mode, round-robin, median. The loss columns are from each mode\'s first iteration '
             '(same weights, data and noise). ' + ' '.join(notes), '',
             '| mode | iterations / s | speed-up vs reference | l_g_percep (1st) | l_d (1st) | max rel. loss diff |',
             '|---|---:|---:|---:|---:|---:|']
    shared = sorted(set(ref) & set.intersection(*(set(v) for v in first.values())))
    for label in [ITER_REFERENCE, *modes]:
        logs = first[label]
        rel = max(abs(logs[k] - ref[k]) / max(abs(ref[k]), 1e-12) for k in shared)
        lines.append(f'| {label} | {1 / medians[label]:.3f} | {base / medians[label]:.2f}x | '
                     f'{logs["l_g_percep"]:.6f} | {logs["l_d"]:.6f} | {rel:.1e} |')
        print(f'  gfpgan_iter {label}: {medians[label]:.2f} s/it', flush=True)
    fp32 = base / medians['GFPGANModel, fp32 eager']
    best = max(modes, key=lambda k: base / medians[k])
    lines += ['', f'Losses compared ({len(shared)}): {", ".join(shared)}.', '',
              f'- GFPGANModel fp32 eager: **{fp32:.2f}x** the reference (target 1.5x): '
              f'{"met" if fp32 >= 1.5 else "NOT met"}; fastest mode: {best}, {base / medians[best]:.2f}x.']
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- lwgan_iter: one lightweight-GAN step
@section('lwgan_iter', 'One lightweight-GAN training step (256 px by default): GANModel (fp32, channels_last, bf16, '
                       'compile) vs the upstream-structured eager reference, losses compared')
def bench_lwgan_iter(args: argparse.Namespace) -> str:
    import tempfile

    from benchmark_train import lightweight_gan_options, lightweight_upstream_structure

    from gfpgan.models import build_model

    size, batch = args.lwgan_size, args.lwgan_batch
    reference = 'upstream-structured reference, fp32 eager'
    modes = {reference: {}, 'GANModel, fp32 eager': {}, 'GANModel, fp32 channels_last': {'channels_last': True},
             'GANModel, bf16 autocast (reduced precision)': {'amp': 'bf16'},
             'GANModel, bf16 autocast + channels_last (reduced precision)': {'amp': 'bf16', 'channels_last': True}}
    if args.iter_compile:
        modes['GANModel, fp32 torch.compile (inductor)'] = {'compile': True}
        modes['GANModel, fp32 channels_last + torch.compile'] = {'compile': True, 'channels_last': True}
    real = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    first: dict[str, dict[str, float]] = {}
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for i, (label, top) in enumerate(modes.items()):
            torch.manual_seed(0)  # same weights everywhere
            models[label] = build_model(lightweight_gan_options(size, batch, Path(tmp) / str(i), **top))
        step = dict.fromkeys(modes, 0)

        def run(label: str) -> None:
            step[label] += 1
            torch.manual_seed(100 + step[label])  # same latents and augmentations in every mode
            model = models[label]
            with lightweight_upstream_structure() if label == reference else contextlib.nullcontext():
                model.feed_data({'gt': real})
                model.optimize_parameters(step[label])
            first.setdefault(label, {k: float(v) for k, v in model.log_dict.items()})

        for label in [k for k in modes if 'compile' in k]:
            start = time.perf_counter()
            run(label)
            notes.append(f'{label}: the first step took {time.perf_counter() - start:.0f} s (compiling).')
        fns = {label: (lambda label=label: run(label)) for label in modes}
        medians = interleaved_medians(fns, 1, args.iter_rounds)
    base, ref = medians[reference], first[reference]
    keys = [k for k in ('l_d', 'l_d_recon', 'l_g') if k in ref]
    lines = ['## Training: one lightweight-GAN step on cpu, GANModel vs the upstream-structured reference', '',
             f'Machine: {machine_description()}; {load_note()}. `python scripts/benchmark.py --sections lwgan_iter`: '
             f'`options/train_lightweight_gan.yml`\'s networks at {size} px, batch {batch}, hinge loss, DiffAugment '
             '(p 0.5), reconstruction loss, EMA; a D step (one no-grad G forward, real and fake D calls) and a G step. '
             'The reference is the same model run with upstream lightweight-gan\'s structure '
             '(`scripts/benchmark_train.py:lightweight_upstream_structure`: the real batch requires a gradient, D is '
             'not frozen in the G step). Random '
             f'weights and data, the same in every mode; 1 warm-up + {args.iter_rounds} steps per mode, round-robin, '
             'median; the loss columns are from each mode\'s first step. ' + ' '.join(notes), '',
             '| mode | steps / s | speed-up vs reference | ' + ' | '.join(f'{k} (1st)' for k in keys)
             + ' | max rel. loss diff |', '|---|---:|---:|' + '---:|' * (len(keys) + 1)]
    for label in modes:
        logs = first[label]
        rel = max(abs(logs[k] - ref[k]) / max(abs(ref[k]), 1e-12) for k in keys)
        lines.append(f'| {label} | {1 / medians[label]:.3f} | {base / medians[label]:.2f}x | '
                     + ' | '.join(f'{logs[k]:.6f}' for k in keys) + f' | {rel:.1e} |')
        print(f'  lwgan_iter {label}: {medians[label]:.2f} s/step', flush=True)
    fp32 = base / medians['GANModel, fp32 eager']
    best = max(modes, key=lambda k: base / medians[k])
    lines += ['', f'- GANModel fp32 eager: **{fp32:.2f}x** the reference (target 1.5x): '
              f'{"met" if fp32 >= 1.5 else "NOT met"}; fastest mode: {best}, {base / medians[best]:.2f}x.']
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- data: degradation throughput vs consumption
@section('data', 'FFHQ degradation throughput (numpy and batched torch paths) vs what a training step consumes')
def bench_data(args: argparse.Namespace) -> str:
    import cv2
    from benchmark_data import run as data_rows
    from benchmark_data import table

    from gfpgan.data import build_dataset

    threads = torch.get_num_threads()
    rows = data_rows(REPO.parent / 'shared' / 'data' / 'ffhq_512', args.data_repeats, 8)
    # the tiny training config's own dataset (64 px, component boxes), one worker
    ds = build_dataset(tiny_train_options(Path('/tmp'))['datasets']['train'])
    start = time.perf_counter()
    for i in range(args.data_repeats):
        ds[i % len(ds)]
    tiny_rate = args.data_repeats / (time.perf_counter() - start)
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    recipe_rate = 1 / rows[1][1]
    lines = ['## Data: FFHQ degradation throughput vs training consumption', '',
             f'Machine: {machine_description()}; {load_note()}. One worker = one thread (torch and OpenCV), '
             f'{args.data_repeats} samples per row. The torch rows time a batch of 8 and report per sample.', '',
             table(rows), '', f'- tiny config dataset (64 px + eye/mouth boxes), 1 worker: {tiny_rate:.1f} samples/s.']
    if 'train_its' in RESULTS:
        need = RESULTS['train_its'] * RESULTS['train_batch']
        workers = max(1, RESULTS['train_workers'])
        lines.append(f'- the tiny fp32 training step consumes {need:.1f} samples/s (batch {RESULTS["train_batch"]}, '
                     f'{RESULTS["train_workers"]} workers, i.e. loading in the main process): data / consumption = '
                     f'{workers * tiny_rate / need:.1f}x.')
    lines.append(f'- 512 recipe (upstream options, batch 3 per GPU): one CPU worker makes {recipe_rate:.1f} '
                 f'samples/s, so k workers keep up with a GPU step rate below k x {recipe_rate / 3:.1f} it/s '
                 '(14 workers on a 16-core machine: ' f'{14 * recipe_rate / 3:.0f} it/s, far above a 512 GFPGAN '
                 'step). Where it cannot, `degrade_on: device` runs the batched torch degradation on the GPU '
                 '(GPU rows printed on a CUDA machine).')
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- inference: whole photos
@section('inference', 'Whole-photo inference per face: detection + alignment + paste-back vs restoration')
def bench_inference(args: argparse.Namespace) -> str:
    import statistics

    import cv2
    import numpy as np

    from gfpgan.archs import build_network
    from gfpgan.face.alignment import estimate_alignment, inverse_affine, warp_face
    from gfpgan.face.detection import DlibFaceDetector
    from gfpgan.face.paste import paste_face, paste_faces_torch
    from gfpgan.restorer import GFPGANer, arch_options

    folder = REPO.parent / 'shared' / 'data' / 'whole_imgs'
    imgs = [cv2.imread(str(p)) for p in sorted(folder.iterdir()) if p.is_file()]
    detector = DlibFaceDetector()
    torch.manual_seed(0)
    device = 'cuda' if torch.cuda.is_available() and not args.no_cuda else 'cpu'
    restorer = GFPGANer(None, net=build_network(arch_options('clean')), upscale=2, device=device, detector=detector)
    device_paste = f'paste-back on the device ({restorer.device.type}, `paste_faces_torch`, incl. transfers)'
    stages = {'detection': 0.0, 'alignment': 0.0, 'paste-back': 0.0, device_paste: 0.0,
              'restoration (512, fast path)': 0.0}
    faces_total, faces_restored = 0, 0

    def median_time(fn, repeat):
        times, result = [], None
        for _ in range(repeat):
            t = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times), result

    for img in imgs:
        t, faces = median_time(lambda img=img: detector.detect(img), args.inference_repeat)
        stages['detection'] += t
        faces_total += len(faces)
        t, crops = median_time(lambda f=faces, img=img: [warp_face(img, estimate_alignment(x.landmarks)) for x in f],
                               args.inference_repeat)
        stages['alignment'] += t
        restored = crops
        if crops and (not args.quick or not faces_restored):  # --quick: the first photo's faces only
            t, restored = median_time(lambda c=crops: restorer.restore_faces(c), 1)
            stages['restoration (512, fast path)'] += t
            faces_restored += len(crops)
        mats = [inverse_affine(estimate_alignment(f.landmarks), 2) for f in faces]
        big = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_LANCZOS4)

        def paste(big=big, restored=restored, mats=mats):
            canvas = big.copy()
            for face, inv in zip(restored, mats):
                paste_face(canvas, face, inv)

        stages['paste-back'] += median_time(paste, args.inference_repeat)[0]
        if restored:
            dev = restorer.device
            faces_t = torch.from_numpy(np.stack(restored)).to(dev)

            def paste_device(big=big, faces_t=faces_t, mats=mats, dev=dev):
                out = paste_faces_torch(torch.from_numpy(big).to(dev), faces_t, mats).cpu()
                return out

            stages[device_paste] += median_time(paste_device, args.inference_repeat)[0]
    per_face = {k: v / max(1, faces_restored if k.startswith('restoration') else faces_total)
                for k, v in stages.items()}
    overhead = per_face['detection'] + per_face['alignment'] + per_face['paste-back']
    restoration = per_face['restoration (512, fast path)']
    lines = [f'## Whole-photo inference: pipeline stages per face ({restorer.device.type})', '',
             f'Machine: {machine_description()}; {load_note()}. `../shared/data/whole_imgs` ({len(imgs)} photos, '
             f'{faces_total} faces), upscale 2, dlib detector (CPU), GFPGANer default fast path on '
             f'{restorer.device.type}, median of {args.inference_repeat} runs per stage (restoration 1 run'
             + (f'; `--quick`: only the first photo, {faces_restored} faces' if args.quick else '') + '; each photo\'s '
             'faces in one batch). "paste-back" is the OpenCV path (`paste_face`, the CPU default); the device row '
             'warps and blends all faces of a photo with `grid_sample` where they were restored and includes '
             'moving the background there and the result back.', '',
             '| stage | ms / face |', '|---|---:|']
    lines += [f'| {k} | {1000 * v:.1f} |' for k, v in per_face.items()]
    lines += ['', f'Detection + alignment + paste-back (OpenCV) = {100 * overhead / restoration:.1f} % of the '
              'restoration time here.']
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- video
@section('video', 'Video restoration frames/s on CPU: 512-face clip, batch across frames vs frame by frame')
def bench_video(args: argparse.Namespace) -> str:
    import tempfile

    import cv2
    import numpy as np

    from gfpgan.archs import build_network
    from gfpgan.restorer import GFPGANer, arch_options
    from gfpgan.video.io import VideoInfo, read_frames, write_video

    photo = cv2.imread(str(REPO.parent / 'shared' / 'data' / 'ffhq_512' / '00000000.png'))
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix='gfpgan_bench_video_'))

    def clip(name: str, n: int) -> Path:
        frames = [(np.clip(photo + rng.normal(0, 4, photo.shape), 0, 255).astype(np.uint8), i) for i in range(n)]
        path = tmp / name
        write_video(path, frames, VideoInfo(path, 512, 512, Fraction(25), Fraction(1, 25), n, False))
        return path

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    n_full, n_tiny = args.video_frames, 30
    full_src, tiny_src = clip('full.mp4', n_full), clip('tiny.mp4', n_tiny)
    torch.manual_seed(0)
    full = GFPGANer(None, net=build_network(arch_options('clean')), upscale=2, device='cpu', batch_size=4)
    tiny_net = build_network(dict(type='GFPGANv1Clean', out_size=32, num_style_feat=32, channel_multiplier=1,
                                  narrow=0.125, num_mlp=1, different_w=True, sft_half=True, input_is_latent=True))
    tiny = GFPGANer(None, net=tiny_net, upscale=2, device='cpu')
    frames = [frame for frame, _ in read_frames(full_src)]
    times = interleaved_medians({
        'video': lambda: full.enhance_video(full_src, tmp / 'full_out.mp4'),
        'per_frame': lambda: [full.enhance(f) for f in frames],  # the image path, one frame per call
    }, warmup=0, rounds=args.video_rounds, cuda=False)
    video_s, per_frame_s = times['video'], times['per_frame']
    tiny_s = timed(lambda: tiny.enhance_video(tiny_src, tmp / 'tiny_out.mp4'))
    lines = ['## Video: frames/s on CPU (512 x 512 clip, one face per frame)', '',
             f'Machine: {machine_description()}; {load_note()}. `python scripts/benchmark.py --sections video` '
             f'(`--video-frames {n_full} --video-rounds {args.video_rounds}`): a 512 x 512 H.264 clip of the FFHQ '
             'sample with sigma-4 noise per frame, upscale 2, dlib detector, x264 preset medium, random weights '
             '(speed does not depend on them); the two full-net rows alternate, median of the rounds; the tiny row '
             'one run.', '',
             '| pipeline | frames | wall s | frames/s |', '|---|---:|---:|---:|',
             f'| `enhance_video`, full GFPGANv1Clean-512, faces of 4 frames per batch | {n_full} | {video_s:.1f} | '
             f'{n_full / video_s:.3f} |',
             f'| `enhance` frame by frame (image path, no video io), same net | {n_full} | {per_frame_s:.1f} | '
             f'{n_full / per_frame_s:.3f} |',
             f'| `enhance_video`, tiny GFPGANv1Clean-32 (decode + detect + track + paste + encode) | {n_tiny} | '
             f'{tiny_s:.1f} | {n_tiny / tiny_s:.2f} |', '',
             'The video path (two decodes, tracking and the H.264 encode included) runs at '
             f'{per_frame_s / video_s:.2f}x the speed of the frame-by-frame image path. The tiny-net row is the '
             "pipeline's own cost (detection in the first pass, paste-back and encoding in the second), which bounds "
             'frames/s once the generator is fast.']
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sections', nargs='+', default=None, help='sections to run (default: all)')
    parser.add_argument('--list', action='store_true', help='list the sections and exit')
    parser.add_argument('--append', type=Path, default=None, help='append the markdown to this file')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads (default 2; 0: torch default)')
    parser.add_argument('--quick', action='store_true',
                        help='no torch.compile, CPU batch 1 only, fewer repeats, no full-size restoration in '
                             'the inference section')
    parser.add_argument('--no-compile', dest='compile', action='store_false', help='skip the torch.compile rows')
    parser.add_argument('--cpu-batches', type=int, nargs='+', default=[1, 4])
    parser.add_argument('--warmup', type=int, default=1, help='CPU warm-up calls')
    parser.add_argument('--iters', type=int, default=5, help='CPU timed calls per variant at batch 1')
    parser.add_argument('--large-batch-iters', type=int, default=1, help='CPU timed calls at batch > 1')
    parser.add_argument('--cuda-batches', type=int, nargs='+', default=[1, 32],
                        help='CUDA batch sizes: 1 and the throughput batch')
    parser.add_argument('--cuda-warmup', type=int, default=3)
    parser.add_argument('--cuda-iters', type=int, default=10)
    parser.add_argument('--gpu-peak-tflops', type=float, default=None, help='bf16 peak when the GPU is not known')
    parser.add_argument('--no-cuda', action='store_true')
    parser.add_argument('--train-steps', type=int, default=3, help='training steps per timed round')
    parser.add_argument('--train-rounds', type=int, default=5)
    parser.add_argument('--iter-batch', type=int, default=4, help='batch of the gfpgan_iter section')
    parser.add_argument('--iter-size', type=int, default=128, help='face size of the gfpgan_iter section')
    parser.add_argument('--iter-device', default='cpu', help='device of the gfpgan_iter section (cpu, cuda)')
    parser.add_argument('--iter-rounds', type=int, default=3, help='timed iterations per mode (gfpgan_iter, '
                        'lwgan_iter)')
    parser.add_argument('--lwgan-size', type=int, default=256, help='image size of the lwgan_iter section')
    parser.add_argument('--lwgan-batch', type=int, default=8, help='batch of the lwgan_iter section')
    parser.add_argument('--iter-compile', action='store_true', help='gfpgan_iter, lwgan_iter: add torch.compile '
                        'modes (minutes to compile on CPU)')
    parser.add_argument('--allocator-rounds', type=int, default=2, help='alternated processes per setting')
    parser.add_argument('--keep-freed-memory', action='store_true',
                        help='run this process as the inference CLIs do (gfpgan.utils.allocator.keep_freed_memory); '
                             'both sides of every ratio get it')
    parser.add_argument('--data-repeats', type=int, default=10)
    parser.add_argument('--inference-repeat', type=int, default=3)
    parser.add_argument('--video-frames', type=int, default=4, help='frames of the 512 video clip')
    parser.add_argument('--video-rounds', type=int, default=2, help='alternated rounds of the full-net video rows')
    args = parser.parse_args(argv)

    if args.list:
        for s in SECTIONS.values():
            print(f'{s.name:12s} {s.help}')
        return 0
    names = args.sections or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f'unknown section(s) {unknown}; choose from {sorted(SECTIONS)}')
    if args.quick:
        args.compile, args.cpu_batches, args.iters, args.train_rounds, args.iter_rounds = False, [1], 3, 2, 1
        args.allocator_rounds = 1
        args.data_repeats, args.inference_repeat, args.video_frames, args.video_rounds = 4, 1, 2, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.keep_freed_memory:
        from gfpgan.utils.allocator import keep_freed_memory

        print(f'  keep_freed_memory: {"applied" if keep_freed_memory() else "not available here"}', flush=True)
    blocks = [SECTIONS[n].run(args) for n in names]
    text = '\n'.join(blocks)
    print(text)
    if args.append:
        with open(args.append, 'a', encoding='utf-8') as f:
            f.write('\n' + text)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
