"""Make the eye/mouth component file of an aligned face dataset, offline (dlib 68-point landmarks).

    python scripts/make_component_landmarks.py -i datasets/ffhq/ffhq_512 -o datasets/my_eye_mouth_landmarks.pth

Same format as upstream's FFHQ_eye_mouth_landmarks_512.pth (`{key: {left_eye|right_eye|mouth:
[cx, cy, half_len]}}`); point the dataset's `component_path` at it. `--key name` (default) keys entries by
file stem (dataset option `component_key: name`); `--key index` by '%08d' sorted position, as upstream.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfpgan.face.components import build_component_table, list_images, save_component_table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('-i', '--input', required=True, help='folder of aligned face images')
    parser.add_argument('-o', '--output', required=True, help='output file (.pth, or .json for plain JSON)')
    parser.add_argument('--key', default='name', choices=['name', 'index'], help='entry keys: file stem or index')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output file')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    if Path(args.output).exists() and not args.overwrite:
        print(f'error: {args.output} exists; pass --overwrite to replace it.', file=sys.stderr)
        return 1
    if not Path(args.input).is_dir():
        print(f'error: input folder {args.input} does not exist.', file=sys.stderr)
        return 1
    files = list_images(args.input)
    if not files:
        print(f'error: no images in {args.input}.', file=sys.stderr)
        return 1
    table, fallbacks = build_component_table(files, key=args.key, progress=not args.quiet)
    save_component_table(table, args.output)
    print(f'Wrote {len(table)} entries to {args.output}.')
    if fallbacks:
        print(f'{len(fallbacks)} images had no detected face; their landmarks were fitted in the template box: '
              + ', '.join(fallbacks[:10]) + (' ...' if len(fallbacks) > 10 else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
