"""SRModel: BasicSR's name for the pixel/perceptual-loss recipe (MSRResNet, RRDBNet/ESRNet, ...).

The recipe is RestorationModel's (net_g, EMA when `train.ema_decay > 0`, `pixel_opt` and/or
`perceptual_opt`, validation on the EMA generator); this class gives it BasicSR's registered name and is
the base of the SR GAN recipes (srgan_model.py, esrgan_model.py, realesrgan_model.py).
"""

from __future__ import annotations

from gfpgan.models.restoration_model import RestorationModel
from gfpgan.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class SRModel(RestorationModel):
    """`network_g` maps `lq` to the `scale`-times larger `gt`; see RestorationModel."""
