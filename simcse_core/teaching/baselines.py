"""Training-free baselines of the paper's Table 5, and the singular-value spectrum of Section 5.

- :func:`static_average`: the average of a sentence's input word-piece embeddings (no context), the role of
  Table 5's "GloVe embeddings (avg.)" row, here with the model's own static embedding table;
- :func:`fit_whitening`: BERT-whitening (Su et al., 2021; Table 5's "BERT-whitening" row): vectors centred
  and rotated-and-scaled so their covariance is the identity, fitted on unlabelled sentences (the lesson's),
  never on the pairs it is scored on;
- :func:`singular_spectrum`: the normalised singular values of a matrix of unit sentence vectors. The paper
  (Section 5, Appendix F) argues that the contrastive objective "flattens" this spectrum: an anisotropic space
  has one dominant direction.
- :func:`spearman_of`: STS Spearman x100 of any sentence -> vector function, so baselines are scored exactly as
  the encoder is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from simcse_core.evaluation.sets import ScoredPairs
    from simcse_core.model.encoder import Encoder


def static_average(encoder: Encoder, sentences: Sequence[str]) -> np.ndarray:
    """Each sentence as the mean of its word pieces' input embeddings (special pieces left out)."""
    table = encoder.model.get_input_embeddings().weight.detach().float().cpu().numpy()  # (V, H)
    special = set(encoder.tokenizer.all_special_ids)
    ids = encoder.tokenizer(list(sentences), add_special_tokens=False, truncation=True,
                            max_length=encoder.config.token_limit)["input_ids"]
    vectors = np.zeros((len(sentences), table.shape[1]), dtype=np.float32)
    for i, row in enumerate(ids):
        kept = [t for t in row if t not in special]
        if kept:
            vectors[i] = table[kept].mean(axis=0)
    return vectors


@dataclass(frozen=True)
class Whitening:
    """``(x - mean) @ transform``: a fitted whitening map."""

    mean: np.ndarray  # (H,)
    transform: np.ndarray  # (H, H)

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        return (vectors - self.mean) @ self.transform


def fit_whitening(vectors: np.ndarray, eps: float = 1e-6) -> Whitening:
    """The whitening of ``vectors`` (N, H): W = U diag(1/sqrt(s)) from the SVD of their covariance."""
    mean = vectors.mean(axis=0, keepdims=True)
    covariance = np.cov((vectors - mean).T)  # (H, H)
    u, s, _ = np.linalg.svd(covariance)
    return Whitening(mean, u @ np.diag(1.0 / np.sqrt(s + eps)))


def singular_spectrum(vectors: np.ndarray) -> np.ndarray:
    """Singular values of the matrix of unit vectors, divided by the largest (first value 1, non-increasing)."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    values = np.linalg.svd(unit, compute_uv=False)
    return values / values[0]


def spearman_of(embed: Callable[[Sequence[str]], np.ndarray], pairs: ScoredPairs) -> float:
    """Spearman x100 between the cosines of ``embed``'s vectors of each pair and the gold scores, computed by
    the same code as :func:`simcse_core.evaluation.metrics.sts_spearman`."""
    from simcse_core.evaluation.metrics import _spearman

    sentences = pairs.sentences()
    vectors = embed(sentences)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)  # unit: dot = cosine
    return _spearman(vectors, {s: k for k, s in enumerate(sentences)}, pairs)
