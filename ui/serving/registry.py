"""The base models every visitor reads: a bounded LRU keyed by one canonical name per model.

Shared read-only by every session (Gradio shares what is built at start-up); nobody trains these encoders:
training works on ``Encoder.copy()``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from simcse_core.model.catalogue import ModelNotAvailableError
from ui.serving.config import StudioConfig, canonical_model_name
from ui.serving.errors import InputError, shorten

logger = logging.getLogger(__name__)


class ModelRegistry:
    """Base encoders shared read-only by every session: an LRU of at most ``config.max_models`` models.

    Keys are canonical names, so eight spellings of one folder are one entry. Poolers of one model share its
    transformer weights (:meth:`Encoder.with_pooler`). The registry lock is never held while a model loads:
    each model has its own loading lock, so a slow download blocks only those who asked for that model.
    """

    def __init__(self, config: StudioConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._models: OrderedDict[str, dict[str, Any]] = OrderedDict()  # name -> {pooler: Encoder}
        self._loading: dict[str, threading.Lock] = {}
        self._pinned = canonical_model_name(config.model)  # the base model is never evicted

    def get(self, name: str, pooler: str):
        """The shared encoder for ``name`` with ``pooler`` (ModelNotAvailableError if it cannot load)."""
        name = canonical_model_name(name)
        with self._lock:
            found = self._lookup(name, pooler)
            if found is not None:
                return found
            loading = self._loading.setdefault(name, threading.Lock())
        with loading:  # one load per model; other models and loaded ones are not blocked
            with self._lock:
                found = self._lookup(name, pooler)
                sibling = next(iter(self._models[name].values())) if name in self._models else None
            if found is not None:
                return found
            encoder = sibling.with_pooler(pooler) if sibling is not None else self._load(name, pooler)
            encoder.eval()
            with self._lock:
                self._models.setdefault(name, {})[pooler] = encoder
                self._models.move_to_end(name)
                self._evict()
            return encoder

    def _lookup(self, name: str, pooler: str):
        poolers = self._models.get(name)
        if poolers is None or pooler not in poolers:
            return None
        self._models.move_to_end(name)
        return poolers[pooler]

    def _evict(self) -> None:
        while len(self._models) > max(1, self.config.max_models):
            victim = next((n for n in self._models if n != self._pinned), None)
            if victim is None:
                return
            del self._models[victim]
            logger.info("Dropped model %s from memory (at most %d kept)", victim, self.config.max_models)

    def _load(self, name: str, pooler: str):
        from simcse_core.model.loading import load_encoder

        folder = Path(name)
        if name != self._pinned and folder.is_absolute() and not any(folder.glob("*.safetensors")):
            # A visitor's folder (--allow-local-models) loads from safetensors only: a pickled checkpoint
            # (pytorch_model.bin) can run code when it is read.
            raise ModelNotAvailableError(f"The model '{shorten(name)}' has no .safetensors weights; only "
                                         "safetensors files are loaded from folders visitors choose.")
        try:
            return load_encoder(name, pooler=pooler, device=self.config.device, precision=self.config.precision)
        except (ModelNotAvailableError, InputError):
            raise
        except Exception as err:  # damaged weights, unsupported architecture: the visitor's choice, not a bug
            logger.exception("Model %s failed to load", name)
            raise ModelNotAvailableError(f"The model '{shorten(name)}' could not be loaded: its files are damaged "
                                         "or it is not a supported model.") from err

    def is_loaded(self, name: str) -> bool:
        """Whether some pooler of ``name`` is in memory."""
        with self._lock:
            return canonical_model_name(name) in self._models

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._models)
