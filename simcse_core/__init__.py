"""simcse_core: the SimCSE engine behind SimCSE Studio (no UI code here)."""

from __future__ import annotations

from simcse_core.model.catalogue import DEFAULT_MODEL, ModelNotAvailableError
from simcse_core.model.encoder import Encoder, EncoderConfig
from simcse_core.model.loading import load_encoder
from simcse_core.model.pooling import POOLERS
from simcse_core.training.train import TrainConfig, TrainEvent, train

__all__ = ["DEFAULT_MODEL", "POOLERS", "Encoder", "EncoderConfig", "ModelNotAvailableError", "TrainConfig",
           "TrainEvent", "load_encoder", "train"]
