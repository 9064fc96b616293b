"""Embedding-quality metrics: STS Spearman, alignment, uniformity (Wang & Isola 2020) and anisotropy.

``alignment`` and ``uniformity`` follow the two-line definitions of SsnL/align_uniform, used by SimCSE
(Section 5). All vector metrics accept a numpy array or a torch tensor and L2-normalise it themselves.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional as F

if TYPE_CHECKING:
    from simcse_core.evaluation.sets import ScoredPairs
    from simcse_core.model.encoder import Encoder

logger = logging.getLogger(__name__)

# Evaluation encodes with the encoder's inference limit (EncoderConfig.token_limit, 256 for MiniLM): the paper
# truncates to 32 tokens in TRAINING only and evaluates whole sentences. The longest STS-B sentence is 46
# MiniLM tokens, so nothing is cut (at 32, 106 of STS-B test's 2,552 sentences are cut and MiniLM's 82.03
# drops to 81.80).

def _unit(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if x.dim() != 2:
        raise ValueError(f"Expected a (N, D) matrix of vectors, got shape {tuple(x.shape)}.")
    return F.normalize(x, dim=-1)  # (N, D)


def alignment(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, alpha: float = 2) -> float:
    """E ‖f(x) − f(x+)‖^α over positive pairs (row i of ``x`` with row i of ``y``); lower is better."""
    x, y = _unit(x), _unit(y)  # (N, D) each
    if x.shape != y.shape or x.shape[0] == 0:
        raise ValueError(f"alignment needs two equal, non-empty (N, D) matrices, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}.")
    return float((x - y).norm(dim=1).pow(alpha).mean())


def uniformity(x: np.ndarray | torch.Tensor, t: float = 2) -> float:
    """log E e^{−t‖f(x) − f(y)‖²} over all distinct pairs; lower (more negative) is more uniform."""
    x = _unit(x)  # (N, D)
    if x.shape[0] < 2:
        raise ValueError("uniformity needs at least two vectors.")
    return float(torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log())


def anisotropy(x: np.ndarray | torch.Tensor) -> float:
    """Mean cosine similarity over all distinct pairs (Ethayarajh 2019); near 0 is isotropic.

    Exact and O(N·D): for unit vectors, Σ_{i≠j} x_i·x_j = ‖Σ_i x_i‖² − N, so no pair is sampled.
    """
    x = _unit(x)  # (N, D)
    n = x.shape[0]
    if n < 2:
        raise ValueError("anisotropy needs at least two vectors.")
    total = x.sum(dim=0)  # (D,)
    return float((total @ total - n) / (n * (n - 1)))


def _encode(
    encoder: Encoder, pairs: ScoredPairs, batch_size: int, token_limit: int | None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Unit vectors (S, D) of the distinct sentences, each encoded once, and each sentence's row."""
    sentences = pairs.sentences()
    vectors = encoder.encode(sentences, batch_size=batch_size, normalize=True, token_limit=token_limit,
                             progress=progress)  # (S, D)
    return vectors, {s: k for k, s in enumerate(sentences)}


def _rows(vectors: np.ndarray, row: dict[str, int], sentences: tuple[str, ...]) -> np.ndarray:
    return vectors[[row[s] for s in sentences]]  # (N, D)


def _spearman(vectors: np.ndarray, row: dict[str, int], pairs: ScoredPairs) -> float:
    from scipy.stats import spearmanr

    first, second = _rows(vectors, row, pairs.sentence1), _rows(vectors, row, pairs.sentence2)  # (N, D) each
    cosines = (first * second).sum(axis=1)  # (N,) unit vectors, so dot product = cosine
    return float(spearmanr(cosines, np.asarray(pairs.scores)).statistic * 100)


def sts_spearman(
    encoder: Encoder, pairs: ScoredPairs, batch_size: int = 64, token_limit: int | None = None
) -> float:
    """Spearman correlation ×100 between cosine similarities and gold scores (the SimCSE STS metric).

    Sentences are encoded whole (up to ``token_limit`` tokens; default: the encoder's inference limit), not
    cut to the training length.
    """
    if len(pairs) < 2:
        raise ValueError("Spearman correlation needs at least two scored pairs.")
    vectors, row = _encode(encoder, pairs, batch_size, token_limit)
    return _spearman(vectors, row, pairs)


def embedding_report(
    encoder: Encoder,
    pairs: ScoredPairs,
    batch_size: int = 64,
    token_limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, float]:
    """Spearman, alignment, uniformity and anisotropy of ``encoder`` on one scored-pair set.

    Alignment is over the pairs scored above 4 (the paper's positives; NaN if there are none), uniformity and
    anisotropy over all distinct sentences of the set. Every sentence is encoded once; ``progress(done,
    total)`` is called after each encoded batch.
    """
    if len(pairs) < 2:
        raise ValueError("The report needs at least two scored pairs.")
    vectors, row = _encode(encoder, pairs, batch_size, token_limit, progress)
    positives = pairs.positives()
    if len(positives):
        align = alignment(_rows(vectors, row, positives.sentence1), _rows(vectors, row, positives.sentence2))
    else:
        logger.warning("%s has no pair scored above 4; alignment is undefined.", pairs.name)
        align = math.nan
    return {
        "spearman": _spearman(vectors, row, pairs),
        "alignment": align,
        "uniformity": uniformity(vectors),
        "anisotropy": anisotropy(vectors),
    }
