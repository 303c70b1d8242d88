"""Convert GFPGANBilinear weights into the GFPGANv1Clean layout (as upstream's script of this name).

    python scripts/convert_gfpganv_to_clean.py --ori_path GFPGANBilinear.pth \
        --save_path GFPGANCleanv1-NoCE-C2.pth [--narrow 1] [--channel_multiplier 2] [--to-safetensors]

The converted state dict is loaded (strictly) into a GFPGANv1Clean before it is written, and with
`--verify` both networks run on a random face and the largest output difference is printed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfpgan.archs.gfpgan_bilinear_arch import GFPGANBilinear, convert_bilinear_to_clean  # noqa: E402
from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean  # noqa: E402
from gfpgan.utils.checkpoint_io import load_weights, save_checkpoint  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--ori_path', required=True, help='GFPGANBilinear checkpoint (params_ema / params / bare)')
    parser.add_argument('--narrow', type=float, default=1)
    parser.add_argument('--channel_multiplier', type=float, default=2)
    parser.add_argument('--out_size', type=int, default=512)
    parser.add_argument('--num_style_feat', type=int, default=512)
    parser.add_argument('--num_mlp', type=int, default=8)
    parser.add_argument('--lr_mlp', type=float, default=0.01, help="the bilinear model's lr_mlp (0.01 upstream)")
    parser.add_argument('--save_path', required=True)
    parser.add_argument('--to-safetensors', dest='to_safetensors', action='store_true',
                        help='write a .safetensors file (flat clean state dict) instead of a .pth')
    parser.add_argument('--verify', action='store_true', help='compare both networks on a random input')
    args = parser.parse_args(argv)

    common = dict(
        out_size=args.out_size, num_style_feat=args.num_style_feat, channel_multiplier=args.channel_multiplier,
        decoder_load_path=None, fix_decoder=False, num_mlp=args.num_mlp, input_is_latent=True, different_w=True,
        narrow=args.narrow, sft_half=True,
    )
    bilinear = GFPGANBilinear(**common, lr_mlp=args.lr_mlp)
    load_weights(bilinear, args.ori_path, param_key='params_ema')
    clean_sd = convert_bilinear_to_clean(bilinear.state_dict(), lr_mlp=args.lr_mlp)
    clean = GFPGANv1Clean(**common)
    load_weights(clean, clean_sd)

    if args.verify:
        x = torch.rand(1, 3, args.out_size, args.out_size) * 2 - 1
        with torch.no_grad():
            ref = bilinear.eval()(x, randomize_noise=False)[0]
            out = clean.eval()(x, randomize_noise=False)[0]
        print(f'max |bilinear - clean| = {(ref - out).abs().max().item():.3e} (output range {ref.abs().max():.3f})')

    save_path = Path(args.save_path)
    if args.to_safetensors:
        save_path = save_path.with_suffix('.safetensors')
        save_checkpoint(clean_sd, save_path)
    else:
        save_checkpoint({'params_ema': clean_sd}, save_path)
    print(f'Saved the clean-layout weights ({len(clean_sd)} tensors) to {save_path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
