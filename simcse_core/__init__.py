"""simcse_core: the SimCSE engine behind SimCSE Studio (no UI code here)."""

from __future__ import annotations

from simcse_core.encoder import Encoder, EncoderConfig, load_encoder
from simcse_core.models import DEFAULT_MODEL, ModelNotAvailableError
from simcse_core.pooling import POOLERS

__all__ = ["DEFAULT_MODEL", "POOLERS", "Encoder", "EncoderConfig", "ModelNotAvailableError", "load_encoder"]
