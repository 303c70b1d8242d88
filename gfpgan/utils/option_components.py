"""Option models of registered components, derived from their signatures: one declaration per component.

A `network_*` block holds an arch's constructor arguments, a loss block its loss's, an optimizer or
scheduler block the torch class's (without `params` / `optimizer`), a metric block the metric function's
(without the images it is given). This module turns such a signature into a pydantic model (extra keys
forbidden unless the signature takes `**kwargs`), using the annotations where pydantic can check them.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
import typing
from typing import Any, Callable, Literal, Optional, Union

from pydantic import ConfigDict, Field, TypeAdapter, create_model

from gfpgan.utils.option_schema import METRIC_BETTER_KEY, OptionsModel
from gfpgan.utils.registry import Registry

KINDS = ('arch', 'loss', 'optimizer', 'scheduler', 'metric', 'io_backend')

# Arguments that the code building a component passes itself (never written in an option file).
_SUPPLIED = {
    'optimizer': ('params',),
    'scheduler': ('optimizer', 'last_epoch', 'verbose'),
    'metric': ('img', 'img2'),
    'io_backend': ('db_paths', 'client_keys'),
}


def registry_for(kind: str) -> Registry:
    """The registry that names components of `kind` (arch, loss, optimizer, scheduler, metric, ...)."""
    from gfpgan.utils import registry

    return getattr(registry, f'{kind.upper()}_REGISTRY')


def discover_all() -> None:
    """Import every package component, models first (a model module may register further components, e.g.
    DiffAugment), so that listings do not depend on what happened to be imported before."""
    for kind in ('model', 'dataset', *KINDS):
        registry_for(kind).keys()


def _checkable(annotation: Any) -> Any:
    """`annotation` if pydantic can check values against it; for a union, the members it can; else Any."""
    if annotation is inspect.Parameter.empty or isinstance(annotation, str):
        return Any
    try:
        TypeAdapter(annotation)
        return annotation
    except Exception:
        pass
    origin = typing.get_origin(annotation)
    if origin is Union or (sys.version_info >= (3, 10) and origin is types.UnionType):
        members = [a for a in typing.get_args(annotation) if _checkable(a) is not Any]
        if members:
            return Union[tuple(members)]
    return Any


def _annotations(obj: Any) -> dict[str, Any]:
    target = obj.__init__ if isinstance(obj, type) else obj
    try:
        return typing.get_type_hints(target)
    except Exception:  # an annotation that does not resolve: check that parameter by presence only
        return {}


def _parameters(obj: Any) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return []


@functools.cache
def component_model(kind: str, type_name: str, obj: Any, inputs: tuple[str, ...] = ()) -> type[OptionsModel]:
    """A pydantic model of `{type: type_name, **keyword arguments of obj}`.

    `inputs` are arguments the caller supplies (the images of a metric); `**kwargs` in the signature lets
    any key through, except for metrics, which take `**kwargs` only to ignore what the validation loop passes.
    """
    meta_options: dict[str, Any] = {}
    if kind == 'metric':
        meta = registry_for('metric').meta(type_name)
        inputs = tuple(meta.get('inputs', inputs or _SUPPLIED['metric']))
        meta_options = dict(meta.get('options') or {})
    skip = set(_SUPPLIED.get(kind, ())) | set(inputs) | {'self'}
    hints = _annotations(obj)
    fields: dict[str, Any] = {'type': (Literal[type_name], Field(description=f'registered {kind}'))}
    open_kwargs = False
    for p in _parameters(obj):
        if p.kind is p.VAR_KEYWORD:
            open_kwargs = kind != 'metric'
            continue
        if p.kind is p.VAR_POSITIONAL or p.name in skip:
            continue
        annotation = _checkable(hints.get(p.name, p.annotation))
        default = ... if p.default is inspect.Parameter.empty else p.default
        if default is not ... and default is None:
            annotation = Optional[annotation] if annotation is not Any else Any
        fields[p.name] = (annotation, Field(default))
    for key, description in meta_options.items():  # keys the validation loop reads for this metric
        fields.setdefault(key, (Any, Field(None, description=str(description))))
    if kind == 'metric':  # BasicSR's direction key; option_validation checks it agrees with the declared one
        fields.setdefault(METRIC_BETTER_KEY, (Optional[Literal['higher', 'lower']], Field(
            None, description="BasicSR's best-value direction; must agree with the metric's declared one")))
    config = ConfigDict(extra='allow' if open_kwargs else 'forbid', arbitrary_types_allowed=True,
                        protected_namespaces=(), title=f'{kind}:{type_name}')
    model_name = f'{kind}_{type_name}'.replace('.', '_')
    return create_model(model_name, __config__=config, **fields)


def component_models(kind: str) -> dict[str, type[OptionsModel]]:
    """Every registered component of `kind` with its option model (for the JSON Schema)."""
    registry = registry_for(kind)
    out = {}
    for name in registry.keys():
        try:
            out[name] = component_model(kind, name, registry.get(name))
        except Exception:  # a signature pydantic cannot express: left out of the editor schema only
            continue
    return out


def describe(obj: Callable) -> str:
    """`module.qualname` of a component, for error messages."""
    return f'{getattr(obj, "__module__", "?")}.{getattr(obj, "__qualname__", obj)}'
