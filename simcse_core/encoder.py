"""The encoder: tokenizer + transformer + pooler, with ``encode``, a train-mode forward, ``copy`` and ``save``."""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from simcse_core.models import (
    DEFAULT_MODEL,
    SIMCSE_CONFIG_NAME,
    ModelNotAvailableError,
    ModelSource,
    explain_hub_failure,
    hub_offline,
    resolve_model,
)
from simcse_core.pooling import POOLERS, Pooler, PoolerName
from simcse_core.runtime import Device, Precision, resolve_device, resolve_precision
from simcse_core.unpadded import pooled_forward, unsupported_reason

logger = logging.getLogger(__name__)

POOLER_WEIGHTS_NAME = "simcse_pooler.safetensors"
# Attribute names that hold dropout probabilities in common transformer configs.
_DROPOUT_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout")
# Poolers that sentence-transformers' Pooling module reproduces exactly at test time.
_ST_POOLING_MODE = {"mean": "pooling_mode_mean_tokens", "cls_before_pooler": "pooling_mode_cls_token"}


@dataclass(frozen=True)
class EncoderConfig:
    """How an encoder was built; saved beside its weights."""

    name_or_path: str  # the model it was loaded from (a short name, folder or hub id)
    pooler: PoolerName = "mean"  # see simcse_core.pooling.POOLERS
    max_length: int = 32  # tokens per sentence, longer ones are truncated (the paper uses 32)
    mlp_only_train: bool = False  # cls pooler: MLP head in training only (the paper's unsup setting)
    dropout: float | None = None  # None keeps the model's own dropout probabilities
    precision: Precision = "auto"  # "auto": bf16 autocast where the hardware has fast bf16, else fp32


