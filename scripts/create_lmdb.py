"""Pack an image folder (FFHQ or any other) into an lmdb database with meta_info.txt.

    python scripts/create_lmdb.py --input datasets/ffhq/ffhq_512 --output datasets/ffhq/ffhq_512.lmdb

Resumable: re-running skips images already stored. An existing database is never overwritten unless
`--overwrite` is given. By default the original file bytes are stored (no re-encoding);
`--compress-level N` re-encodes every image as PNG at level N (0-9), as BasicSR's script does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfpgan.data.lmdb_writer import RAW, make_lmdb_from_folder  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--input', '-i', required=True, help='image folder (searched recursively)')
    parser.add_argument('--output', '-o', required=True, help='database folder, ending in .lmdb')
    parser.add_argument('--compress-level', type=int, default=RAW,
                        help='PNG re-encode level 0-9; -1 (default) stores the original file bytes')
    parser.add_argument('--overwrite', action='store_true', help='delete an existing database first')
    parser.add_argument('--no-recursive', action='store_true', help='only the top level of --input')
    parser.add_argument('--commit-every', type=int, default=200, help='images per transaction (resume granularity)')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    make_lmdb_from_folder(args.input, args.output, compress_level=args.compress_level, overwrite=args.overwrite,
                          recursive=not args.no_recursive, commit_every=args.commit_every, progress=not args.quiet)
    return 0


if __name__ == '__main__':
    sys.exit(main())
