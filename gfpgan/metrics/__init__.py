"""Metrics; every `*_metric.py` module here registers its functions in METRIC_REGISTRY."""
from __future__ import annotations

import copy
from typing import Any

from gfpgan.utils.option_schema import METRIC_BETTER_KEY
from gfpgan.utils.registry import METRIC_REGISTRY

__all__ = ['METRIC_REGISTRY', 'calculate_metric']


def calculate_metric(data: dict, opt: dict) -> Any:
    """Upstream semantics: call `METRIC_REGISTRY.get(opt['type'])(**data, **rest_of_opt)`."""
    opt = copy.deepcopy(opt)
    metric_type = opt.pop('type')
    opt.pop(METRIC_BETTER_KEY, None)  # BasicSR's best-value direction (checked by the validator): not an argument
    return METRIC_REGISTRY.get(metric_type)(**data, **opt)
