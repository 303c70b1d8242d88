"""The experiments folder: creation (archiving an old run of the same name) and finding resume states."""

from __future__ import annotations

import os
import re
import shutil
import time

from gfpgan.utils.dist import master_only


def get_time_str() -> str:
    return time.strftime('%Y%m%d_%H%M%S', time.localtime())


def mkdir_and_rename(path: str) -> None:
    """Create `path`; an existing folder of that name is kept as `<path>_archived_<time>`."""
    if os.path.exists(path):
        new_name = f'{path}_archived_{get_time_str()}'
        print(f'Path already exists. Rename it to {new_name}', flush=True)
        os.rename(path, new_name)
    os.makedirs(path, exist_ok=True)


@master_only
def make_exp_dirs(opt: dict, resumed: bool) -> None:
    path = opt['path']
    if opt['is_train']:
        if not resumed:
            mkdir_and_rename(path['experiments_root'])
        for key in ('models', 'training_states', 'visualization'):
            os.makedirs(path[key], exist_ok=True)
    else:
        mkdir_and_rename(path['results_root'])
        os.makedirs(path['visualization'], exist_ok=True)


@master_only
def copy_opt_file(opt_file: str, dest_dir: str) -> None:
    dest = os.path.join(dest_dir, os.path.basename(opt_file))
    if os.path.abspath(opt_file) != os.path.abspath(dest):
        shutil.copyfile(opt_file, dest)


_STATE_RE = re.compile(r'^(\d+)\.state$')


def list_training_states(state_dir: str) -> list[tuple[int, str]]:
    """(iteration, absolute path) of the complete `<iter>.state` files, newest first.

    Temporary files of an interrupted save are named differently and never match.
    """
    if not os.path.isdir(state_dir):
        return []
    states = [
        (int(m.group(1)), os.path.join(os.path.abspath(state_dir), name))
        for name in os.listdir(state_dir)
        if (m := _STATE_RE.match(name))
    ]
    return sorted(states, reverse=True)
