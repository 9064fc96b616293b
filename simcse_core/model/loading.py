"""Loading an encoder: a model folder or hub id, its saved settings (``simcse_config.json``), its pooler head
(the checkpoint's own, a trained one, or a seeded random one) and the inference length it allows."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from torch import nn

from simcse_core.model.catalogue import (
    DEFAULT_MODEL,
    SIMCSE_CONFIG_NAME,
    ModelNotAvailableError,
    ModelSource,
    explain_hub_failure,
    hub_offline,
    resolve_model,
)
from simcse_core.model.dropout import set_dropout
from simcse_core.model.encoder import (
    POOLER_WEIGHTS_NAME,
    TOKEN_LIMIT_CAP,
    Encoder,
    EncoderConfig,
    make_pooler,
)
from simcse_core.model.pooling import DEFAULT_POOLER, PoolerName, check_pooler
from simcse_core.runtime import Device, Precision, resolve_device

logger = logging.getLogger(__name__)


def _saved_token_limit(saved: dict) -> int | None:
    version = saved.get("format_version", 1)
    value = saved.get("token_limit") if version >= 3 else saved.get("max_length") if version == 2 else None
    return value if isinstance(value, int) and value >= 2 else None


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
    token_limit: int | None = None,
    dropout: float | None = None,
    *,
    mlp_only_train: bool | None = None,
    precision: Precision = "auto",
) -> Encoder:
    """Load a sentence encoder.

    Args:
        name_or_path: ``"minilm"`` (the bundled all-MiniLM-L6-v2), a local model folder, or a hub id (online).
        pooler: one of :data:`simcse_core.model.pooling.POOLERS`. ``None`` means the pooler a model saved by this
            project was trained with (read from its folder), else :data:`~simcse_core.model.pooling.DEFAULT_POOLER`.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        token_limit: the inference limit in tokens; ``None`` means the saved value, else the model's own limit
            (:func:`model_token_limit`) capped at :data:`TOKEN_LIMIT_CAP`. Training cuts at its own length
            (``TrainConfig.max_length``).
        dropout: dropout probability for the transformer (:func:`~simcse_core.model.dropout.set_dropout`);
            ``None`` keeps the model's own.
        mlp_only_train: for ``cls``: use the MLP head in training only. ``None``: the saved value, else False.
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"`` (autocast).

    The ``cls`` pooler's MLP head is, in order: the head a model saved by this project was trained with, the
    checkpoint's own pooler layer (BERT's ``pooler.dense``: where the official SimCSE checkpoints keep their
    MLP), else a seeded random head; ``encoder.config.head`` says which.

    Raises:
        ModelNotAvailableError: the model is not on this machine and cannot be downloaded.
        ValueError: an unknown pooler, a token limit below 2 or a dropout rate out of range.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    source = resolve_model(name_or_path)
    saved = _read_saved_settings(source)
    chosen_pooler = check_pooler(pooler or saved.get("pooler", DEFAULT_POOLER))
    if pooler and saved and pooler != saved.get("pooler"):
        logger.warning("%s was trained with pooler %s; using %s as asked.", source.name, saved["pooler"], pooler)
    if mlp_only_train is None:
        mlp_only_train = bool(saved.get("mlp_only_train", False)) if chosen_pooler == saved.get("pooler") else False
    if token_limit is not None and (not isinstance(token_limit, int) or token_limit < 2):
        raise ValueError(f"token_limit must be at least 2 tokens, got {token_limit!r}.")

    local_only = source.is_local or hub_offline()
    try:
        hf_config = AutoConfig.from_pretrained(source.location, local_files_only=local_only, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(
            source.location, local_files_only=local_only, trust_remote_code=False)
        model, info = AutoModel.from_pretrained(
            source.location, config=hf_config, local_files_only=local_only, trust_remote_code=False,
            output_loading_info=True)
    except (OSError, ValueError) as err:
        if source.kind == "hub":
            raise explain_hub_failure(source, err) from err
        raise ModelNotAvailableError(f"Cannot load the model in {source.location}: {err}") from err
    checkpoint_head = _take_checkpoint_head(model, info)
    if dropout is not None:
        dropout = set_dropout(model, dropout)

    own_head = None
    weights = Path(source.location) / POOLER_WEIGHTS_NAME
    if source.is_local and weights.is_file() and saved.get("pooler") == "cls":
        from safetensors.torch import load_file

        own_head = load_file(str(weights))
    head_state, head_source = (own_head, "trained") if own_head is not None else (checkpoint_head, "checkpoint")
    head, head_source = make_pooler(chosen_pooler, int(hf_config.hidden_size), config_mlp_only_train(
        chosen_pooler, mlp_only_train), head_state, head_source)
    config = EncoderConfig(
        name_or_path=source.name,
        pooler=chosen_pooler,
        token_limit=int(token_limit or _saved_token_limit(saved) or model_token_limit(hf_config, tokenizer, source)),
        mlp_only_train=head.mlp_only_train,
        dropout=dropout,
        precision=precision,
        head=head_source,
    )
    encoder = Encoder(model, tokenizer, head, config, resolve_device(device), checkpoint_head=checkpoint_head)
    logger.info("Loaded %s on %s (autocast %s, inference limit %d tokens, head: %s)", encoder.description,
                encoder.device, encoder.autocast_dtype, config.token_limit, config.head)
    return encoder


def config_mlp_only_train(pooler: str, mlp_only_train: bool) -> bool:
    """``mlp_only_train`` means something for the ``cls`` pooler only; False for every other pooler."""
    return bool(mlp_only_train) if pooler == "cls" else False


def model_token_limit(hf_config, tokenizer, source: ModelSource | None = None) -> int:
    """The model's own token limit, capped at :data:`TOKEN_LIMIT_CAP`.

    The smallest of: sentence-transformers' ``max_seq_length`` (the length the sentence model was trained
    for) when the folder has one, the tokenizer's ``model_max_length``, and the position embeddings.
    """
    limits = [TOKEN_LIMIT_CAP]
    positions = getattr(hf_config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions - (2 if getattr(hf_config, "model_type", "") in ("roberta", "xlm-roberta") else 0))
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 2 <= tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    if source is not None and source.is_local:
        st_config = Path(source.location) / "sentence_bert_config.json"
        try:
            st_limit = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
        except (OSError, json.JSONDecodeError, AttributeError):
            st_limit = None
        if isinstance(st_limit, int) and st_limit >= 2:
            limits.append(st_limit)
    return min(limits)


def _take_checkpoint_head(model: nn.Module, loading_info: dict) -> dict[str, torch.Tensor] | None:
    """The checkpoint's pooler layer (dense + tanh) as a :class:`Pooler` state dict, or None.

    BERT-family models carry a ``pooler.dense`` trained with next-sentence prediction (or, in the official
    SimCSE checkpoints, the SimCSE MLP moved there by ``simcse_to_huggingface.py``). It stays in the model,
    so a saved copy keeps it. When the checkpoint lacks it, transformers initialises it randomly (unseeded)
    and lists it as missing: then it is removed and there is no checkpoint head.
    """
    layer = getattr(model, "pooler", None)
    dense = getattr(layer, "dense", None)
    if not isinstance(dense, nn.Linear):
        return None
    missing = set(loading_info.get("missing_keys", ()))
    if any(key.endswith("pooler.dense.weight") for key in missing):
        model.pooler = None  # random, and the model's forward would compute it for nothing
        return None
    return {"mlp.0.weight": dense.weight.detach().clone(), "mlp.0.bias": dense.bias.detach().clone()}
