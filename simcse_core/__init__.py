"""simcse_core: the SimCSE engine behind SimCSE Studio (no UI code here).

The short public imports (``from simcse_core import load_encoder, train, TrainConfig``) load their modules on
first use, so a process that needs only numpy code (the map worker, ``simcse_core.worker``) never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "DEFAULT_MODEL": "simcse_core.model.catalogue",
    "ModelNotAvailableError": "simcse_core.model.catalogue",
    "Encoder": "simcse_core.model.encoder",
    "EncoderConfig": "simcse_core.model.encoder",
    "load_encoder": "simcse_core.model.loading",
    "POOLERS": "simcse_core.model.pooling",
    "TrainConfig": "simcse_core.training.train",
    "TrainEvent": "simcse_core.training.train",
    "train": "simcse_core.training.train",
}
__all__ = ["DEFAULT_MODEL", "POOLERS", "Encoder", "EncoderConfig", "ModelNotAvailableError", "TrainConfig",
           "TrainEvent", "load_encoder", "train"]

if TYPE_CHECKING:
    from simcse_core.model.catalogue import DEFAULT_MODEL, ModelNotAvailableError
    from simcse_core.model.encoder import Encoder, EncoderConfig
    from simcse_core.model.loading import load_encoder
    from simcse_core.model.pooling import POOLERS
    from simcse_core.training.train import TrainConfig, TrainEvent, train


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'simcse_core' has no attribute {name!r}")
