"""Check a whole option tree against the schema before anything is built or written.

Every block is a pydantic model (option_schema for declared blocks, option_components for blocks that
are a component's constructor arguments, the model's `train_options`, the dataset's `options`). The
first problem becomes one `OptionError` naming the file, the key path, the closest valid key and the
valid ones. Upstream keys that have no effect here are returned as one-line notices.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any, Iterable

from pydantic import BaseModel, ValidationError, create_model

from gfpgan.utils.option_components import component_model, registry_for
from gfpgan.utils.option_schema import (
    METRIC_BETTER_KEY,
    NO_EFFECT,
    ComponentBlock,
    DatasetOptions,
    ModelTopLevelOptions,
    PathOptionsBase,
    TopLevelOptions,
    TrainOptionsBase,
    ValOptions,
    network_path_fields,
)
from gfpgan.utils.options import OptionError

# ----------------------------------------------------------------------------------------------- messages


def _valid_keys_at(model: type[BaseModel] | None, loc: tuple) -> list[str] | None:
    """Field names of the (sub)model that holds `loc[-1]`, following nested model fields."""
    for key in loc[:-1]:
        if model is None or isinstance(key, int):
            return None
        field = model.model_fields.get(key)
        model = _model_in(field.annotation) if field is not None else None
    return sorted(model.model_fields) if model is not None else None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, '__args__', ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def unknown_key_message(key: str, valid: Iterable[str], patterns: Iterable[str] = (), more: str = '') -> str:
    """'unknown key. Did you mean X? Valid keys: ...'; `patterns` are candidates not listed (`more` names them)."""
    valid = sorted(valid)
    close = difflib.get_close_matches(key, [*valid, *patterns], n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ''
    return f'unknown key.{hint} Valid keys: {", ".join(valid)}{more}.'


def _key_path(loc: tuple, data: Any, keep_last: bool) -> tuple:
    """The parts of a pydantic error location that are keys (or list indices) of the data.

    Errors inside a union carry the member's name (`KeepBestOptions`, `int`, ...) in their location; those
    are not keys of the file. A missing key is kept although the data lacks it.
    """
    path, node = [], data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif keep_last and i == len(loc) - 1:
            path.append(part)
    return tuple(path)


def _describe_error(err: dict, model: type[BaseModel], data: Any) -> tuple[tuple, str]:
    kind = err.get('type', '')
    loc = _key_path(tuple(err.get('loc', ())), data, keep_last=kind == 'missing')
    if kind == 'extra_forbidden':
        valid = _valid_keys_at(model, loc) or []
        return loc, unknown_key_message(str(loc[-1]), valid)
    if kind == 'missing':
        return loc, 'required key is missing.'
    msg = err.get('msg', 'invalid value')
    if kind == 'value_error':
        msg = msg.removeprefix('Value error, ')
        head, sep, tail = msg.partition(': ')
        if sep and head.isidentifier():  # a model validator naming its own key
            return (*loc, head), tail + '.'
    return loc, f'{msg[0].lower() + msg[1:]}, got {err.get("input")!r}.'


def _join(prefix: str, loc: Iterable[Any]) -> str:
    parts = [prefix] if prefix else []
    for p in loc:
        parts.append(f'[{p}]' if isinstance(p, int) else str(p))
    return '.'.join(parts).replace('.[', '[')


def check_block(model: type[BaseModel], data: Any, where: str, source: str) -> BaseModel:
    """Validate `data` against `model`, raising one OptionError for the first problem (file, key path, fix)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise OptionError(f'{source}: {where}: expected a mapping of options, got {data!r}.')
    try:
        return model.model_validate(data)
    except ValidationError as err:
        # an unknown key first: a misspelt key also makes its correct spelling 'missing'
        errors = sorted(err.errors(include_url=False), key=lambda e: e.get('type') != 'extra_forbidden')
        described = [_describe_error(e, model, data) for e in errors]
        loc, msg = described[0]
        same = [m for lc, m in described if lc == loc]
        if len(same) > 1:  # a value matching no member of a union: one message listing what would do
            wanted = ' or '.join(dict.fromkeys(m.split(', got ')[0].removeprefix('input should be ') for m in same))
            msg = f'expected {wanted}, got {errors[0].get("input")!r}.'
        related = [lc for lc, _ in described if lc[:len(loc)] == loc or loc[:len(lc)] == lc]  # incl. union members
        more = len(described) - len(related)
        more = f' ({more} more problem(s) in this block.)' if more else ''
        raise OptionError(f'{source}: {_join(where, loc)}: {msg}{more}') from None


