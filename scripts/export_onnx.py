"""Export a GFPGAN clean generator (v1.2-v1.4) to ONNX and check it with onnxruntime.

    python scripts/export_onnx.py -v 1.4 -o gfpgan_v1.4.onnx
    python scripts/export_onnx.py --model_path my_net_g.pth -o my_net.onnx

The graph takes `input`: float32 (N, 3, S, S) RGB in [-1, 1] (S = the generator's out_size, 512 for the
releases; N is dynamic) and returns `output` in the same layout. StyleGAN noise is the generator's
stored noise (`randomize_noise=False`), so the graph is deterministic and matches PyTorch: the check
runs a batch of 2 random inputs through both and fails when the largest absolute difference exceeds
`--atol` (default 1e-3 on the [-1, 1] scale; measured 1.8e-6 for the full-size 512 generator on CPU).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfpgan.face.weights import load_file_from_url  # noqa: E402
from gfpgan.restorer import MODEL_VERSIONS, GFPGANer  # noqa: E402
from gfpgan.utils.checkpoint_io import atomic_write  # noqa: E402


class ImageOnly(nn.Module):
    """Generator with deterministic noise, returning only the restored image (no intermediate RGBs)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, return_rgb=False, randomize_noise=False)[0]


def export(net: nn.Module, out_size: int, path: str | Path, opset: int = 17) -> None:
    """Write the ONNX graph atomically (dynamic batch axis)."""
    wrapped = ImageOnly(net).eval()
    dummy = torch.zeros(1, 3, out_size, out_size)

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # the TorchScript exporter's deprecation notice
            torch.onnx.export(wrapped, (dummy,), tmp, input_names=['input'], output_names=['output'],
                              opset_version=opset, dynamo=False,
                              dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}})

    atomic_write(path, write)


def check(net: nn.Module, out_size: int, path: str | Path, seed: int = 0) -> float:
    """Largest |onnxruntime - PyTorch| over a batch of 2 random inputs."""
    import onnxruntime as ort

    x = torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, (2, 3, out_size, out_size)).astype(np.float32))
    with torch.no_grad():
        expected = ImageOnly(net).eval()(x).numpy()
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    got = session.run(None, {'input': x.numpy()})[0]
    return float(np.abs(got - expected).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    clean_versions = [v for v, (arch, _, _) in MODEL_VERSIONS.items() if arch == 'clean']
    parser.add_argument('-v', '--version', default='1.4', choices=clean_versions)
    parser.add_argument('--model_path', help='generator checkpoint (overrides -v); clean layout, options read off it')
    parser.add_argument('--weights_dir', default=None, help='weights folder for -v (default ~/.cache/gfpgan)')
    parser.add_argument('-o', '--output', required=True, help='ONNX file to write')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--atol', type=float, default=1e-3, help='largest allowed |onnxruntime - PyTorch|')
    parser.add_argument('--no_check', action='store_true', help='skip the onnxruntime comparison')
    args = parser.parse_args(argv)

    path = args.model_path or load_file_from_url(MODEL_VERSIONS[args.version][2], args.weights_dir)
    try:
        net, opt = GFPGANer._build(path, 'clean', MODEL_VERSIONS[args.version][1], None)
    except (OSError, RuntimeError, KeyError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    net.eval()
    out_size = int(opt['out_size'])
    export(net, out_size, args.output, args.opset)
    print(f'Wrote {args.output} (input: float32 (N, 3, {out_size}, {out_size}) RGB in [-1, 1]).')
    if not args.no_check:
        diff = check(net, out_size, args.output)
        verdict = 'OK' if diff <= args.atol else 'FAILED'
        print(f'onnxruntime vs PyTorch: max |diff| = {diff:.2e} (tolerance {args.atol:g}): {verdict}')
        if diff > args.atol:
            return 1
    print('Run it with:\n'
          f"  python -c \"import numpy as np, onnxruntime as ort; s = ort.InferenceSession('{args.output}'); "
          f"x = np.zeros((1, 3, {out_size}, {out_size}), np.float32); print(s.run(None, {{'input': x}})[0].shape)\"")
    return 0


if __name__ == '__main__':
    sys.exit(main())
