"""SimCSE's mechanisms made visible on a real encoder: dropout twins and the inside of the loss.

- :func:`dropout_twins`: sentences encoded twice in training mode at a chosen dropout rate give two different
  vectors (cosine below 1), and twice in evaluation mode give the same vector. This is the whole "data
  augmentation" of unsupervised SimCSE.
- :func:`dropout_views` + :func:`loss_anatomy`: for a small batch, the cosine matrix between the two views
  (and the hard-negative block in supervised mode), each row's softmax at temperature τ, each row's loss and
  the batch loss, which is :func:`simcse_core.training.losses.simcse_loss` of the same vectors.

The shared encoder is never changed: the work is done on a *private view* (:func:`private_view`), a copy of
the module tree that shares every weight tensor with the original (nothing is copied but a few small Python
objects) and has its own train/eval flags and dropout rates. So the many request threads that read the shared
base model at the same time are never affected, and no lock is needed beyond the tokenizer's own.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch.nn import functional as F

from simcse_core.model.dropout import set_dropout
from simcse_core.training.config import setting_spec
from simcse_core.training.losses import HARD_NEGATIVE_WEIGHT, TEMPERATURE, chance_loss, simcse_logits

if TYPE_CHECKING:
    from simcse_core.model.encoder import Encoder

MAX_BATCH = 32  # the loss panel is for a small batch a person can read
MIN_BATCH = 2  # one anchor needs at least one in-batch negative
# Training's settings, as TrainConfig defaults them: the views are made the way training makes them.
DROPOUT = setting_spec("dropout").default
TRAIN_MAX_LENGTH = setting_spec("max_length").default  # tokens per sentence in training (not the inference limit)


def private_view(encoder: Encoder, dropout: float | None = None) -> Encoder:
    """A copy of ``encoder`` that shares its weights but has its own mode flags and dropout rates.

    The transformer and pooler are copied with ``copy.deepcopy`` with every parameter and buffer pre-entered in
    its memo, so the module tree is new and the tensors are the original's. Changing the view's ``training``
    flag or an ``nn.Dropout.p`` leaves the original untouched; changing a weight in place would change both
    (nothing here does: the views run under ``torch.inference_mode``). The tokenizer is shared: the encoder's
    :class:`~simcse_core.model.encoder.GuardedTokenizer` makes each call under a lock (a bare fast tokenizer keeps
    its padding settings as state, and threads whose calls differ would see each other's).

    Args:
        encoder: the (possibly shared) encoder.
        dropout: if given, set on the view's transformer (:func:`simcse_core.model.dropout.set_dropout`).

    Raises:
        SettingError: ``dropout`` is outside TrainConfig's dropout range.
    """
    from simcse_core.model.encoder import Encoder

    memo = {id(t): t for t in itertools.chain(encoder.parameters(), encoder.buffers())}
    model, pooler = copy.deepcopy(encoder.model, memo), copy.deepcopy(encoder.pooler, memo)
    view = Encoder(model, encoder.tokenizer, pooler, encoder.config, encoder.device,
                   checkpoint_head=encoder.checkpoint_head, inference=encoder.inference)  # same weights
    if dropout is not None:
        set_dropout(view.model, dropout)
    return view


@contextlib.contextmanager
def _seeded(seed: int | None):
    """Draw dropout masks from ``seed`` (and restore the global generator after) or, with None, as they come.

    torch has one CPU generator per process: with a seed, a training run in another thread may see a few of
    its random numbers repeated (its masks stay random; nothing else changes).
    """
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _check_sentences(sentences: Sequence[str], what: str) -> list[str]:
    if isinstance(sentences, str):
        sentences = [sentences]
    items = [s.strip() if isinstance(s, str) else s for s in sentences]
    if not items:
        raise ValueError(f"Give at least one {what}.")
    for k, item in enumerate(items, start=1):
        if not isinstance(item, str) or not item:
            raise ValueError(f"{what.capitalize()} {k} is empty; type a sentence.")
    return items


@dataclass(frozen=True)
class DropoutTwins:
    """Each sentence encoded twice: in training mode (dropout on) and in evaluation mode (dropout off)."""

    sentences: tuple[str, ...]
    dropout: float  # the dropout rate of the training-mode passes
    twin_cosines: tuple[float, ...]  # per sentence: cos(view 1, view 2) in training mode; below 1 when p > 0
    eval_cosines: tuple[float, ...]  # per sentence: the same in evaluation mode (1 up to rounding)
    eval_identical: bool  # evaluation mode gave bit-identical vectors for every sentence
    nearest_other: tuple[float, ...] | None  # per sentence: highest eval-mode cosine to ANOTHER sentence

    @property
    def mean_twin_cosine(self) -> float:
        """The average twin cosine in training mode."""
        return float(np.mean(self.twin_cosines))


@torch.inference_mode()
def dropout_twins(
    encoder: Encoder,
    sentences: str | Sequence[str],
    dropout: float = DROPOUT,
    seed: int | None = 0,
    max_length: int = TRAIN_MAX_LENGTH,
) -> DropoutTwins:
    """Encode each sentence twice in training mode and twice in evaluation mode; compare the twins.

    The two training-mode views come from one forward call on the batch stacked on itself, as in training
    (each row gets its own dropout mask). ``encoder`` itself is not changed (see :func:`private_view`).

    Args:
        encoder: any encoder (the shared base model is fine).
        sentences: one sentence or a few (at most :data:`MAX_BATCH`).
        dropout: dropout rate of the training-mode passes (its range: ``setting_spec("dropout")``).
        seed: seed of the dropout masks (same seed, same twins); None draws fresh masks.
        max_length: tokens per sentence (the training length).

    Raises:
        ValueError: no sentence, an empty one, too many, or a dropout rate out of range.
    """
    items = _check_sentences(sentences, "sentence")
    if len(items) > MAX_BATCH:
        raise ValueError(f"At most {MAX_BATCH} sentences at once, got {len(items)}.")
    view = private_view(encoder, dropout)
    tokens = view.tokenize(items, token_limit=max_length)  # each (N, T)
    twin = _twin_cosines(view, tokens, seed)  # (N,)
    view.eval()
    e1, e2 = view(_stacked(tokens)).chunk(2)  # (N, D) each, no dropout
    same = F.cosine_similarity(e1, e2, dim=-1)  # (N,)
    nearest = None
    if len(items) > 1:
        unit = F.normalize(e1, dim=-1)  # (N, D)
        cos = unit @ unit.T  # (N, N)
        cos.fill_diagonal_(-math.inf)
        nearest = tuple(float(v) for v in cos.max(dim=1).values)
    return DropoutTwins(tuple(items), float(dropout), tuple(float(v) for v in twin), tuple(float(v) for v in same),
                        bool(torch.equal(e1, e2)), nearest)


def _stacked(tokens: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: torch.cat([value, value]) for key, value in tokens.items()}  # each (2N, T)


def _twin_cosines(view: Encoder, tokens: dict[str, torch.Tensor], seed: int | None) -> torch.Tensor:
    """cos(view 1, view 2) per sentence: one training-mode call on the batch stacked on itself (own masks)."""
    view.train()
    with _seeded(seed):
        z1, z2 = view(_stacked(tokens)).chunk(2)  # (N, D) each, different masks
    return F.cosine_similarity(z1, z2, dim=-1)  # (N,)


@torch.inference_mode()
def twin_drift(
    encoder: Encoder,
    sentences: str | Sequence[str],
    rates: Sequence[float],
    seed: int | None = 0,
    max_length: int = TRAIN_MAX_LENGTH,
) -> list[float]:
    """Mean twin cosine (training mode) at each dropout rate: how far the twins drift as the rate grows.

    One private view, one tokenization, one training-mode call per rate.
    """
    items = _check_sentences(sentences, "sentence")
    view = private_view(encoder)
    tokens = view.tokenize(items, token_limit=max_length)  # each (N, T)
    means = []
    for rate in rates:
        set_dropout(view.model, rate)
        means.append(float(_twin_cosines(view, tokens, seed).mean()))
    return means


# --- inside the loss ---------------------------------------------------------------------------------------

Mode = Literal["unsup", "sup"]


@dataclass(frozen=True)
class LossViews:
    """The vectors the loss sees for one batch: anchors, positives (and hard negatives), from training mode."""

    mode: Mode
    anchors: tuple[str, ...]  # row i
    positives: tuple[str, ...]  # column i: the positive of anchor i (unsup: the same sentence, second view)
    hard_negatives: tuple[str, ...] | None  # columns B..2B-1 in supervised mode with triplets
    z1: torch.Tensor  # (B, D) anchor vectors
    z2: torch.Tensor  # (B, D) positive vectors
    hard: torch.Tensor | None  # (B, D) hard-negative vectors, or None
    dropout: float

    @property
    def candidates(self) -> tuple[str, ...]:
        """The column labels: positives, then hard negatives."""
        return self.positives + (self.hard_negatives or ())


@torch.inference_mode()
def dropout_views(
    encoder: Encoder,
    batch: Sequence[str] | Sequence[tuple[str, ...]],
    dropout: float = DROPOUT,
    seed: int | None = 0,
    max_length: int = TRAIN_MAX_LENGTH,
) -> LossViews:
    """Encode a batch the way training does (training mode, dropout on) and keep the vectors.

    Unsupervised (``batch`` of sentences): each sentence twice, stacked in one call, so the two views differ
    by their dropout masks only. Supervised (``batch`` of (anchor, positive[, hard negative]) tuples): all
    columns in one call. ``encoder`` itself is not changed (see :func:`private_view`).

    Raises:
        ValueError: fewer than :data:`MIN_BATCH` or more than :data:`MAX_BATCH` examples, mixed or empty rows.
    """
    rows = list(batch)
    if not MIN_BATCH <= len(rows) <= MAX_BATCH:
        raise ValueError(f"The batch needs {MIN_BATCH} to {MAX_BATCH} examples (each anchor's negatives are the "
                         f"others), got {len(rows)}.")
    view = private_view(encoder, dropout)
    view.train()
    if all(isinstance(row, str) for row in rows):
        sentences = _check_sentences(rows, "sentence")
        tokens = view.tokenize(sentences, token_limit=max_length)  # each (B, T)
        stacked = {key: torch.cat([value, value]) for key, value in tokens.items()}  # each (2B, T)
        with _seeded(seed):
            z1, z2 = view(stacked).chunk(2)  # (B, D) each
        return LossViews("unsup", tuple(sentences), tuple(sentences), None, z1, z2, None, float(dropout))
    widths = {len(row) if isinstance(row, (tuple, list)) else 1 for row in rows}
    if len(widths) != 1 or widths.pop() not in (2, 3):
        raise ValueError("A supervised batch is (anchor, positive) or (anchor, positive, hard negative) rows, "
                         "all of the same width.")
    columns = [_check_sentences(list(column), "sentence") for column in zip(*rows)]
    tokens = view.tokenize([s for column in columns for s in column], token_limit=max_length)  # each (kB, T)
    with _seeded(seed):
        z = view(tokens)  # (kB, D)
    anchors, positives, *hard = z.chunk(len(columns))  # (B, D) each
    return LossViews("sup", tuple(columns[0]), tuple(columns[1]), tuple(columns[2]) if hard else None,
                     anchors, positives, hard[0] if hard else None, float(dropout))


@dataclass(frozen=True)
class LossAnatomy:
    """Every number of SimCSE's loss for one batch; ``loss`` equals ``simcse_loss`` of the same vectors."""

    cosines: np.ndarray  # (B, C) cos(anchor i, candidate j); C = B, or 2B with hard negatives
    logits: np.ndarray  # (B, C) cosine / τ, plus log α on each anchor's own hard negative
    probabilities: np.ndarray  # (B, C) softmax of each row: how sure the model is that column j is i's twin
    row_losses: np.ndarray  # (B,) −log probabilities[i, i]
    loss: float  # the mean of row_losses: the batch loss
    temperature: float  # τ
    hard_negative_weight: float  # α
    chance: float  # ln C: the loss of a model that cannot tell the candidates apart

    @property
    def correct(self) -> np.ndarray:
        """(B,) True where the row's highest probability is on its own positive."""
        return self.probabilities.argmax(axis=1) == np.arange(len(self.row_losses))


def loss_anatomy(
    z1: torch.Tensor,
    z2: torch.Tensor,
    hard_negatives: torch.Tensor | None = None,
    temperature: float = TEMPERATURE,
    hard_negative_weight: float = HARD_NEGATIVE_WEIGHT,
) -> LossAnatomy:
    """Break :func:`simcse_core.training.losses.simcse_loss` into its cosine matrix, row softmaxes and row losses.

    The logits are the loss's own (:func:`simcse_core.training.losses.simcse_logits`), so ``loss`` equals
    ``simcse_loss(z1, z2, hard_negatives, temperature, hard_negative_weight)``; the arguments are checked there.
    """
    with torch.no_grad():
        logits = simcse_logits(z1, z2, hard_negatives, temperature, hard_negative_weight)  # (B, C): the loss's own
        batch = logits.shape[0]
        labels = torch.arange(batch, device=logits.device)  # (B,)
        batch_loss = F.cross_entropy(logits, labels)  # exactly simcse_loss
        rows = F.cross_entropy(logits, labels, reduction="none")  # (B,)
        probabilities = logits.softmax(dim=-1)  # (B, C)
        candidates = z2 if hard_negatives is None else torch.cat([z2, hard_negatives], dim=0)  # (C, D)
        cosines = F.normalize(z1.float(), dim=-1) @ F.normalize(candidates.float(), dim=-1).T  # (B, C)
        logits, cosines, rows, probabilities = (t.cpu() for t in (logits, cosines, rows, probabilities))
    return LossAnatomy(cosines.numpy(), logits.numpy(), probabilities.numpy(), rows.numpy(), float(batch_loss),
                       float(temperature), float(hard_negative_weight),
                       chance_loss(batch, hard_negatives=hard_negatives is not None))


def anatomy_of(views: LossViews, temperature: float = TEMPERATURE,
               hard_negative_weight: float = HARD_NEGATIVE_WEIGHT) -> LossAnatomy:
    """:func:`loss_anatomy` of a batch's views (cheap: no encoding; a temperature slider calls it per move)."""
    return loss_anatomy(views.z1, views.z2, views.hard, temperature, hard_negative_weight)
