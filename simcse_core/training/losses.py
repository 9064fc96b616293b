"""The SimCSE contrastive loss (Gao, Yao & Chen, EMNLP 2021, eq. 1 and eq. 5)."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from simcse_core.training.config import check_setting, setting_spec

TEMPERATURE = setting_spec("temperature").default  # τ: TrainConfig's default, the paper's
HARD_NEGATIVE_WEIGHT = setting_spec("hard_negative_weight").default  # α: TrainConfig's default


def simcse_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    hard_negatives: torch.Tensor | None = None,
    temperature: float = TEMPERATURE,
    hard_negative_weight: float = HARD_NEGATIVE_WEIGHT,
) -> torch.Tensor:
    """SimCSE's contrastive (InfoNCE) loss with in-batch negatives, averaged over the batch.

    For anchor ``h_i``, positive ``h_i+`` and optional hard negative ``h_i-``::

        loss_i = -log  e^{cos(h_i, h_i+)/τ} / ( Σ_j e^{cos(h_i, h_j+)/τ} + Σ_j e^{cos(h_i, h_j-)/τ} )

    where τ is the ``temperature``. Unsupervised SimCSE passes two dropout views of the same batch as
    ``z1`` and ``z2``; supervised SimCSE passes (anchor, entailment) and the contradiction as the hard
    negative. sentence-transformers' ``MultipleNegativesRankingLoss`` is the same loss with
    ``scale = 1/τ`` (its default ``scale=20`` is τ = 0.05).

    ``hard_negative_weight`` is the weight α itself: anchor i's OWN hard negative term becomes
    ``α · e^{cos(h_i, h_i-)/τ}``, i.e. ``log α`` is added to that one logit; the other rows' hard negatives
    keep weight 1. (The official SimCSE code's ``--hard_negative_weight`` is ``log α``, added to the logit
    directly; its 0 is our 1.0.)

    Args:
        z1: anchor vectors (B, D), not necessarily normalised.
        z2: positive vectors (B, D); row i is the positive of anchor i.
        hard_negatives: hard-negative vectors (B, D), row i belongs to anchor i, or ``None``.
        temperature: τ; the cosine similarities are divided by it (its range: ``setting_spec("temperature")``).
        hard_negative_weight: α, the weight of each anchor's own hard negative (``setting_spec(...)`` too).

    Returns:
        The mean loss over the batch, a scalar tensor.

    Raises:
        ValueError: shapes do not match (SettingError: temperature or weight outside its range).
    """
    logits = simcse_logits(z1, z2, hard_negatives, temperature, hard_negative_weight)  # (B, C)
    labels = torch.arange(z1.shape[0], device=z1.device)  # (B,) positive of row i is column i
    return F.cross_entropy(logits, labels)


def simcse_logits(
    z1: torch.Tensor,
    z2: torch.Tensor,
    hard_negatives: torch.Tensor | None = None,
    temperature: float = TEMPERATURE,
    hard_negative_weight: float = HARD_NEGATIVE_WEIGHT,
) -> torch.Tensor:
    """The logits (B, C) of :func:`simcse_loss`: cosine / τ against the C = B positives (+ B hard negatives),
    with ``log α`` added to each anchor's own hard negative. Row i's target is column i. Checks its inputs."""
    _check(z1, z2, hard_negatives, temperature, hard_negative_weight)
    z1 = F.normalize(z1.float(), dim=-1)  # (B, D)
    candidates = z2 if hard_negatives is None else torch.cat([z2, hard_negatives], dim=0)  # (B or 2B, D)
    candidates = F.normalize(candidates.float(), dim=-1)  # (C, D)
    logits = z1 @ candidates.T / temperature  # (B, C): cosine / τ
    if hard_negatives is not None and hard_negative_weight != 1.0:
        batch = z1.shape[0]
        own = torch.arange(batch, device=z1.device)  # (B,)
        bonus = torch.zeros_like(logits)  # (B, 2B)
        bonus[own, batch + own] = math.log(hard_negative_weight)
        logits = logits + bonus  # (B, 2B)
    return logits


def chance_loss(batch_size: int, hard_negatives: bool = False) -> float:
    """The loss of a model that cannot tell the candidates apart: ln(number of candidates per anchor).

    A uniform softmax over the ``batch_size`` positives (plus ``batch_size`` hard negatives in supervised mode)
    gives each anchor probability 1/C on its positive, so the loss is ln C: where random guessing sits.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    return math.log(batch_size * (2 if hard_negatives else 1))


def _check(
    z1: torch.Tensor,
    z2: torch.Tensor,
    hard_negatives: torch.Tensor | None,
    temperature: float,
    hard_negative_weight: float,
) -> None:
    if z1.dim() != 2 or z1.shape[0] < 1:
        raise ValueError(f"z1 must be a (batch, dim) matrix with at least one row, got {tuple(z1.shape)}.")
    if z2.shape != z1.shape:
        raise ValueError(f"z2 must have the same shape as z1 {tuple(z1.shape)}, got {tuple(z2.shape)}.")
    if hard_negatives is not None and hard_negatives.shape != z1.shape:
        shape = tuple(hard_negatives.shape)
        raise ValueError(f"hard_negatives must have the same shape as z1 {tuple(z1.shape)}, got {shape}.")
    check_setting("temperature", temperature)
    check_setting("hard_negative_weight", hard_negative_weight)
