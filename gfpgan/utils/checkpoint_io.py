"""Reading and writing weights and training states: atomic writes, safe loads, clear mismatches."""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

PARAM_KEYS = ('params_ema', 'params')


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)` then rename onto `path`, so a crash never leaves a truncated file.

    The temporary file lives in the destination folder (rename is atomic only within a filesystem)
    and is removed if `write` fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_checkpoint(obj: Any, path: str | os.PathLike) -> None:
    """`torch.save` (or safetensors for a `.safetensors` path) written atomically."""
    if str(path).endswith('.safetensors'):
        from safetensors.torch import save_file

        tensors = {k: v.detach().cpu().contiguous() for k, v in obj.items()}
        atomic_write(path, lambda tmp: save_file(tensors, tmp))
    else:
        atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path: str | os.PathLike, map_location: Any = 'cpu') -> Any:
    """Load a `.pth`/`.pt` file with `weights_only=True`, or a `.safetensors` file."""
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Checkpoint file not found: {path}')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file

        device = str(map_location) if isinstance(map_location, (str, torch.device)) else 'cpu'
        return load_file(path, device=device)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # corrupt file, or a pickle with non-tensor objects
        raise RuntimeError(
            f'Could not load checkpoint {path}: {err}. It must be a torch.save file of tensors and plain '
            'containers (loaded with weights_only=True) or a .safetensors file.'
        ) from err


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str = 'module.') -> OrderedDict:
    """Drop a DataParallel/DDP `module.` (or any) prefix from every key that has it."""
    return OrderedDict((k[len(prefix) :] if k.startswith(prefix) else k, v) for k, v in state_dict.items())


def extract_state_dict(ckpt: Any, param_key: str | None = 'params_ema', source: str = '<checkpoint>') -> OrderedDict:
    """Pick the state dict out of a checkpoint: `param_key`, else `params_ema`/`params`, else the bare dict."""
    if not isinstance(ckpt, Mapping):
        raise TypeError(f'{source} holds a {type(ckpt).__name__}, not a state dict.')
    if param_key and param_key in ckpt:
        sd = ckpt[param_key]
    elif any(k in ckpt for k in PARAM_KEYS) and all(isinstance(v, Mapping) for v in ckpt.values()):
        key = next(k for k in PARAM_KEYS if k in ckpt)
        sd = ckpt[key]
    elif all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        sd = ckpt
    else:
        raise KeyError(
            f"{source} has no '{param_key}' entry; its keys are {sorted(ckpt)[:10]}. "
            "Set param_key to one of them (e.g. 'params' or 'params_ema')."
        )
    return strip_prefix(sd)


def describe_mismatch(net: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> str:
    """A human-readable list of missing, unexpected and wrong-shape keys ('' when they match)."""
    own = net.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs network {tuple(v.shape)}'
        for k, v in own.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    lines = []
    for title, items in (('missing', missing), ('unexpected', unexpected), ('wrong shape', shapes)):
        if items:
            shown = ', '.join(items[:8]) + (f' ... ({len(items)} in all)' if len(items) > 8 else '')
            lines.append(f'{title}: {shown}')
    return '; '.join(lines)


def load_weights(
    net: nn.Module, path_or_ckpt: str | os.PathLike | Mapping, param_key: str | None = 'params_ema', strict: bool = True
) -> nn.Module:
    """Load weights into `net` from a file or an already-loaded checkpoint.

    Strict by default: a mismatch raises with the list of bad keys, because a silent non-strict load
    leaves random weights behind. With `strict=False` matching keys of matching shape are loaded and
    the mismatch is returned in the warning log instead.
    """
    source = str(path_or_ckpt) if not isinstance(path_or_ckpt, Mapping) else '<checkpoint dict>'
    ckpt = path_or_ckpt if isinstance(path_or_ckpt, Mapping) else load_checkpoint(path_or_ckpt)
    sd = extract_state_dict(ckpt, param_key, source)
    target = net.module if hasattr(net, 'module') and isinstance(net.module, nn.Module) else net
    report = describe_mismatch(target, sd)
    if report and strict:
        raise RuntimeError(
            f'Weights in {source} do not fit {type(target).__name__}: {report}. '
            'Check the network options (e.g. channel_multiplier, out_size, narrow).'
        )
    if report:
        import logging

        logging.getLogger('gfpgan').warning(
            'Loading %s non-strictly into %s: %s', source, type(target).__name__, report
        )
        own = target.state_dict()
        sd = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    target.load_state_dict(sd, strict=strict)
    return net
