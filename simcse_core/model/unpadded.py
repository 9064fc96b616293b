"""The unpadded forward pass: BERT's dense layers run on the real tokens of a batch only.

A batch of 64 STS-B sentences padded to its longest holds about 45 % real tokens; the padded forward spends the
rest of its embedding, projection, feed-forward, dropout and LayerNorm work on padding that no pooler reads.
:func:`pooled_forward` packs the real tokens of a (B, T) batch into one (N, H) matrix, runs every
token-wise layer on it, and scatters into padded (B, T) form only where sentences meet: the attention scores
(masked by padding, cheap next to the dense layers at T <= 32) and the pooler, so that
:mod:`simcse_core.model.pooling` stays the only pooling code. Measured on MiniLM, 2 x 64 STS-B sentences, bf16
autocast, forward + backward: 2.7x faster than the padded forward (``bench/train_speed.py``).

The result equals the padded Hugging Face forward up to floating-point rounding (tested in fp32 and under
bf16 autocast, outputs and gradients, for every pooler), with dropout drawn on real tokens only: in train
mode the masks differ from the padded forward's, but every real activation is dropped with the same
probability, independently, as before. It reads the weights of a Hugging Face ``BertModel`` (MiniLM,
SimCSE's BERT checkpoints) or ``RobertaModel``; :func:`unsupported_reason` says why another model keeps the
padded path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from simcse_core.model.pooling import Pooler

# The packed matrix's rows are rounded up to a multiple of this with padding tokens. oneDNN (bf16 matmuls on the
# CPU) compiles and keeps kernels per tensor shape; with a new token count at nearly every step, three runs of 60
# steps of raw-bert (batch 64) left 620 MiB in the process after they were freed; rounded up to 64, 142 MiB, and
# the runs took 11 % less time (bench/results/packed_shapes.json).
TOKEN_MULTIPLE = 64


@dataclass(frozen=True)
class Packing:
    """Where the tokens a packed batch computes sit in the flattened (B*T) form of its (B, T) batch: its real
    tokens, row after row, then as many of its padding tokens as round their number up to
    :data:`TOKEN_MULTIPLE` (all of them, if fewer). The padding tokens are never attended to (``key_mask``) and
    no pooler reads them: every real token's state is the same as without them."""

    index: torch.Tensor  # (N,) positions in the flattened batch: the real tokens first, row after row
    batch: int  # B
    length: int  # T
    key_mask: torch.Tensor  # (B, 1, 1, T) True where a key is a real token (for attention)

    @classmethod
    def of(cls, attention_mask: torch.Tensor, multiple: int | None = None) -> Packing:
        multiple = multiple or TOKEN_MULTIPLE
        batch, length = attention_mask.shape
        keep = attention_mask.bool()  # (B, T)
        flat = keep.reshape(-1)  # (B*T,)
        index = flat.nonzero().squeeze(1)  # (R,) the real tokens
        rounded = min(-(-index.numel() // multiple) * multiple, flat.numel())
        if rounded > index.numel():
            filler = (~flat).nonzero().squeeze(1)[: rounded - index.numel()]  # padding tokens
            index = torch.cat([index, filler])  # (N,)
        return cls(index=index, batch=batch, length=length, key_mask=keep[:, None, None, :])

    def pad(self, packed: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (B, T, ...) with zeros at padding; differentiable."""
        flat = packed.new_zeros((self.batch * self.length, *packed.shape[1:]))  # (B*T, ...)
        flat = flat.index_copy(0, self.index, packed)
        return flat.view(self.batch, self.length, *packed.shape[1:])

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """(B, T, ...) -> (N, ...): the real tokens only."""
        return padded.reshape(self.batch * self.length, *padded.shape[2:]).index_select(0, self.index)


# An attention function: (packed q, k, v (N, heads, d), packing, dropout probability, scale) -> (N, heads, d).
Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Packing, float, float], torch.Tensor]


def padded_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: Packing, dropout: float, scale: float
) -> torch.Tensor:
    """Attention of each sentence over its own real tokens: re-pad to (B, T), masked softmax, unpad.

    Written out (matmul, softmax, dropout) rather than ``scaled_dot_product_attention``: on a 2-core CPU in
    training (dropout on, boolean mask) it was measured faster (``bench/train_speed.py``, 'attention').
    """
    qkv = packing.pad(torch.stack([q, k, v], dim=1))  # (B, T, 3, heads, d)
    q_, k_, v_ = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, T, d)
    scores = (q_ @ k_.transpose(-1, -2)) * scale  # (B, heads, T, T)
    scores = scores.masked_fill(~packing.key_mask, float("-inf"))  # padding keys get no weight
    weights = F.dropout(scores.softmax(dim=-1), dropout, training=dropout > 0)  # (B, heads, T, T)
    return packing.unpad((weights @ v_).transpose(1, 2))  # (N, heads, d)


# Architectures whose layers are BERT's (same modules, same order); they differ in position numbering only.
_SUPPORTED = ("BertModel", "RobertaModel")
# What pooled_forward reads, as attribute paths: of the model, of its embeddings, and of every layer. A
# transformers release that renames one of them sends the model down the padded path instead of failing.
_MISSING = object()
_MODEL_READS = ("config", "embeddings", "encoder.layer")
_EMBEDDING_READS = ("word_embeddings", "token_type_embeddings", "position_embeddings", "LayerNorm", "dropout")
_LAYER_READS = (
    "attention.self.query", "attention.self.key", "attention.self.value", "attention.self.dropout.p",
    "attention.self.attention_head_size", "attention.self.scaling", "attention.output.dense",
    "attention.output.dropout", "attention.output.LayerNorm", "intermediate.dense", "intermediate.intermediate_act_fn",
    "output.dense", "output.dropout", "output.LayerNorm",
)


def unsupported_reason(model: nn.Module) -> str | None:
    """Why :func:`pooled_forward` cannot run ``model``, or ``None`` when it can.

    Checked when an encoder is built: the class, the configuration, and that every attribute
    :func:`pooled_forward` reads is there (so a transformers upgrade that moves one falls back to the padded
    forward, which the encoder logs once, instead of failing in training).
    """
    name = type(model).__name__
    if name not in _SUPPORTED or not type(model).__module__.startswith("transformers."):
        return f"{name} is not one of the transformers classes {', '.join(_SUPPORTED)}"
    missing = _missing(model, _MODEL_READS)
    if missing:
        return f"{name} has no {missing}"
    missing = _missing(model.embeddings, _EMBEDDING_READS)
    if missing:
        return f"{name}'s embeddings have no {missing}"
    for k, layer in enumerate(model.encoder.layer):
        missing = _missing(layer, _LAYER_READS)
        if missing:
            return f"{name}'s layer {k} has no {missing}"
    config = model.config
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return "the model is a decoder"
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return f"position embeddings are {config.position_embedding_type!r}, not absolute"
    if not isinstance(model.encoder.layer[0].intermediate.intermediate_act_fn, nn.Module):
        return "the feed-forward activation is not a module"
    return None


def _missing(obj: object, paths: tuple[str, ...]) -> str | None:
    """The first of the dotted attribute ``paths`` that ``obj`` lacks, or None."""
    for path in paths:
        value = obj
        for part in path.split("."):
            value = getattr(value, part, _MISSING)
            if value is _MISSING:
                return path
    return None


def pooled_forward(
    model: nn.Module,
    pooler: Pooler,
    batch: Mapping[str, torch.Tensor],
    attention: Attention = padded_attention,
) -> torch.Tensor:
    """Pooled sentence vectors (B, D) of a padded batch, computed on its real tokens only.

    Same result as ``pooler(model(**batch))`` for a ``BertModel`` (see :func:`unsupported_reason`); runs in
    whatever autocast context the caller set; dropout follows ``model.training``.
    """
    packing = Packing.of(batch["attention_mask"])
    hidden = _embed(model.embeddings, batch, packing)  # (N, H)
    states = [hidden]
    for layer in model.encoder.layer:
        hidden = _layer(layer, hidden, packing, attention)  # (N, H)
        states.append(hidden)
    mask = batch["attention_mask"]
    if pooler.needs_hidden_states:
        padded = [packing.pad(s) if s is not None else None for s in _needed(pooler, states)]
        return pooler(padded[-1], mask, padded)
    if pooler.name in ("cls", "cls_before_pooler"):
        return pooler(_first_tokens(hidden, mask), mask[:, :1])  # (B, 1, H) is all a [CLS] pooler reads
    return pooler(packing.pad(hidden), mask)


def _embed(embeddings: nn.Module, batch: Mapping[str, torch.Tensor], packing: Packing) -> torch.Tensor:
    input_ids = batch["input_ids"]  # (B, T)
    ids = input_ids.reshape(-1).index_select(0, packing.index)  # (N,)
    padding_idx = getattr(embeddings, "padding_idx", None)
    if padding_idx is None:  # BERT: the column of each token
        positions = packing.index % packing.length  # (N,)
    else:  # RoBERTa (fairseq): padding_idx + the rank of each non-pad token in its row
        ranks = torch.cumsum(input_ids.ne(padding_idx), dim=1)  # (B, T)
        positions = ranks.reshape(-1).index_select(0, packing.index) + padding_idx  # (N,)
    token_types = batch.get("token_type_ids")
    if token_types is None:
        token_types = torch.zeros_like(ids)
    else:
        token_types = token_types.reshape(-1).index_select(0, packing.index)  # (N,)
    x = embeddings.word_embeddings(ids) + embeddings.token_type_embeddings(token_types)  # (N, H)
    x = x + embeddings.position_embeddings(positions)
    return embeddings.dropout(embeddings.LayerNorm(x))


def _layer(layer: nn.Module, x: torch.Tensor, packing: Packing, attention: Attention) -> torch.Tensor:
    heads = layer.attention.self
    n, d = x.shape[0], heads.attention_head_size
    q = heads.query(x).view(n, -1, d)  # (N, heads, d)
    k = heads.key(x).view(n, -1, d)
    v = heads.value(x).view(n, -1, d)
    p = heads.dropout.p if heads.training else 0.0
    context = attention(q, k, v, packing, p, heads.scaling).reshape(n, -1)  # (N, H)
    out = layer.attention.output
    x = out.LayerNorm(out.dropout(out.dense(context)) + x)  # (N, H)
    inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(x))  # (N, I)
    out = layer.output
    return out.LayerNorm(out.dropout(out.dense(inner)) + x)  # (N, H)


def _needed(pooler: Pooler, states: list[torch.Tensor]) -> list[torch.Tensor | None]:
    """The hidden states a layer-averaging pooler reads ([1], [-2], [-1]); the others are left out."""
    keep = {1, len(states) - 2, len(states) - 1}
    return [s if k in keep else None for k, s in enumerate(states)]


def _first_tokens(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, H) packed states -> (B, 1, H): the first token of each sentence (its [CLS]; real tokens come first)."""
    starts = torch.cumsum(mask.sum(dim=1), dim=0) - mask.sum(dim=1)  # (B,) packed row of each first token
    return hidden.index_select(0, starts).unsqueeze(1)  # (B, 1, H)
