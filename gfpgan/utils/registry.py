"""Name -> object registries that let YAML option files pick components by `type`."""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterator


def _origin(obj: Any) -> str:
    return f'{getattr(obj, "__module__", "?")}.{getattr(obj, "__qualname__", repr(obj))}'


class Registry:
    """A mapping from names to classes or functions, filled by the `register()` decorator.

    Registering the *same* definition twice (a module imported twice, or reloaded) replaces the old
    entry silently; registering a *different* definition under a taken name is an error, because
    the option file would otherwise silently pick whichever module was imported last.
    """

    def __init__(self, name: str, discover: Callable[[], None] | None = None) -> None:
        self._name = name
        self._obj_map: dict[str, Any] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._discover = discover

    def _do_register(self, name: str, obj: Any) -> None:
        old = self._obj_map.get(name)
        if old is not None and old is not obj and _origin(old) != _origin(obj):
            raise KeyError(
                f"An object named '{name}' is already registered in the {self._name} registry: "
                f'{_origin(old)}; refusing to register {_origin(obj)} under the same name. '
                'Rename one of them (register(name=...) takes an explicit name).'
            )
        self._obj_map[name] = obj

    def register(self, obj: Any = None, name: str | None = None, **meta: Any) -> Any:
        """Register `obj`, usable bare (`X.register(fn)`) or as a decorator (`@X.register()`).

        Keyword `meta` is declared facts about the entry that callers read with `meta()`, e.g. a
        metric's direction: `@METRIC_REGISTRY.register(better='lower')`.
        """
        if obj is None:

            def deco(func_or_class: Any) -> Any:
                return self.register(func_or_class, name=name, **meta)

            return deco
        key = name or obj.__name__
        self._do_register(key, obj)
        self._meta[key] = dict(meta)
        return obj

    def meta(self, name: str) -> dict[str, Any]:
        """What `name` declared at registration (empty when nothing), e.g. `{'better': 'higher'}`."""
        self.get(name)  # the same error as get() for an unknown name
        return dict(self._meta.get(name, {}))

    def _ensure_discovered(self) -> None:
        if self._discover is not None:
            discover, self._discover = self._discover, None
            discover()

    def get(self, name: str) -> Any:
        self._ensure_discovered()
        obj = self._obj_map.get(name)
        if obj is None:
            close = difflib.get_close_matches(name, self._obj_map, n=5, cutoff=0.5)
            hint = f' Did you mean: {", ".join(close)}?' if close else ''
            raise KeyError(
                f"No object named '{name}' in the {self._name} registry.{hint} "
                f'Registered: {", ".join(sorted(self._obj_map))}. A component of your own must be '
                "registered in a module that the option file lists under 'imports:'."
            )
        return obj

    def keys(self) -> list[str]:
        self._ensure_discovered()
        return sorted(self._obj_map)

    def __contains__(self, name: object) -> bool:
        self._ensure_discovered()
        return name in self._obj_map

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        self._ensure_discovered()
        return iter(sorted(self._obj_map.items()))

    def __repr__(self) -> str:
        return f'Registry({self._name!r}, {len(self._obj_map)} entries)'


def _discover_package(package: str, suffix: str) -> Callable[[], None]:
    """Return a function that imports every `*{suffix}.py` module of `package` (which registers it)."""

    def discover() -> None:
        import importlib
        import pkgutil

        pkg = importlib.import_module(package)
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if info.name.endswith(suffix):
                importlib.import_module(f'{package}.{info.name}')

    return discover


def _discover_modules(*modules: str) -> Callable[[], None]:
    """Return a function that imports the named modules (each registers its entries when imported)."""

    def discover() -> None:
        import importlib

        for module in modules:
            importlib.import_module(module)

    return discover


ARCH_REGISTRY = Registry('arch', _discover_package('gfpgan.archs', '_arch'))
DATASET_REGISTRY = Registry('dataset', _discover_package('gfpgan.data', '_dataset'))
LOSS_REGISTRY = Registry('loss', _discover_package('gfpgan.losses', '_loss'))
METRIC_REGISTRY = Registry('metric', _discover_package('gfpgan.metrics', '_metric'))
MODEL_REGISTRY = Registry('model', _discover_package('gfpgan.models', '_model'))
OPTIMIZER_REGISTRY = Registry('optimizer', _discover_modules('gfpgan.models.optimizers'))
SCHEDULER_REGISTRY = Registry('scheduler', _discover_modules('gfpgan.models.lr_scheduler'))
IO_BACKEND_REGISTRY = Registry('io_backend', _discover_modules('gfpgan.data.file_client'))


def build_from_registry(registry: Registry, opt: dict, what: str, **extra: Any) -> Any:
    """Instantiate `registry.get(opt['type'])(**rest_of_opt, **extra)` with errors that name the option.

    `what` names the option block (e.g. 'network_g') so a failure points at the place in the file.
    """
    if not isinstance(opt, dict) or 'type' not in opt:
        raise KeyError(
            f"Option block '{what}' needs a 'type' key naming a registered {registry._name}; "
            f'choices: {", ".join(registry.keys())}.'
        )
    kwargs = {k: v for k, v in opt.items() if k != 'type'}
    cls = registry.get(opt['type'])
    try:
        return cls(**kwargs, **extra)
    except TypeError as err:
        import inspect

        try:
            params = ', '.join(p for p in inspect.signature(cls).parameters if p not in ('self', 'args', 'kwargs'))
        except (TypeError, ValueError):
            params = '?'
        raise TypeError(f"Option block '{what}' (type {opt['type']}): {err}. {opt['type']} takes: {params}.") from err