class Encoder(nn.Module):
    """A sentence encoder. Build it with :func:`load_encoder`."""

    def __init__(self, model: nn.Module, tokenizer, pooler: Pooler, config: EncoderConfig, device: torch.device):
        super().__init__()
        self.model = model
        self.pooler = pooler
        self.tokenizer = tokenizer
        self.config = config
        self.device = device
        self.autocast_dtype = resolve_precision(config.precision, device)
        reason = unsupported_reason(model)  # None: train on real tokens only (simcse_core.unpadded)
        if reason is not None:
            logger.info("Training %s on padded batches: %s.", config.name_or_path, reason)
        self.unpadded_training = reason is None
        self.to(device)
        self.eval()

    @property
    def dim(self) -> int:
        """Size of a sentence vector."""
        return int(self.model.config.hidden_size)

    @property
    def description(self) -> str:
        """One line naming the model and pooler, for tables and logs."""
        return f"{self.config.name_or_path} [{self.config.pooler}]"

    def tokenize(self, sentences: Sequence[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Tokenize a batch with padding to its longest sentence; tensors are on the encoder's device.

        ``max_length`` overrides the encoder's own (the trainer's ``TrainConfig.max_length``).
        """
        batch = self.tokenizer(
            list(sentences),
            padding=True,
            truncation=True,
            max_length=max_length or self.config.max_length,
            return_tensors="pt",
        )
        return {key: value.to(self.device) for key, value in batch.items()}

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Pooled, un-normalised sentence vectors (B, D) in float32.

        In train mode (``encoder.train()``) dropout is on, so two calls on the same batch give the two
        "views" of unsupervised SimCSE; in eval mode the result is deterministic. Training runs BERT models
        on the real tokens only (:mod:`simcse_core.unpadded`, same result, less work).
        """
        enabled = self.autocast_dtype is not None
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=enabled):
            if self.training and self.unpadded_training:
                return pooled_forward(self.model, self.pooler, batch).float()  # (B, D)
            out = self.model(
                **batch, output_hidden_states=self.pooler.needs_hidden_states, return_dict=True
            )
            pooled = self.pooler(out.last_hidden_state, batch["attention_mask"], out.hidden_states)
        return pooled.float()  # (B, D)

    @torch.inference_mode()
    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 64,
        normalize: bool = True,
        max_length: int | None = None,
    ) -> np.ndarray:
        """Encode sentences to a float32 array (N, D), in input order.

        ``max_length`` overrides the encoder's token limit for this call (evaluation encodes whole sentences).

        Sentences are sorted by token length inside so that each batch pads little; the model is put in
        eval mode for the call and returned to the mode it was in.
        """
        if isinstance(sentences, str):
            sentences = [sentences]
        sentences = list(sentences)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1.")
        if not sentences:
            return np.zeros((0, self.dim), dtype=np.float32)
        was_training = self.training
        self.eval()
        try:
            limit = max_length or self.config.max_length
            ids = self.tokenizer(sentences, truncation=True, max_length=limit)["input_ids"]
            order = np.argsort([-len(x) for x in ids], kind="stable")
            out = np.empty((len(sentences), self.dim), dtype=np.float32)
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                vectors = self(self.tokenize([sentences[i] for i in idx], max_length=limit))  # (b, D)
                if normalize:
                    vectors = nn.functional.normalize(vectors, dim=-1)
                out[idx] = vectors.cpu().numpy()
        finally:
            self.train(was_training)
        return out

    def similarity(self, a: str | Sequence[str] | np.ndarray, b: str | Sequence[str] | np.ndarray) -> np.ndarray:
        """Cosine similarity matrix (len(a), len(b)); each side may be sentences or vectors.

        When both sides are sentences they are encoded in one call, each distinct sentence once.
        """
        if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
            a, b = [a] if isinstance(a, str) else list(a), [b] if isinstance(b, str) else list(b)
            unique = list(dict.fromkeys(a + b))
            vectors = self.encode(unique, normalize=True)  # (U, D)
            row = {s: k for k, s in enumerate(unique)}
            return vectors[[row[s] for s in a]] @ vectors[[row[s] for s in b]].T
        x = _as_unit_vectors(self, a)
        y = _as_unit_vectors(self, b)
        return x @ y.T

    def copy(self) -> Encoder:
        """A private, independent copy (weights and pooler), sharing the read-only tokenizer."""
        return Encoder(copy.deepcopy(self.model), self.tokenizer, copy.deepcopy(self.pooler), self.config,
                       self.device)

    def with_pooler(self, pooler: PoolerName, mlp_only_train: bool = False) -> Encoder:
        """The same weights seen through another pooler (shares the transformer, so no copy is made)."""
        new_pooler = Pooler(pooler, self.dim, mlp_only_train=mlp_only_train)
        if pooler == "cls" and self.pooler.name == "cls" and self.pooler.mlp is not None:
            new_pooler.mlp.load_state_dict(self.pooler.mlp.state_dict())
        config = replace(self.config, pooler=pooler, mlp_only_train=mlp_only_train)
        return Encoder(self.model, self.tokenizer, new_pooler, config, self.device)

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Save weights (safetensors), tokenizer and pooler settings to ``folder``.

        The layout is also a sentence-transformers model folder for the ``mean`` and ``cls_before_pooler``
        poolers (and ``cls`` with the MLP used in training only), so ``SentenceTransformer(folder)`` gives the
        same vectors. :func:`load_encoder` reads the pooler back from ``simcse_config.json``.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        settings = {"format_version": 1, **asdict(self.config)}
        (folder / SIMCSE_CONFIG_NAME).write_text(json.dumps(settings, indent=2), encoding="utf-8")
        if self.pooler.mlp is not None:
            from safetensors.torch import save_file

            state = {k: v.detach().cpu().contiguous() for k, v in self.pooler.state_dict().items()}
            save_file(state, str(folder / POOLER_WEIGHTS_NAME))
        _write_sentence_transformers_files(self, folder)
        logger.info("Saved %s to %s", self.description, folder)
        return folder


def _as_unit_vectors(encoder: Encoder, x: str | Sequence[str] | np.ndarray) -> np.ndarray:
    if isinstance(x, np.ndarray):
        vectors = np.atleast_2d(x).astype(np.float32, copy=False)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
    return encoder.encode(x, normalize=True)


