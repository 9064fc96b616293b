"""The encoder: tokenizer + transformer + pooler, with ``encode``, a train-mode forward, ``copy`` and ``save``."""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from simcse_core.model.catalogue import (
    SIMCSE_CONFIG_NAME,
)
from simcse_core.model.compact import materialize, share_unchanged_rows
from simcse_core.model.pooling import DEFAULT_POOLER, Pooler, PoolerName, check_pooler
from simcse_core.model.unpadded import pooled_forward, unsupported_reason
from simcse_core.runtime import Precision, resolve_precision

logger = logging.getLogger(__name__)

# Inference batches are padded to a multiple of this many tokens. oneDNN (bf16 matmuls on the CPU) keeps compiled
# kernels per tensor shape: 1,200 varied batches of MiniLM (1-8 sentences of 1-40 words) left 540 MiB in the
# process; padded to multiples of 8, 99 MiB, at the same speed (bench/results/packed_shapes.json).
PAD_MULTIPLE = 8

POOLER_WEIGHTS_NAME = "simcse_pooler.safetensors"
# Of simcse_config.json. 3: the inference limit is "token_limit"; 2: it was "max_length"; 1: "max_length" held
# the training length, which is not read back.
SETTINGS_FORMAT = 3
# Poolers that sentence-transformers' Pooling module reproduces exactly at test time.
_ST_POOLING_MODE = {"mean": "pooling_mode_mean_tokens", "cls_before_pooler": "pooling_mode_cls_token"}
# Longest input encoded at inference when the model allows more. The paper cuts sentences in TRAINING only
# (TrainConfig.max_length, the training length); its evaluation and its `simcse` tool encode whole sentences.
# 256 is all-MiniLM-L6-v2's own limit (sentence_bert_config.json) and covers a paragraph; encode() sorts by
# length, so the cap costs time only for inputs that are really that long.
TOKEN_LIMIT_CAP = 256
# Seed of a `cls` MLP head made for a checkpoint that has none (so two loads give the same head).
HEAD_SEED = 0
# A sentence whose unknown tokens cover at least this share of its text is "mostly unknown" to the model.
MOSTLY_UNKNOWN_SHARE = 0.5

HeadSource = Literal["none", "checkpoint", "trained", "random"]
HEAD_SOURCE_HELP: dict[str, str] = {
    "none": "no MLP head",
    "checkpoint": "the checkpoint's own trained pooler layer (dense + tanh)",
    "trained": "an MLP head trained in this project",
    "random": "a randomly initialised (seeded) MLP head: the checkpoint has none, so it is untrained",
}


@dataclass(frozen=True)
class EncoderConfig:
    """How an encoder was built; saved beside its weights."""

    name_or_path: str  # the model it was loaded from (a short name, folder or hub id)
    pooler: PoolerName = DEFAULT_POOLER  # see simcse_core.model.pooling.POOLERS
    # The inference limit: inputs are cut at this many tokens when encoding (sentence-transformers'
    # max_seq_length). Training cuts at its own length, TrainConfig.max_length.
    token_limit: int = TOKEN_LIMIT_CAP
    mlp_only_train: bool = False  # cls pooler: MLP head in training only (the paper's unsup setting)
    dropout: float | None = None  # None keeps the model's own dropout probabilities
    precision: Precision = "auto"  # "auto": bf16 where the hardware has it fast (training: autocast over fp32
    # weights; encode: a bf16 copy of the weights, see InferenceWeights), else fp32
    head: HeadSource = "none"  # cls pooler: where its MLP head's weights come from (HEAD_SOURCE_HELP)


