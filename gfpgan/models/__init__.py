"""Training recipes; every `*_model.py` module here registers its model class in MODEL_REGISTRY."""

from __future__ import annotations

from gfpgan.utils.registry import MODEL_REGISTRY

__all__ = ['MODEL_REGISTRY', 'build_model']


def build_model(opt: dict):
    """Build the model named by `opt['model_type']`; it receives the whole option tree."""
    model = MODEL_REGISTRY.get(opt['model_type'])(opt)
    from gfpgan.utils.logger import get_root_logger

    get_root_logger().info(f'Model [{type(model).__name__}] is created.')
    return model