def no_effect_notices(parsed: BaseModel, where: str, source: str) -> list[str]:
    """One line per upstream-only key that `parsed` (and its sub-blocks) was given."""
    notices = []
    for name in parsed.model_fields_set:
        field = type(parsed).model_fields.get(name)
        value = getattr(parsed, name, None)
        extra = (field.json_schema_extra or {}) if field is not None else {}
        if isinstance(extra, dict) and NO_EFFECT in extra:
            notices.append(f'{source}: {_join(where, [name])}: has no effect here ({extra[NO_EFFECT]}); '
                           'accepted because upstream option files carry it.')
        if isinstance(value, BaseModel):
            notices += no_effect_notices(value, _join(where, [name]), source)
    return notices


# ----------------------------------------------------------------------------------------------- components


def registered(kind: str, name: Any, where: str, source: str) -> Any:
    """The component `name` of `kind`, or an OptionError listing the close and the valid names."""
    registry = registry_for(kind)
    if not isinstance(name, str):
        raise OptionError(f'{source}: {where}: expected the name of a registered {kind}, got {name!r}.')
    if name not in registry:
        choices = registry.keys()
        close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
        hint = f' Did you mean {" or ".join(close)}?' if close else ''
        raise OptionError(
            f"{source}: {where}: '{name}' is not a registered {kind}.{hint} Choices: {', '.join(choices)}. "
            "A component of your own must be listed under 'imports:'."
        )
    return registry.get(name)


def require_type(kind: str, block: Any, where: str, source: str) -> None:
    """A `{type: X, ...}` block must name its component; a misspelt `type` is named as the unknown key."""
    if isinstance(block, dict) and 'type' in block:
        return
    need = f"a {kind} block needs 'type' naming a registered {kind}."
    keys = [str(k) for k in block] if isinstance(block, dict) else []
    close = difflib.get_close_matches('type', keys, n=1, cutoff=0.6)  # the best match only: not `gan_type`
    if close:
        raise OptionError(f"{source}: {where}.{close[0]}: unknown key. Did you mean 'type'? {need}")
    raise OptionError(f'{source}: {where}: {need}')


def check_component(kind: str, block: Any, where: str, source: str) -> BaseModel:
    """Check a `{type: X, **arguments}` block against the signature of the registered `X`."""
    require_type(kind, block, where, source)
    obj = registered(kind, block['type'], f'{where}.type', source)
    parsed = check_block(component_model(kind, block['type'], obj), block, where, source)
    if kind in ('metric', 'loss') and isinstance(block.get('network'), dict):  # an embedding net (identity)
        check_component('arch', block['network'], f'{where}.network', source)
    return parsed


def _component_kind(field: Any) -> str | None:
    for meta in getattr(field, 'metadata', ()) or ():
        if isinstance(meta, ComponentBlock):
            return meta.kind
    return None


def check_component_fields(parsed: BaseModel, where: str, source: str, scheduler_keys: Iterable[str] = ()) -> None:
    """Check every field of `parsed` declared as a ComponentBlock (loss, optimizer, scheduler, arch)."""
    for name, field in type(parsed).model_fields.items():
        kind = _component_kind(field)
        value = getattr(parsed, name)
        if kind is None or not value:
            continue
        if kind == 'scheduler':
            value = {k: v for k, v in value.items() if k not in set(scheduler_keys)}
        check_component(kind, value, _join(where, [name]), source)


# ----------------------------------------------------------------------------------------------- blocks


