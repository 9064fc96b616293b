"""Interchange with the official SimCSE tool and sentence-transformers.

Export (``python -m simcse_core export``): a trained encoder is written the way the official
``simcse_to_huggingface.py`` publishes a model: a plain Hugging Face ``BertModel`` (or ``RobertaModel``) whose
pooler layer (dense + tanh on [CLS]) holds the training MLP head. So

- ``from simcse import SimCSE; SimCSE(folder, pooler=...)`` reads it (``pooler="cls"`` uses that layer's
  output, ``"cls_before_pooler"`` the raw [CLS] vector: the paper's unsupervised test setting);
- ``SentenceTransformer(folder)`` reads it too: the folder also holds sentence-transformers modules (CLS or
  mean pooling, and a Dense + Tanh module with the head when the head is used at test time);
- ``load_encoder(folder)`` reads it back with the pooler it was trained with.

Import: the official ``princeton-nlp/*-simcse-*`` checkpoints keep their MLP in BERT's pooler layer, which
:func:`simcse_core.model.loading.load_encoder` reads as the ``cls`` head. :func:`official_pooler` picks the pooler
they were trained with, by the official tool's rule: ``cls_before_pooler`` for unsupervised models (their
name says "unsup"), ``cls`` (with that head) for the others.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from simcse_core.model.catalogue import SIMCSE_CONFIG_NAME
from simcse_core.model.pooling import PoolerName

if TYPE_CHECKING:
    from simcse_core.model.encoder import Encoder

logger = logging.getLogger(__name__)

# Names of the official checkpoints: princeton-nlp/unsup-simcse-bert-base-uncased, .../sup-simcse-roberta-large.
_OFFICIAL_NAME = re.compile(r"(^|/)(unsup|sup)-simcse-", re.IGNORECASE)
# Poolers the official tool and sentence-transformers can both reproduce.
EXPORTABLE_POOLERS: tuple[str, ...] = ("cls", "cls_before_pooler", "mean")


def official_pooler(name_or_path: str | os.PathLike[str]) -> PoolerName | None:
    """The pooler an official SimCSE checkpoint was trained with, or None for any other model.

    A folder saved by this project (it has ``simcse_config.json``) is not official: its own saved pooler wins.
    """
    name = str(name_or_path).strip().rstrip("/")
    if not _OFFICIAL_NAME.search(name):
        return None
    path = Path(name).expanduser()
    if path.is_dir() and (path / SIMCSE_CONFIG_NAME).is_file():
        return None
    return "cls_before_pooler" if "unsup" in Path(name).name.lower() else "cls"


def load_official(name_or_path: str | os.PathLike[str], **kwargs) -> Encoder:
    """Load an official ``princeton-nlp/*-simcse-*`` checkpoint with the pooler it was trained with.

    ``kwargs`` go to :func:`simcse_core.model.loading.load_encoder` (device, precision, ...).

    Raises:
        ValueError: the name is not one of an official SimCSE checkpoint.
    """
    from simcse_core.model.loading import load_encoder

    pooler = official_pooler(name_or_path)
    if pooler is None:
        raise ValueError(f"{name_or_path} is not an official SimCSE checkpoint (princeton-nlp/unsup-simcse-... "
                         "or sup-simcse-...); load it with load_encoder and a pooler.")
    return load_encoder(name_or_path, pooler=pooler, **kwargs)


def export_simcse(encoder: Encoder, folder: str | os.PathLike[str]) -> Path:
    """Write ``encoder`` for the official SimCSE tool and sentence-transformers (see the module doc).

    Returns:
        The folder.

    Raises:
        ValueError: the pooler has no equivalent there (``avg_first_last``, ``avg_top2``), or the MLP head is
            needed at test time and the model family has no pooler layer to carry it.
    """
    from transformers import AutoModel

    name = encoder.pooler.name
    if name not in EXPORTABLE_POOLERS:
        raise ValueError(f"The {name} pooler has no equivalent in the official SimCSE tool or sentence-transformers; "
                         f"export works for {', '.join(EXPORTABLE_POOLERS)}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    head = encoder.pooler.mlp[0] if encoder.pooler.mlp is not None else None  # nn.Linear, or None
    hf_config = copy.deepcopy(encoder.model.config)
    has_pooler = getattr(encoder.model, "pooler", None) is not None
    try:
        model = AutoModel.from_config(hf_config, add_pooling_layer=head is not None or has_pooler)
    except TypeError:  # a family without a pooler layer
        if head is not None and not encoder.pooler.mlp_only_train:
            raise ValueError(f"{type(encoder.model).__name__} has no pooler layer to carry the MLP head the "
                             "cls pooler uses at test time; train with cls_before_pooler or mean to export.") from None
        model = AutoModel.from_config(hf_config)
    missing, unexpected = model.load_state_dict(encoder.model.state_dict(), strict=False)
    if unexpected or any(not key.startswith("pooler.") for key in missing):
        raise ValueError(f"Cannot copy the weights into {type(model).__name__}: missing {missing}, "
                         f"unexpected {unexpected}.")
    if head is not None and getattr(model, "pooler", None) is not None:
        model.pooler.dense.load_state_dict(head.state_dict())  # simcse_to_huggingface.py: "mlp" -> "pooler"
    model.save_pretrained(folder, safe_serialization=True)
    encoder.tokenizer.save_pretrained(folder)
    _write_sentence_transformers_modules(encoder, folder, head)
    from simcse_core.model.encoder import SETTINGS_FORMAT

    settings = {"format_version": SETTINGS_FORMAT, **asdict(encoder.config), "head": "checkpoint"}
    (folder / SIMCSE_CONFIG_NAME).write_text(json.dumps(settings, indent=2), encoding="utf-8")
    logger.info("Exported %s to %s (official tool: SimCSE(folder, pooler=%r))", encoder.description, folder,
                official_tool_pooler(encoder))
    return folder


def official_tool_pooler(encoder: Encoder) -> str:
    """The ``pooler`` argument of ``simcse.SimCSE`` that gives this encoder's test-time vectors."""
    if encoder.pooler.name == "cls" and not encoder.pooler.mlp_only_train:
        return "cls"
    if encoder.pooler.name in ("cls", "cls_before_pooler"):
        return "cls_before_pooler"
    return "none (the official tool has only cls and cls_before_pooler; use sentence-transformers)"


def _write_sentence_transformers_modules(encoder: Encoder, folder: Path, head: nn.Linear | None) -> None:
    """Transformer -> Pooling (CLS or mean) [-> Dense + Tanh with the head], saved by sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models

    dim = encoder.dim
    transformer = models.Transformer(str(folder), max_seq_length=encoder.config.token_limit)
    modes = {"cls": "cls", "cls_before_pooler": "cls", "mean": "mean"}
    modules = [transformer, models.Pooling(dim, pooling_mode=modes[encoder.pooler.name])]
    if head is not None and not encoder.pooler.mlp_only_train:
        modules.append(models.Dense(dim, dim, activation_function=nn.Tanh(),
                                    init_weight=head.weight.detach().cpu().clone(),
                                    init_bias=head.bias.detach().cpu().clone()))
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))
