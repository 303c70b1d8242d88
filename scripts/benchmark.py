"""Benchmarks, one section per concern; each prints a markdown block that can go into BENCHMARKS.md.

    python scripts/benchmark.py --list
    python scripts/benchmark.py --sections arch [--threads 2] [--cpu-batches 1 8] [--iters 2]
    python scripts/benchmark.py --sections arch --append BENCHMARKS.md

A section is a function `(args) -> markdown` registered with `@section(name, help)`; add new ones
(data, inference, training, ...) the same way. Every table reports ratios against a baseline timed
in the same run, because absolute numbers on a shared machine drift from run to run.
"""
from __future__ import annotations

import argparse
import contextlib
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

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


# ---------------------------------------------------------------- arch: GFPGANv1Clean forward
UPSTREAM_LABEL = 'fp32, upstream-style structure (reference)'


@contextlib.contextmanager
def upstream_structure():
    """Run GFPGANv1Clean the way upstream's code is structured, to time it against ours.

    Upstream builds a per-sample modulated weight and runs a grouped conv (one group per sample),
    and upsamples before the 1x1 skip conv; ours shares one conv over the batch and runs the skip
    conv on the smaller grid. Same arithmetic, so the outputs agree to float rounding.
    """
    import torch.nn.functional as F

    from gfpgan.archs import gfpganv1_clean_arch, stylegan2_clean_arch

    def grouped_modulated_conv(self, x, style, gain=1.0, bias=None):
        b, c = x.shape[:2]
        k, o = self.kernel_size, self.out_channels
        weight = self.weight * self.modulation(style).view(b, 1, c, 1, 1)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4], keepdim=True) + self.eps)
        x = stylegan2_clean_arch.resample(x, self.sample_mode)
        out = F.conv2d(x.reshape(1, b * c, *x.shape[2:]), weight.view(b * o, c, k, k), padding=self.padding,
                       groups=b)
        out = out.view(b, o, *out.shape[2:]) * gain
        return out if bias is None else out + bias

    def resblock(self, x):
        scale = 0.5 if self.mode == 'down' else 2
        out = F.leaky_relu_(self.conv1(x), 0.2)
        out = F.interpolate(out, scale_factor=scale, mode='bilinear', align_corners=False)
        out = F.leaky_relu_(self.conv2(out), 0.2)
        return out + self.skip(F.interpolate(x, scale_factor=scale, mode='bilinear', align_corners=False))

    saved = stylegan2_clean_arch.ModulatedConv2d.forward, gfpganv1_clean_arch.ResBlock.forward
    stylegan2_clean_arch.ModulatedConv2d.forward = grouped_modulated_conv
    gfpganv1_clean_arch.ResBlock.forward = resblock
    try:
        yield
    finally:
        stylegan2_clean_arch.ModulatedConv2d.forward, gfpganv1_clean_arch.ResBlock.forward = saved


def _arch_variants(device: str) -> list[tuple[str, torch.dtype | None, bool]]:
    """(label, autocast dtype or None, channels_last) per variant; the first is the fp32 eager baseline."""
    variants = [('fp32 eager', None, False), ('fp32 channels_last', None, True), (UPSTREAM_LABEL, None, False)]
    if device == 'cuda':
        variants += [('bf16 autocast', torch.bfloat16, False), ('fp16 autocast', torch.float16, False),
                     ('bf16 autocast + channels_last', torch.bfloat16, True),
                     ('fp16 autocast + channels_last', torch.float16, True)]
    return variants