def network_names(opt: dict) -> list[str]:
    """`g`, `d`, `d_left_eye`, ... for the `network_<x>` blocks of the file."""
    return [k[len('network_'):] for k in opt if isinstance(k, str) and k.startswith('network_')]


def path_model(networks: Iterable[str]) -> type[PathOptionsBase]:
    """The `path:` block of a file declaring these networks."""
    return _path_model(tuple(networks))


@functools.cache
def _path_model(networks: tuple[str, ...]) -> type[PathOptionsBase]:
    fields: dict[str, Any] = {}
    for name in networks:
        fields.update(network_path_fields(name))
    return create_model('PathOptions', __base__=PathOptionsBase, **fields)


def dataset_options_model(dataset_cls: Any) -> type[DatasetOptions]:
    """The dataset's declared options; a dataset of your own without `options` gets the loader keys + anything."""
    model = getattr(dataset_cls, 'options', None)
    if isinstance(model, type) and issubclass(model, DatasetOptions):
        return model
    return _OpenDatasetOptions


class _OpenDatasetOptions(DatasetOptions):
    model_config = DatasetOptions.model_config | {'extra': 'allow'}


class _OpenTrainOptions(TrainOptionsBase):
    model_config = TrainOptionsBase.model_config | {'extra': 'allow'}


def train_options_model(model_cls: Any) -> type[TrainOptionsBase]:
    """The model's `train:` keys (`train_options`); a model that declares none: the common keys + anything."""
    model = getattr(model_cls, 'train_options', None)
    if isinstance(model, type) and issubclass(model, TrainOptionsBase):
        return model
    return _OpenTrainOptions


def val_options_model(model_cls: Any) -> type[ValOptions]:
    """The model's `val:` keys (`val_options`); the common ones for a model that declares none."""
    model = getattr(model_cls, 'val_options', None)
    if isinstance(model, type) and issubclass(model, ValOptions):
        return model
    return ValOptions


def top_level_options_model(model_cls: Any) -> type[ModelTopLevelOptions] | None:
    """The top-level keys the model reads itself (`top_level_options`), or None."""
    model = getattr(model_cls, 'top_level_options', None)
    if isinstance(model, type) and issubclass(model, ModelTopLevelOptions):
        return model
    return None


def _model_top_level_keys(model_type: Any) -> set[str]:
    """Keys that `model_type` declares at the top level (none while it is not a registered model)."""
    from gfpgan.utils.registry import MODEL_REGISTRY

    if not isinstance(model_type, str) or model_type not in MODEL_REGISTRY:
        return set()
    model = top_level_options_model(MODEL_REGISTRY.get(model_type))
    return set(model.model_fields) if model is not None else set()


def check_metric_direction(name: str, block: dict, where: str, source: str) -> None:
    """A metric block's `better` (BasicSR's best-metric direction) must agree with what the metric declares:
    best values follow the declared direction, so a contradicting one would be silently ignored."""
    from gfpgan.utils.registry import METRIC_REGISTRY

    given = block.get(METRIC_BETTER_KEY)
    if given is None:
        return
    declared = METRIC_REGISTRY.meta(block['type']).get('better')
    if given != declared:
        raise OptionError(f"{source}: {where}.{METRIC_BETTER_KEY}: '{given}' contradicts metric {block['type']}, "
                          f"for which {declared} is better; best values follow the metric's direction: "
                          f"write better: {declared} or remove the key.")


def check_dataset(phase_key: str, block: Any, source: str) -> DatasetOptions:
    where = f'datasets.{phase_key}'
    phase = phase_key.split('_')[0]
    if phase not in ('train', 'val', 'test'):
        raise OptionError(f"{source}: {where}: the phase (text before the first '_') must be train, val or test.")
    if block.get('phase', phase) != phase:
        raise OptionError(f"{source}: {where}.phase: the phase is taken from the key ('{phase}'); remove it.")
    require_type('dataset', block, where, source)
    cls = registered('dataset', block['type'], f'{where}.type', source)
    parsed = check_block(dataset_options_model(cls), {**block, 'phase': phase}, where, source)
    check_component_fields(parsed, where, source)
    if phase == 'train' and parsed.batch_size_per_gpu is None:
        raise OptionError(f'{source}: {where}.batch_size_per_gpu: required for a train dataset.')
    return parsed


