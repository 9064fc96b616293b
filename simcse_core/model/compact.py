"""A read-only fine-tuned model that stores only the word-embedding rows its training changed.

Fine-tuning updates a word-embedding row only when its token occurs in a training batch: with AdamW and no
weight decay on it (the paper's and :class:`~simcse_core.training.train.TrainConfig`'s default), a row whose gradient
was always zero keeps its first and second moments at zero, so its update is exactly zero. A run on the
bundled sentences touches their 1,691 distinct tokens of all-MiniLM-L6-v2's 30,522 rows, yet the table is
half of the model's weights. :func:`share_unchanged_rows` replaces the table of a kept copy by a
:class:`SharedRowsEmbedding`: the base model's table (one tensor for every session) plus the changed rows.
Lookups give exactly the rows the full table would.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn import functional as F

logger = logging.getLogger(__name__)


class SharedRowsEmbedding(nn.Module):
    """An embedding table stored as a shared base table plus the rows where it differs from it."""

    def __init__(self, base: torch.Tensor, rows: torch.Tensor, values: torch.Tensor, padding_idx: int | None):
        super().__init__()
        self.register_buffer("base", base, persistent=False)  # (V, H), shared with the base model: never written
        self.register_buffer("values", values)  # (R, H): the changed rows, in increasing row order
        slot = torch.full((base.shape[0],), -1, dtype=torch.long, device=base.device)  # (V,) row -> k, or -1
        slot[rows] = torch.arange(len(rows), device=base.device)
        self.register_buffer("slot", slot)
        self.padding_idx = padding_idx

    @property
    def weight(self) -> torch.Tensor:
        """The full table (V, H), made on demand (for code that reads ``.weight``)."""
        table = self.base.clone()
        table[self.slot >= 0] = self.values
        return table

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = F.embedding(ids, self.base, self.padding_idx)  # (..., H)
        k = self.slot[ids]  # (...,) index into values, or -1
        hit = k >= 0
        out[hit] = self.values[k[hit]]
        return out


def share_unchanged_rows(model: nn.Module, base: nn.Module) -> int | None:
    """Store ``model``'s word embeddings as ``base``'s table plus the rows that differ; how many differ.

    Both models must hold the table in the same dtype and shape (``None`` and nothing changed otherwise).
    ``model`` is then for inference only (see :func:`materialize` to train it again).
    """
    table, base_table = _input_embedding(model), _input_embedding(base)
    if table is None or base_table is None:
        return None
    weight, base_weight = table.weight, base_table.weight
    if weight.shape != base_weight.shape or weight.dtype != base_weight.dtype or weight.device != base_weight.device:
        return None
    with torch.no_grad():
        rows = (weight != base_weight).any(dim=1).nonzero().squeeze(1)  # (R,)
        shared = SharedRowsEmbedding(base_weight.detach(), rows, weight[rows].clone(), table.padding_idx)
    model.set_input_embeddings(shared)
    logger.info("Kept %d of %d word-embedding rows; the others are the base model's.", len(rows), len(weight))
    return len(rows)


def materialize(model: nn.Module) -> None:
    """Give ``model`` back a full, trainable embedding table (undoes :func:`share_unchanged_rows`)."""
    table = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if isinstance(table, SharedRowsEmbedding):
        model.set_input_embeddings(nn.Embedding.from_pretrained(table.weight, freeze=False,
                                                                padding_idx=table.padding_idx))


def _input_embedding(model: nn.Module) -> nn.Embedding | None:
    table = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    return table if type(table) is nn.Embedding else None