@dataclass(frozen=True)
class TokenReport:
    """What the model actually reads of one sentence."""

    tokens: int  # word pieces, without the special tokens ([CLS], [SEP])
    kept: int  # word pieces read (the rest were cut at the inference limit, token_limit)
    unknown: int  # word pieces the vocabulary does not have (read as [UNK])
    unknown_share: float  # share of the sentence's non-space characters covered by unknown pieces (0..1)
    unknown_text: tuple[str, ...]  # the characters or words read as [UNK], in order, distinct
    truncated_text: str  # the part of the sentence that was cut ("" if none)

    @property
    def truncated(self) -> bool:
        return self.kept < self.tokens

    @property
    def mostly_unknown(self) -> bool:
        """True when the model cannot read most of the sentence (its vector then says little about it)."""
        return self.unknown_share >= MOSTLY_UNKNOWN_SHARE


class GuardedTokenizer:
    """A Hugging Face tokenizer shared by threads, every call made under one lock.

    A fast tokenizer keeps its padding and truncation settings in the Rust object and changes them on each
    call, so two threads calling with different settings can see each other's ("Unable to create tensor ...").
    Calls here hold a lock for the whole call; other attributes (ids, ``save_pretrained``) pass through.
    """

    def __init__(self, tokenizer) -> None:
        self.inner = tokenizer
        self._lock = threading.Lock()

    def __call__(self, *args, **kwargs):
        with self._lock:
            return self.inner(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


class InferenceWeights:
    """The weights ``encode`` reads: the model itself, or a copy of it in the inference precision.

    Where ``precision`` resolves to bf16, inference runs a bf16 copy of the weights without autocast, with
    written-out ("eager") attention on CPU: on 2 cores, STS-B dev+test encode 1.3x faster than under autocast
    with the fused attention kernel, Spearman within 0.01 (``bench/encode_speed.py``). Training keeps fp32
    weights (the optimizer needs them), so the copy is made on first use and kept until it is told that the
    weights changed: :meth:`forget`, called through :meth:`Encoder.weights_changed` by the trainer after every
    optimizer step. That call is the only signal; whoever else changes the weights in place must make it.
    Shared by the encoders :meth:`Encoder.with_pooler` makes (same transformer, one copy).
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype | None, device: torch.device) -> None:
        self.model = model
        self.dtype = dtype  # None: inference reads the model as it is, under its autocast setting (fp32)
        self.device = device
        self._copy: nn.Module | None = None  # made on first use, dropped by forget()
        self._lock = threading.Lock()

    @property
    def compact(self) -> bool:
        """True when the model's own weights are already in the inference precision (see ``Encoder.compact``)."""
        return self.dtype is not None and next(self.model.parameters()).dtype == self.dtype

    def get(self) -> nn.Module:
        """The module to run for inference (eval mode; never trained)."""
        if self.dtype is None or self.compact:
            return self.model
        with self._lock:
            if self._copy is None:
                self._copy = self.cast(copy.deepcopy(self.model))
            return self._copy

    def cast(self, model: nn.Module) -> nn.Module:
        """``model`` (changed in place) in the inference precision, eval mode, with its fastest attention here."""
        model.to(self.dtype).eval()
        if self.device.type == "cpu" and hasattr(model, "set_attn_implementation"):
            try:
                model.set_attn_implementation("eager")
            except (ValueError, ImportError) as err:  # a model without an eager path keeps its own
                logger.info("Keeping %s's attention implementation: %s", type(model).__name__, err)
        return model

    def forget(self) -> None:
        """Drop the copy: the weights changed (the next :meth:`get` copies them again), or the model itself is
        compact now."""
        with self._lock:
            self._copy = None


class Encoder(nn.Module):
    """A sentence encoder. Build it with :func:`simcse_core.model.loading.load_encoder`."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        pooler: Pooler,
        config: EncoderConfig,
        device: torch.device,
        checkpoint_head: dict[str, torch.Tensor] | None = None,
        inference: InferenceWeights | None = None,
    ):
        super().__init__()
        self.model = model
        self.pooler = pooler
        self.tokenizer = tokenizer if isinstance(tokenizer, GuardedTokenizer) else GuardedTokenizer(tokenizer)
        self.config = config
        self.device = device
        self.autocast_dtype = resolve_precision(config.precision, device)
        reason = unsupported_reason(model)  # None: train on real tokens only (simcse_core.model.unpadded)
        if reason is not None:
            logger.info("Training %s on padded batches: %s.", config.name_or_path, reason)
        self.unpadded_training = reason is None
        # The checkpoint's own pooler layer (BERT's dense + tanh), kept for `with_pooler("cls")`.
        self.checkpoint_head = checkpoint_head
        self._views: dict[tuple[str, bool], Encoder] = {}  # with_pooler results, made once each
        self._views_lock = threading.Lock()
        self.to(device)
        self.eval()
        # What encode() runs (shared with with_pooler's views, which read the same transformer).
        self.inference = inference or InferenceWeights(model, _inference_dtype(self.autocast_dtype), device)

    @property
    def dim(self) -> int:
        """Size of a sentence vector."""
        return int(self.model.config.hidden_size)

    @property
    def description(self) -> str:
        """One line naming the model and pooler, for tables and logs."""
        return f"{self.config.name_or_path} [{self.config.pooler}]"

    def tokenize(self, sentences: Sequence[str], token_limit: int | None = None) -> dict[str, torch.Tensor]:
        """Tokenize a batch with padding to its longest sentence; tensors are on the encoder's device.

        ``token_limit`` overrides the encoder's inference limit (the trainer passes ``TrainConfig.max_length``,
        the training length).
        """
        batch = self.tokenizer(
            list(sentences),
            padding=True,
            truncation=True,
            max_length=token_limit or self.config.token_limit,
            return_tensors="pt",
        )
        return {key: value.to(self.device) for key, value in batch.items()}

    def token_report(self, sentences: str | Sequence[str], token_limit: int | None = None) -> list[TokenReport]:
        """Per sentence: how many word pieces it has, how many are read, and which parts are unknown.

        ``token_limit`` is the limit to check against (default: the encoder's inference limit), counting the
        special tokens as the model does. Unknown pieces are those the tokenizer maps to its unknown token
        (emoji and most non-Latin scripts for an English vocabulary); their share is measured on the text.
        """
        if isinstance(sentences, str):
            sentences = [sentences]
        sentences = list(sentences)
        if not sentences:
            return []
        limit = token_limit or self.config.token_limit
        unk = self.tokenizer.unk_token_id
        special = self.tokenizer.num_special_tokens_to_add(pair=False)
        batch = self.tokenizer(sentences, add_special_tokens=False, return_offsets_mapping=True,
                               truncation=False, padding=False, verbose=False)
        reports = []
        for sentence, ids, offsets in zip(sentences, batch["input_ids"], batch["offset_mapping"]):
            kept = min(len(ids), max(0, limit - special))
            unknown_spans = [(a, b) for token, (a, b) in zip(ids, offsets) if unk is not None and token == unk]
            covered = sum(len(sentence[a:b].replace(" ", "")) for a, b in unknown_spans)
            letters = max(1, len("".join(sentence.split())))
            cut = sentence[offsets[kept][0]:].strip() if kept < len(ids) else ""
            reports.append(TokenReport(
                tokens=len(ids), kept=kept, unknown=len(unknown_spans), unknown_share=min(1.0, covered / letters),
                unknown_text=tuple(dict.fromkeys(sentence[a:b] for a, b in unknown_spans)), truncated_text=cut))
        return reports

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Pooled, un-normalised sentence vectors (B, D) in float32.

        In train mode (``encoder.train()``) dropout is on, so two calls on the same batch give the two
        "views" of unsupervised SimCSE; in eval mode the result is deterministic. Training runs BERT models
        on the real tokens only (:mod:`simcse_core.model.unpadded`, same result, less work).
        """
        enabled = self.autocast_dtype is not None
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=enabled):
            if self.training and self.unpadded_training:
                return pooled_forward(self.model, self.pooler, batch).float()  # (B, D)
            return self._pooled(self.model, batch)

    def _pooled(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The pooler over ``model``'s output; the pooler reads float32 states (B, D)."""
        out = model(**batch, output_hidden_states=self.pooler.needs_hidden_states, return_dict=True)
        states = out.hidden_states and tuple(h.float() for h in out.hidden_states)
        return self.pooler(out.last_hidden_state.float(), batch["attention_mask"], states).float()  # (B, D)

    def _inference_forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Pooled vectors (B, D) in eval mode from the inference weights (:class:`InferenceWeights`)."""
        if self.inference.dtype is None:
            return self(batch)  # the weights as they are, under the encoder's autocast setting
        return self._pooled(self.inference.get(), batch)

    @torch.inference_mode()
    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 64,
        normalize: bool = True,
        token_limit: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Encode sentences to a float32 array (N, D), in input order.

        ``token_limit`` overrides the encoder's inference limit for this call; ``progress`` is called as
        ``progress(done, total)`` after each batch.

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
            limit = token_limit or self.config.token_limit
            ids = self.tokenizer(sentences, truncation=True, max_length=limit)["input_ids"]  # tokenized once
            order = np.argsort([-len(x) for x in ids], kind="stable")
            out = np.empty((len(sentences), self.dim), dtype=np.float32)
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                vectors = self._inference_forward(self._pad([ids[i] for i in idx]))  # (b, D)
                if normalize:
                    vectors = nn.functional.normalize(vectors, dim=-1)
                out[idx] = vectors.cpu().numpy()
                if progress is not None:
                    progress(min(start + batch_size, len(order)), len(order))
        finally:
            self.train(was_training)
        return out

    def _pad(self, ids: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """A batch of token-id lists padded to its longest, rounded up to a multiple of :data:`PAD_MULTIPLE`
        (masked, so the vectors are the same), as the tokenizer would pad it, on the device."""
        batch = self.tokenizer.pad({"input_ids": list(ids)}, padding=True, pad_to_multiple_of=PAD_MULTIPLE,
                                   return_tensors="pt")
        if "token_type_ids" in self.tokenizer.model_input_names and "token_type_ids" not in batch:
            batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])  # one sentence: segment 0
        return {key: value.to(self.device) for key, value in batch.items()}

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

    def weights_changed(self) -> None:
        """Say that the transformer's weights were changed in place (the trainer calls this after each step).

        The next ``encode`` then makes its inference weights again (:class:`InferenceWeights`).
        """
        self.inference.forget()

    def copy(self) -> Encoder:
        """A private, independent copy (weights and pooler) in float32, sharing the read-only tokenizer.

        The copy is for training: a :meth:`compact` encoder's copy starts from its rounded weights.
        """
        model = copy.deepcopy(self.model)
        if self.inference.compact:
            materialize(model)
            model.float()
        return Encoder(model, self.tokenizer, copy.deepcopy(self.pooler), self.config, self.device,
                       checkpoint_head=self.checkpoint_head)

    def compact(self, base: Encoder | None = None) -> None:
        """Hold only what inference reads: the weights in its precision (bf16 where used), nothing twice.

        For a model that is only read from now on, such as a fine-tuned run kept for comparison: the fp32
        weights (and the separate inference copy) are dropped, halving its memory; with ``base``, the model it
        was fine-tuned from, the word-embedding rows training did not change are read from the base's
        inference weights instead of being stored again (:mod:`simcse_core.model.compact`; about half of what is
        left for all-MiniLM-L6-v2). Its vectors are those ``encode`` gave before. :meth:`save` it first to keep
        the float32 weights. No-op in fp32 inference.
        """
        if self.inference.dtype is None or self.inference.compact:
            return
        self.inference.forget()
        self.inference.cast(self.model)
        if base is not None and base.inference.dtype == self.inference.dtype:
            share_unchanged_rows(self.model, base.inference.get())

    def with_pooler(self, pooler: PoolerName, mlp_only_train: bool = False) -> Encoder:
        """The same weights seen through another pooler (shares the transformer, so no copy is made).

        Made once per (pooler, mlp_only_train) and reused, so asking twice gives the same encoder and the
        same vectors. A ``cls`` head comes from this encoder's own trained head, else the checkpoint's
        pooler layer, else a seeded random head (see :attr:`EncoderConfig.head`).
        """
        check_pooler(pooler)
        if pooler == self.config.pooler and (pooler != "cls" or mlp_only_train == self.config.mlp_only_train):
            return self
        key = (pooler, bool(mlp_only_train))
        with self._views_lock:
            if key not in self._views:
                if self.pooler.mlp is not None:  # this encoder's own head (trained here, or the checkpoint's)
                    state, source = self.pooler.state_dict(), self.config.head
                else:
                    state, source = self.checkpoint_head, "checkpoint"
                new_pooler, head = make_pooler(pooler, self.dim, mlp_only_train, state, source)
                config = replace(self.config, pooler=pooler, mlp_only_train=mlp_only_train, head=head)
                self._views[key] = Encoder(self.model, self.tokenizer, new_pooler, config, self.device,
                                           checkpoint_head=self.checkpoint_head, inference=self.inference)
            return self._views[key]

    def reset_views(self) -> None:
        """Forget the encoders :meth:`with_pooler` made (the trainer calls this when it changes the pooler)."""
        with self._views_lock:
            self._views.clear()

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Save weights (safetensors), tokenizer and pooler settings to ``folder``.

        The layout is also a sentence-transformers model folder for the ``mean`` and ``cls_before_pooler``
        poolers (and ``cls`` with the MLP used in training only), so ``SentenceTransformer(folder)`` gives the
        same vectors. :func:`simcse_core.model.loading.load_encoder` reads the pooler back from ``simcse_config.json``.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.inference.compact:
            raise ValueError("This encoder was compacted for inference (bf16 weights); save it before compact().")
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        settings = {"format_version": SETTINGS_FORMAT, **asdict(self.config)}
        (folder / SIMCSE_CONFIG_NAME).write_text(json.dumps(settings, indent=2), encoding="utf-8")
        if self.pooler.mlp is not None:
            from safetensors.torch import save_file

            state = {k: v.detach().cpu().contiguous() for k, v in self.pooler.state_dict().items()}
            save_file(state, str(folder / POOLER_WEIGHTS_NAME))
        _write_sentence_transformers_files(self, folder)
        logger.info("Saved %s to %s", self.description, folder)
        return folder


def _inference_dtype(autocast_dtype: torch.dtype | None) -> torch.dtype | None:
    """bf16 weights for inference where the encoder computes in bf16; otherwise the model as it is."""
    return torch.bfloat16 if autocast_dtype == torch.bfloat16 else None


def make_pooler(
    name: PoolerName,
    hidden_size: int,
    mlp_only_train: bool = False,
    head_state: Mapping[str, torch.Tensor] | None = None,
    head_source: HeadSource = "checkpoint",
) -> tuple[Pooler, HeadSource]:
    """A pooler and where its MLP head came from.

    For ``cls``: the head takes ``head_state`` (a Pooler state dict: ``mlp.0.weight``, ``mlp.0.bias``) when
    given, else a random head drawn from a generator seeded with :data:`HEAD_SEED`, so that the same model
    always gets the same head and no global random state is touched.
    """
    pooler = Pooler(name, hidden_size, mlp_only_train=mlp_only_train)
    if pooler.mlp is None:
        return pooler, "none"
    if head_state is not None:
        pooler.load_state_dict(dict(head_state))
        return pooler, head_source
    generator = torch.Generator().manual_seed(HEAD_SEED)
    dense = pooler.mlp[0]
    bound = 1.0 / hidden_size**0.5  # nn.Linear's own default initialisation, drawn from a seeded generator
    with torch.no_grad():
        dense.weight.copy_(torch.empty_like(dense.weight).uniform_(-bound, bound, generator=generator))
        dense.bias.copy_(torch.empty_like(dense.bias).uniform_(-bound, bound, generator=generator))
    logger.info("The cls pooler's MLP head is new and untrained (seeded with %d): the checkpoint has none.",
                HEAD_SEED)
    return pooler, "random"


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
        json.dumps({"max_seq_length": encoder.config.token_limit, "do_lower_case": False}), encoding="utf-8")