def validate_options(opt: Any, source: str, is_train: bool = True) -> list[str]:
    """Check the whole option tree; return the notices about upstream keys that have no effect.

    Raises OptionError (file, key path, closest valid key, valid keys) for the first problem found.
    """
    if not isinstance(opt, dict):
        raise OptionError(f'{source}: the file must hold a mapping of options, got {type(opt).__name__}.')
    networks = network_names(opt)
    model_keys = _model_top_level_keys(opt.get('model_type'))
    unknown = [k for k in opt
               if k not in TopLevelOptions.model_fields and k not in model_keys and not str(k).startswith('network_')]
    if unknown:
        if isinstance(opt.get('model_type'), str):  # a misspelt model first: its top-level keys look unknown
            registered('model', opt['model_type'], 'model_type', source)
        # a misspelt common key (model_type itself) before keys that a model would declare
        key = next((k for k in unknown if difflib.get_close_matches(str(k), TopLevelOptions.model_fields, 1, 0.6)),
                   unknown[0])
        guess = f'network_{str(key).partition("_")[2] or "<x>"}'
        msg = unknown_key_message(str(key), TopLevelOptions.model_fields, [guess], ' and network_<x> blocks')
        raise OptionError(f'{source}: {key}: {msg}')
    top = check_block(TopLevelOptions, {k: v for k, v in opt.items()
                                        if not str(k).startswith('network_') and k not in model_keys}, '', source)
    notices = no_effect_notices(top, '', source)
    model_cls = registered('model', top.model_type, 'model_type', source)
    model_top = top_level_options_model(model_cls)
    if model_top is not None:
        check_block(model_top, {k: opt[k] for k in model_keys if k in opt}, '', source)
    built = getattr(model_cls, 'networks', None)  # the network_<x> blocks the model reads, when it declares them
    for name in networks:
        if built is not None and name not in built:
            valid = [f'network_{n}' for n in built]
            raise OptionError(f'{source}: network_{name}: {top.model_type} builds no such network. '
                              + unknown_key_message(f'network_{name}', valid).removeprefix('unknown key. '))
        check_component('arch', opt[f'network_{name}'], f'network_{name}', source)

    for phase_key, block in top.datasets.items():
        parsed = check_dataset(str(phase_key), block, source)
        notices += no_effect_notices(parsed, f'datasets.{phase_key}', source)
    if is_train and not any(k.split('_')[0] == 'train' for k in top.datasets):
        raise OptionError(f'{source}: datasets.train: a training run needs a train dataset.')

    parsed_path = check_block(path_model(networks), top.path, 'path', source)
    notices += no_effect_notices(parsed_path, 'path', source)

    train_model = train_options_model(model_cls)
    if top.train is not None or is_train:
        train = check_block(train_model, top.train, 'train', source)
        if is_train and train.total_iter is None and train.epochs is None:
            raise OptionError(f'{source}: train.total_iter: required for training (number of iterations), '
                              'or train.epochs (passes over the train set).')
        check_component_fields(train, 'train', source, train_model.scheduler_keys)
        notices += no_effect_notices(train, 'train', source)

    if top.val is not None:
        val = check_block(val_options_model(model_cls), top.val, 'val', source)
        notices += no_effect_notices(val, 'val', source)
        for name, metric in (val.metrics or {}).items():
            check_component('metric', metric, f'val.metrics.{name}', source)
            check_metric_direction(name, metric, f'val.metrics.{name}', source)
    return notices


__all__ = ['validate_options', 'check_block', 'check_component', 'registered', 'unknown_key_message',
           'path_model', 'dataset_options_model', 'train_options_model', 'val_options_model',
           'top_level_options_model', 'check_metric_direction']