def _write_sentence_transformers_files(encoder: Encoder, folder: Path) -> None:
    name = encoder.config.pooler
    if name == "cls" and encoder.config.mlp_only_train:
        name = "cls_before_pooler"
    mode = _ST_POOLING_MODE.get(name)
    if mode is None:
        logger.info("Pooler %s has no sentence-transformers equivalent; only this app loads it.", name)
        return
    pooling = {key: False for key in (
        "pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
        "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")}
    pooling[mode] = True
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": encoder.dim, **pooling}, indent=2), encoding="utf-8")
    (folder / "2_Normalize").mkdir(exist_ok=True)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": encoder.config.max_length, "do_lower_case": False}), encoding="utf-8")


def _read_saved_settings(source: ModelSource) -> dict:
    path = Path(source.location) / SIMCSE_CONFIG_NAME
    if not source.is_local or not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelNotAvailableError(f"{path} is damaged and cannot be read: {err}") from err


def load_encoder(
    name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
    pooler: PoolerName | None = None,
    device: Device = "auto",
    max_length: int | None = None,
    dropout: float | None = None,
    *,
    mlp_only_train: bool | None = None,
    precision: Precision = "auto",
) -> Encoder:
    """Load a sentence encoder.

    Args:
        name_or_path: ``"minilm"`` (the bundled all-MiniLM-L6-v2), a local model folder, or a hub id (online).
        pooler: one of :data:`simcse_core.pooling.POOLERS`. ``None`` means the pooler a model saved by this
            project was trained with (read from its folder), else ``"mean"``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        max_length: tokens per sentence; ``None`` means the saved value, else 32 (the paper's).
        dropout: dropout probability for the transformer; ``None`` keeps the model's own.
        mlp_only_train: for ``cls``: use the MLP head in training only. ``None``: the saved value, else False.
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"`` (autocast).

    Raises:
        ModelNotAvailableError: the model is not on this machine and cannot be downloaded.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    source = resolve_model(name_or_path)
    saved = _read_saved_settings(source)
    chosen_pooler = pooler or saved.get("pooler", "mean")
    if pooler and saved and pooler != saved.get("pooler"):
        logger.warning("%s was trained with pooler %s; using %s as asked.", source.name, saved["pooler"], pooler)
    if chosen_pooler not in POOLERS:
        raise ValueError(f"Unknown pooler {chosen_pooler!r}; choose one of {', '.join(POOLERS)}.")
    if mlp_only_train is None:
        mlp_only_train = bool(saved.get("mlp_only_train", False)) if chosen_pooler == saved.get("pooler") else False
    config = EncoderConfig(
        name_or_path=source.name,
        pooler=chosen_pooler,
        max_length=int(max_length or saved.get("max_length") or 32),
        mlp_only_train=mlp_only_train,
        dropout=dropout,
        precision=precision,
    )
    if config.max_length < 2:
        raise ValueError("max_length must be at least 2 tokens.")

    local_only = source.is_local or hub_offline()
    try:
        hf_config = AutoConfig.from_pretrained(source.location, local_files_only=local_only, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(
            source.location, local_files_only=local_only, trust_remote_code=False)
        if dropout is not None:
            for field in _DROPOUT_FIELDS:
                if hasattr(hf_config, field):
                    setattr(hf_config, field, dropout)
        kwargs = {"add_pooling_layer": False} if hf_config.model_type in ("bert", "roberta") else {}
        model = AutoModel.from_pretrained(
            source.location, config=hf_config, local_files_only=local_only, trust_remote_code=False, **kwargs)
    except (OSError, ValueError) as err:
        if source.kind == "hub":
            raise explain_hub_failure(source, err) from err
        raise ModelNotAvailableError(f"Cannot load the model in {source.location}: {err}") from err

    head = Pooler(config.pooler, int(hf_config.hidden_size), mlp_only_train=config.mlp_only_train)
    weights = Path(source.location) / POOLER_WEIGHTS_NAME
    if head.mlp is not None and source.is_local and weights.is_file() and saved.get("pooler") == "cls":
        from safetensors.torch import load_file

        head.load_state_dict(load_file(str(weights)))
    encoder = Encoder(model, tokenizer, head, config, resolve_device(device))
    logger.info("Loaded %s on %s (autocast %s)", encoder.description, encoder.device, encoder.autocast_dtype)
    return encoder
