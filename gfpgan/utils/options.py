"""Option files: YAML loading, command-line overrides, validation with readable errors, derived paths.

The schema (gfpgan.utils.option_schema, checked by pydantic) holds BasicSR's and upstream GFPGAN's keys,
so upstream option files work unchanged. Errors are `OptionError`s that name the file, the key path and
what would be valid; the command lines print them as one paragraph.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import random
import re
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import yaml


class OptionError(ValueError):
    """An option file (or override) is wrong; the message says where and how to fix it."""


# PyYAML's float resolver misses `2e-3` and `1e4` (YAML 1.1 wants a dot and a signed exponent).
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _OptionLoader(yaml.SafeLoader):
    """SafeLoader that keeps key order and reads `2e-3` as a float."""


_OptionLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != 'tag:yaml.org,2002:float']
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_OptionLoader.add_implicit_resolver('tag:yaml.org,2002:float', _FLOAT_RE, list('-+0123456789.'))
_OptionLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, lambda loader, node: OrderedDict(loader.construct_pairs(node))
)


def yaml_load(text_or_path: str | os.PathLike) -> Any:
    """Load YAML text, or a YAML file when given an existing path."""
    if isinstance(text_or_path, os.PathLike) or (isinstance(text_or_path, str) and os.path.isfile(text_or_path)):
        with open(text_or_path, encoding='utf-8') as f:
            return _to_plain(yaml.load(f, Loader=_OptionLoader))
    return _to_plain(yaml.load(text_or_path, Loader=_OptionLoader))


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_plain(v) for v in obj]
    return obj


def dict2str(opt: dict, indent: int = 1) -> str:
    """Pretty, YAML-like rendering for the log file."""
    lines = []
    for k, v in opt.items():
        if isinstance(v, dict):
            lines.append(' ' * (indent * 2) + f'{k}:[')
            lines.append(dict2str(v, indent + 1))
            lines.append(' ' * (indent * 2) + ']')
        else:
            lines.append(' ' * (indent * 2) + f'{k}: {v}')
    return '\n'.join(lines)


def apply_force_yml(opt: dict, overrides: Sequence[str], source: str) -> None:
    """Apply `a:b:c=value` overrides in place; the key path must already exist (as upstream)."""
    for item in overrides or []:
        if '=' not in item:
            raise OptionError(f"--force_yml '{item}': expected the form key:subkey=value.")
        keys, value = item.split('=', 1)
        path = keys.split(':')
        node = opt
        for i, key in enumerate(path[:-1]):
            if not isinstance(node, dict) or key not in node:
                raise OptionError(f"--force_yml '{item}': {source} has no key '{':'.join(path[: i + 1])}'.")
            node = node[key]
        if not isinstance(node, dict) or path[-1] not in node:
            raise OptionError(
                f"--force_yml '{item}': {source} has no key '{keys}'. --force_yml only changes "
                'existing keys; add new ones to the option file.'
            )
        node[path[-1]] = yaml_load(value) if value != '' else None


# ----------------------------------------------------------------------------------------- validation
def validate_options(opt: dict, source: str, is_train: bool = True) -> list[str]:
    """Check the option tree against the schema (gfpgan.utils.option_schema) before anything is built.

    Raises OptionError naming the file, the key path, the closest valid key and the valid ones; returns
    one-line notices for upstream keys that are accepted but have no effect.
    """
    from gfpgan.utils.option_validation import validate_options as validate

    return validate(opt, source, is_train)


# ----------------------------------------------------------------------------------------- user modules
def import_user_modules(entries: Sequence[str], base_dir: str | os.PathLike) -> None:
    """Import the modules an option file lists under `imports:` so their components register.

    An entry is a module name (searched next to the option file, then on sys.path) or a path to a .py file
    (relative to the option file).
    """
    base_dir = str(Path(base_dir).resolve())
    for entry in entries or []:
        if entry.endswith('.py') or os.sep in entry or '/' in entry:
            path = Path(entry) if os.path.isabs(entry) else Path(base_dir) / entry
            if not path.is_file():
                raise OptionError(f"imports: '{entry}' is not a file (looked for {path}).")
            name = f'gfpgan_user_{path.stem}'
            if name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            if base_dir not in sys.path:
                sys.path.insert(0, base_dir)
            try:
                importlib.import_module(entry)
            except ModuleNotFoundError as err:
                if err.name != entry.split('.')[0]:
                    raise
                raise OptionError(
                    f"imports: module '{entry}' was not found next to the option file ({base_dir}) nor on sys.path."
                ) from err


# ----------------------------------------------------------------------------------------- parsing
def build_arg_parser(is_train: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='gfpgan training' if is_train else 'gfpgan evaluation')
    parser.add_argument('-opt', '--opt', help='path to the option YAML file')
    parser.add_argument(
        '--print-schema',
        nargs='?',
        const='-',
        metavar='FILE',
        help='write the JSON Schema of option files (for editors) to FILE or stdout, and exit',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help='job launcher; torchrun is detected by itself',
    )
    parser.add_argument('--auto_resume', action='store_true', help='resume from the newest complete training state')
    parser.add_argument('--debug', action='store_true', help='tiny frequencies, name prefixed debug_, no tb/wandb')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help='set by older launchers; ignored')
    parser.add_argument('--force_yml', nargs='+', default=None, help='override existing keys: a:b=value')
    parser.add_argument(
        '--import',
        dest='imports',
        action='append',
        default=[],
        help='extra module (name or .py path) to import so that its components register',
    )
    return parser


def parse_options(
    root_path: str | os.PathLike, is_train: bool = True, argv: Sequence[str] | None = None
) -> tuple[dict, argparse.Namespace]:
    """Parse the command line and the option file; set up distribution, seeds and derived paths."""
    parser = build_arg_parser(is_train)
    args = parser.parse_args(argv)
    if args.print_schema:
        import_user_modules(args.imports, os.getcwd())
        print_schema(args.print_schema)
        raise SystemExit(0)
    if not args.opt:
        parser.error('the following arguments are required: -opt/--opt')
    opt_path = os.path.abspath(args.opt)
    if not os.path.isfile(opt_path):
        raise OptionError(f'{args.opt}: option file not found.')
    try:
        opt = yaml_load(opt_path)
    except yaml.YAMLError as err:
        raise OptionError(f'{args.opt}: not valid YAML: {err}') from err
    if not isinstance(opt, dict):
        raise OptionError(f'{args.opt}: the file must hold a mapping of options.')
    apply_force_yml(opt, args.force_yml, args.opt)
    import_user_modules(list(opt.get('imports') or []) + args.imports, os.path.dirname(opt_path))
    notices = validate_options(opt, args.opt, is_train)
    if int(os.environ.get('RANK', '0')) == 0:
        for line in notices:
            print(f'gfpgan: notice: {line}', file=sys.stderr, flush=True)
    copy_scale_into_datasets(opt)
    opt['opt_path'] = opt_path
    opt['is_train'] = is_train
    opt['auto_resume'] = args.auto_resume

    # distribution: torchrun sets WORLD_SIZE/LOCAL_RANK; --launcher pytorch is accepted but not needed
    from gfpgan.utils.dist import get_dist_info, init_dist

    if args.launcher == 'slurm':
        _export_slurm_env()
    if args.launcher != 'none' or int(os.environ.get('WORLD_SIZE', '1')) > 1:
        init_dist(backend=(opt.get('dist_params') or {}).get('backend'))
        opt['dist'] = True
    else:
        opt['dist'] = False
    opt['rank'], opt['world_size'] = get_dist_info()

    import torch

    if opt.get('num_gpu', 'auto') == 'auto':
        opt['num_gpu'] = torch.cuda.device_count()
    if opt['num_gpu'] > 0 and not torch.cuda.is_available():
        raise OptionError(
            f'{args.opt}: num_gpu: {opt["num_gpu"]} GPUs asked for, but CUDA is not available. '
            "Use num_gpu: 0 (CPU) or 'auto'."
        )

    seed = opt.get('manual_seed')
    if seed is None:
        seed = random.randint(1, 10000)
        opt['manual_seed'] = seed
    from gfpgan.utils.rng_state import set_random_seed

    set_random_seed(seed + opt['rank'])

    if args.debug and not opt['name'].startswith('debug'):
        opt['name'] = 'debug_' + opt['name']
    _derive_paths(opt, root_path, is_train)
    if args.debug:
        opt.setdefault('val', {})
        if opt['val']:
            opt['val']['val_freq'] = 8
        opt['logger'] = {
            **(opt.get('logger') or {}),
            'print_freq': 1,
            'save_checkpoint_freq': 8,
            'use_tb_logger': False,
            'wandb': None,
        }
    return opt, args


def copy_scale_into_datasets(opt: dict) -> None:
    """Upstream's top-level `scale`: the default `scale` of every dataset whose options take one."""
    if opt.get('scale') is None:
        return
    from gfpgan.utils.registry import DATASET_REGISTRY

    for block in (opt.get('datasets') or {}).values():
        options = getattr(DATASET_REGISTRY.get(block['type']), 'options', None)
        if options is not None and 'scale' in options.model_fields:
            block.setdefault('scale', opt['scale'])


