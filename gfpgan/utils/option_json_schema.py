"""A JSON Schema (draft 2020-12) of option files, built from the same models that validate them.

Editors (VS Code's YAML extension, JetBrains) use it to complete keys and flag mistakes while typing:
`gfpgan-train --print-schema gfpgan-options.schema.json`, then point the editor at that file. Components
are offered per `type` (one `if/then` per registered arch, loss, dataset, ...), the `train:` block per
`model_type`. The validator (option_validation) stays the authority: it also checks what JSON Schema
cannot say (which networks a model builds, the path keys of the networks a file declares).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gfpgan.utils.option_components import component_models, discover_all, registry_for
from gfpgan.utils.option_schema import ComponentBlock, TopLevelOptions
from gfpgan.utils.option_validation import path_model, top_level_options_model, val_options_model

KINDS = ('arch', 'loss', 'optimizer', 'scheduler', 'metric', 'io_backend')
NULL = {'type': 'null'}


def _ref(name: str) -> dict:
    return {'$ref': f'#/$defs/{name}'}


def _by_type(models: dict[str, str]) -> dict:
    """`{type: X, ...}` checked against X's schema (`models`: type name -> $defs name)."""
    names = sorted(models)
    return {
        'type': 'object',
        'required': ['type'],
        'properties': {'type': {'enum': names}},
        'allOf': [{'if': {'properties': {'type': {'const': n}}, 'required': ['type']}, 'then': _ref(models[n])}
                  for n in names],
    }


def _kind(field: Any) -> str | None:
    return next((m.kind for m in getattr(field, 'metadata', ()) or () if isinstance(m, ComponentBlock)), None)


def _declared(registry_kind: str, attribute: str) -> dict[str, type[BaseModel]]:
    """`{name: cls.<attribute>}` for the registered datasets / models that declare an options model."""
    found = {n: getattr(c, attribute, None) for n, c in registry_for(registry_kind)}
    return {n: m for n, m in found.items() if isinstance(m, type) and issubclass(m, BaseModel)}


def build_json_schema() -> dict:
    """The whole schema: top level, datasets by type, network_* by arch, path, train by model_type, val, logger."""
    discover_all()
    components = {k: component_models(k) for k in KINDS}
    datasets, trains = _declared('dataset', 'options'), _declared('model', 'train_options')
    vals = {n: val_options_model(c) for n, c in registry_for('model')}
    tops = {n: m for n, c in registry_for('model') if (m := top_level_options_model(c)) is not None}
    paths = path_model(['x'])  # the per-network keys of a placeholder network `x`, turned into patterns below
    models = [TopLevelOptions, paths, *datasets.values(), *trains.values(), *vals.values(), *tops.values()]
    models += [m for kind in KINDS for m in components[kind].values()]
    models = list(dict.fromkeys(models))
    _, defs = models_json_schema([(m, 'validation') for m in models], ref_template='#/$defs/{model}')
    defs = defs['$defs']
    names = {kind: {n: m.__name__ for n, m in components[kind].items()} for kind in KINDS}

    # every ComponentBlock field (train recipes' losses/optimizers, datasets' io_backend): checked by type
    for model in models:
        for field_name, field in model.model_fields.items():
            kind = _kind(field)
            prop = defs.get(model.__name__, {}).get('properties', {}).get(field_name)
            if kind is None or prop is None:
                continue
            table = names[kind]
            extra = getattr(model, 'scheduler_keys', ()) if kind == 'scheduler' else ()
            if extra:  # keys of the scheduler block that the model reads itself
                table = {}
                for n, def_name in names[kind].items():
                    variant = dict(defs[def_name])
                    variant['properties'] = {**variant.get('properties', {}), **{k: {} for k in extra}}
                    table[n] = f'{model.__name__}_{def_name}'
                    defs[table[n]] = variant
            defs[model.__name__]['properties'][field_name] = {
                'description': prop.get('description', ''), 'anyOf': [_by_type(table), NULL]}
    for model in set(vals.values()):  # val.metrics: {name: metric block}
        metrics = defs[model.__name__]['properties']['metrics']
        metrics['anyOf'] = [{'type': 'object', 'additionalProperties': _by_type(names['metric'])}, NULL]

    root = defs.pop('TopLevelOptions')
    props = root['properties']
    props['model_type']['enum'] = sorted(registry_for('model').keys())
    props['datasets'].update({
        'type': 'object',
        'propertyNames': {'pattern': '^(train|val|test)(_.*)?$'},
        'additionalProperties': _by_type({n: m.__name__ for n, m in datasets.items()}),
    })
    path_props = defs.pop(paths.__name__)['properties']
    per_network = {k: v for k, v in path_props.items() if k.endswith('_x')}
    props['path'] = {'description': props['path'].get('description', ''), 'anyOf': [{
        'type': 'object',
        'properties': {k: v for k, v in path_props.items() if k not in per_network},
        'patternProperties': {f'^{k[:-1]}[A-Za-z0-9_]+$': v for k, v in per_network.items()},
        'additionalProperties': False,
    }, NULL]}
    root['patternProperties'] = {'^network_[A-Za-z0-9_]+$': _by_type(names['arch'])}
    root.pop('additionalProperties', None)  # unevaluatedProperties instead: a model's own top-level keys are in allOf
    root['unevaluatedProperties'] = False
    root['allOf'] = [
        {'if': {'properties': {'model_type': {'const': n}}, 'required': ['model_type']},
         'then': {'properties': {
             'train': {'anyOf': [_ref(trains[n].__name__), NULL]} if n in trains else {},
             'val': {'anyOf': [_ref(vals[n].__name__), NULL]},
             **(defs[tops[n].__name__]['properties'] if n in tops else {})}}}
        for n in sorted(vals)
    ]
    return {'$schema': 'https://json-schema.org/draft/2020-12/schema', **root, 'title': 'gfpgan option file',
            '$defs': defs}
