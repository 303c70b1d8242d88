"""`python -m gfpgan.app` / `gfpgan-app`: serve the restoration page on this computer.

Binds 127.0.0.1 unless `--host` says otherwise (then it warns, since anyone who can reach the port can
use the app: add `--auth user:password`) and never opens a public share link unless `--share` is given.
Uploads, gradio's cache and results live in one private temporary folder, swept while the app runs and
removed when it stops. Requests wait in one queue; `--concurrency` of them run at a time.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys

from gfpgan.restorer import ARCH_TYPES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog='gfpgan-app', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--host', default='127.0.0.1', help='address to bind (default 127.0.0.1: this computer only)')
    p.add_argument('--port', type=int, default=7860, help='port (default 7860)')
    p.add_argument('--share', action='store_true', help="also open a public gradio.live link (off by default)")
    p.add_argument('--auth', default=None, metavar='USER:PASSWORD',
                   help='ask for this user name and password before the page or the API serves anyone '
                        '(use it with --host 0.0.0.0 or --share; gradio_client callers pass auth=(user, password))')
    p.add_argument('--model_path', action='append', default=[],
                   help='a local generator checkpoint to offer (repeatable); shown first and used by default')
    p.add_argument('--arch', default='clean', choices=list(ARCH_TYPES),
                   help="arch of the --model_path files (clean: sizes are read off the file's keys)")
    p.add_argument('--channel_multiplier', type=int, default=2, help='channel multiplier of non-clean --model_path')
    p.add_argument('--weights_dir', default=None,
                   help='folder of the release weights (default $GFPGAN_WEIGHTS_DIR or ~/.cache/gfpgan)')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 ... (default: cuda when available)')
    p.add_argument('--dtype', default=None, choices=['fp32', 'bf16', 'fp16'],
                   help='generator precision (default: bf16 on a GPU that has it, else fp32)')
    p.add_argument('--concurrency', type=int, default=1, help='requests restored at the same time (default 1)')
    p.add_argument('--queue_size', type=int, default=32, help='requests that may wait; more are turned away')
    p.add_argument('--max_file_mb', type=float, default=25.0, help='largest upload accepted, in MB')
    p.add_argument('--max_megapixels', type=float, default=16.0,
                   help='largest result (photo or video frame) made; bigger photos are downscaled first, videos '
                        'restored at a lower upscale, and the page says so')
    p.add_argument('--max_files', type=int, default=20, help='photos restored per request (default 20)')
    p.add_argument('--max_video_frames', type=int, default=1800,
                   help='longest video accepted, in frames (default 1800: a minute at 30 fps)')
    p.add_argument('--keep_minutes', type=float, default=60.0,
                   help='results and uploads older than this are removed while the app runs (all at exit)')
    args = p.parse_args(argv)
    if args.auth is not None:
        user, sep, password = args.auth.partition(':')
        if not (user and sep and password):
            p.error(f'--auth must be USER:PASSWORD (both non-empty), got {args.auth!r}.')
        args.auth = (user, password)
    for name in ('concurrency', 'queue_size', 'max_files', 'max_video_frames'):
        if getattr(args, name) < 1:
            p.error(f'--{name} must be >= 1, got {getattr(args, name)}.')
    for name in ('max_file_mb', 'max_megapixels', 'keep_minutes'):
        if getattr(args, name) <= 0:
            p.error(f'--{name} must be > 0, got {getattr(args, name)}.')
    return args


def is_loopback(host: str) -> bool:
    """True for an address only this computer can reach (127.0.0.0/8, ::1, localhost)."""
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to the network
        return False


def exposure_warning(args: argparse.Namespace) -> str | None:
    """The warning to print when the app is reachable beyond this computer, else None."""
    if is_loopback(args.host) and not args.share:
        return None
    where = ' and through a public gradio.live link' if args.share else ''
    reach = f'on {args.host}:{args.port}{where}'
    if args.auth is None:
        return (f'WARNING: serving {reach} WITHOUT authentication: anyone who can reach it can restore photos '
                'on this computer and download the results. Add --auth USER:PASSWORD, or use the default '
                '--host 127.0.0.1.')
    return (f'WARNING: serving {reach}, behind --auth; the connection is plain HTTP (not encrypted) unless '
            'a TLS proxy is put in front of it.')


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from gfpgan.app.service import LocalModel, RestorerService
    from gfpgan.app.uploads import UploadLimits
    from gfpgan.app.workspace import Workspace
    from gfpgan.utils.allocator import keep_freed_memory

    keep_freed_memory()  # before the server's threads start: they share the main heap (gfpgan/utils/allocator.py)

    try:
        service = RestorerService([LocalModel(p, args.arch, args.channel_multiplier) for p in args.model_path],
                                  weights_dir=args.weights_dir, device=args.device, dtype=args.dtype,
                                  concurrency=args.concurrency)
    except (OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    workspace = Workspace(max_age_s=args.keep_minutes * 60)
    workspace.start_sweeping()
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the server and removes the workspace, as Ctrl-C does
    # gradio reads its upload/cache folder from the environment: point it into the workspace first
    os.environ['GRADIO_TEMP_DIR'] = str(workspace.gradio_dir)
    os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
    try:
        try:
            from gfpgan.app.ui import build_demo
        except ImportError as err:
            print(f'error: the app needs gradio ({err}); install it with `pip install -e .[app]`.', file=sys.stderr)
            return 2
        limits = UploadLimits(max_file_mb=args.max_file_mb, max_output_megapixels=args.max_megapixels,
                              max_files=args.max_files, max_video_frames=args.max_video_frames)
        demo = build_demo(service, limits, workspace)
        demo.queue(default_concurrency_limit=args.concurrency, max_size=args.queue_size)
        print(f'Device {service.device} ({service.dtype}); temporary folder {workspace.root}', flush=True)
        warning = exposure_warning(args)
        if warning:
            print(warning, file=sys.stderr, flush=True)
        demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=args.auth,
                    max_file_size=f'{args.max_file_mb:g}mb', allowed_paths=[str(workspace.results_dir)],
                    footer_links=['api'], show_error=True)
    except KeyboardInterrupt:
        pass
    finally:
        workspace.remove()
    return 0


if __name__ == '__main__':
    sys.exit(main())