def print_schema(target: str) -> None:
    """Write the option files' JSON Schema to `target` ('-': stdout), atomically for a file."""
    import json

    from gfpgan.utils.option_json_schema import build_json_schema

    text = json.dumps(build_json_schema(), indent=1) + '\n'
    if target == '-':
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from gfpgan.utils.checkpoint_io import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # a file for editors to read, not a private temporary

    atomic_write(target, write)


def _derive_paths(opt: dict, root_path: str | os.PathLike, is_train: bool) -> None:
    """Absolute paths for the experiment folders, so resume never depends on the working directory."""
    root = os.path.abspath(str(root_path))
    path = opt.setdefault('path', {}) or {}
    opt['path'] = path
    for key, value in list(path.items()):
        if value is not None and (
            'pretrain_network' in key or key in ('resume_state', 'experiments_root', 'results_root')
        ):
            path[key] = os.path.abspath(os.path.expanduser(str(value)))
    opt.setdefault('logger', {})
    if is_train:
        exp_root = path.get('experiments_root') or os.path.join(root, 'experiments', opt['name'])
        path['experiments_root'] = exp_root
        path['models'] = os.path.join(exp_root, 'models')
        path['training_states'] = os.path.join(exp_root, 'training_states')
        path['log'] = exp_root
        path['visualization'] = os.path.join(exp_root, 'visualization')
        path['tb_logger'] = os.path.join(os.path.dirname(os.path.dirname(exp_root)), 'tb_logger', opt['name'])
    else:
        results_root = path.get('results_root') or os.path.join(root, 'results', opt['name'])
        path['results_root'] = results_root
        path['log'] = results_root
        path['visualization'] = os.path.join(results_root, 'visualization')


def _export_slurm_env() -> None:
    """Translate SLURM's variables into the ones torch.distributed's env:// rendezvous reads."""
    env = os.environ
    env.setdefault('RANK', env.get('SLURM_PROCID', '0'))
    env.setdefault('WORLD_SIZE', env.get('SLURM_NTASKS', '1'))
    env.setdefault('LOCAL_RANK', env.get('SLURM_LOCALID', '0'))
    env.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in env:
        nodes = env.get('SLURM_NODELIST', '127.0.0.1')
        env['MASTER_ADDR'] = re.split(r'[,\[]', nodes)[0]