@section('arch', 'GFPGANv1Clean-512 (v1.4 arguments) forward time per face, CPU and CUDA variants')
def bench_arch(args: argparse.Namespace) -> str:
    from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean, to_channels_last

    torch.manual_seed(0)
    net = GFPGANv1Clean(**V14_ARGS).eval()
    rows = []
    plans = [('cpu', b, args.warmup, args.iters if b == 1 else args.large_batch_iters) for b in args.cpu_batches]
    if torch.cuda.is_available() and not args.no_cuda:
        plans += [('cuda', b, args.cuda_warmup, args.cuda_iters) for b in args.cuda_batches]
    for device, batch, warmup, iters in plans:
        x = (torch.rand(batch, 3, 512, 512, generator=torch.Generator().manual_seed(1)) * 2 - 1).to(device)
        baseline_time, baseline_out = None, None
        variants = _arch_variants(device)
        if device == 'cpu' and batch > 1 and not args.cpu_all_variants:  # large CPU batches are slow
            variants = [v for v in variants if v[0] in ('fp32 eager', UPSTREAM_LABEL)]
        for label, dtype, channels_last in variants:
            model = net.to(device)
            inp = x
            if channels_last:
                model = to_channels_last(model)
                inp = x.contiguous(memory_format=torch.channels_last)
            else:
                for p in [*model.parameters(), *model.buffers()]:
                    p.data = p.data.contiguous()

            def forward(model=model, inp=inp, dtype=dtype, device=device, label=label):
                amp = torch.autocast(device, dtype=dtype) if dtype is not None else contextlib.nullcontext()
                structure = upstream_structure() if label == UPSTREAM_LABEL else contextlib.nullcontext()
                with torch.inference_mode(), amp, structure:
                    return model(inp, randomize_noise=False, return_rgb=False)[0]

            seconds = time_call(forward, warmup, iters, device == 'cuda')
            out = forward().float()
            if baseline_time is None:
                baseline_time, baseline_out = seconds, out
            diff = (out - baseline_out).abs().max().item()
            rows.append((device, batch, label, 1000 * seconds / batch, batch / seconds, baseline_time / seconds, diff))
            print(f'  {device} b{batch} {label}: {1000 * seconds / batch:.1f} ms/face', flush=True)
        net.to('cpu')
    lines = [
        '## Architecture: GFPGANv1Clean-512 forward (v1.4 arguments)',
        '',
        f'Machine: {machine_description()}.',
        f'`python scripts/benchmark.py --sections arch` (CPU: {args.warmup} warm-up + {args.iters} timed calls '
        f'at batch 1, {args.large_batch_iters} at larger batches; '
        f'CUDA: {args.cuda_warmup} + {args.cuda_iters}; median; `randomize_noise=False`, `return_rgb=False`, '
        'inference_mode). Speed-up is against fp32 eager on the same device and batch size; '
        'max |diff| is the largest output difference from that baseline (output range [-1, 1] for real weights, '
        'random weights here).',
        '',
        '| device | batch | variant | ms / face | faces / s | speed-up | max abs diff |',
        '|---|---:|---|---:|---:|---:|---:|',
    ]
    for device, batch, label, ms, fps, ratio, diff in rows:
        lines.append(f'| {device} | {batch} | {label} | {ms:.1f} | {fps:.2f} | {ratio:.2f}x | {diff:.1e} |')
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sections', nargs='+', default=None, help='sections to run (default: all)')
    parser.add_argument('--list', action='store_true', help='list the sections and exit')
    parser.add_argument('--append', type=Path, default=None, help='append the markdown to this file')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    parser.add_argument('--cpu-batches', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--cpu-all-variants', action='store_true', help='also time channels_last at CPU batch > 1')
    parser.add_argument('--warmup', type=int, default=1, help='CPU warm-up calls')
    parser.add_argument('--iters', type=int, default=2, help='CPU timed calls at batch 1')
    parser.add_argument('--large-batch-iters', type=int, default=1, help='CPU timed calls at batch > 1')
    parser.add_argument('--cuda-batches', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--cuda-warmup', type=int, default=3)
    parser.add_argument('--cuda-iters', type=int, default=10)
    parser.add_argument('--no-cuda', action='store_true')
    args = parser.parse_args(argv)

    if args.list:
        for s in SECTIONS.values():
            print(f'{s.name:12s} {s.help}')
        return 0
    names = args.sections or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f'unknown section(s) {unknown}; choose from {sorted(SECTIONS)}')
    if args.threads:
        torch.set_num_threads(args.threads)
    blocks = [SECTIONS[n].run(args) for n in names]
    text = '\n'.join(blocks)
    print(text)
    if args.append:
        with open(args.append, 'a', encoding='utf-8') as f:
            f.write('\n' + text)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
