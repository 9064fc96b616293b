"""Training-free baselines and the spectrum, against direct computations."""

from __future__ import annotations

import numpy as np
import pytest

from simcse_core.evaluation.sets import ScoredPairs
from simcse_core.teaching import baselines

SENTENCES = ["the man plays the guitar", "a woman reads a book", "the dog runs in the park", "the cat eats fish"]


def test_static_average_is_the_mean_of_the_pieces_input_rows(tiny_encoder):
    vectors = baselines.static_average(tiny_encoder, SENTENCES)
    table = tiny_encoder.model.get_input_embeddings().weight.detach().numpy()
    ids = tiny_encoder.tokenizer(SENTENCES[0], add_special_tokens=False)["input_ids"]
    np.testing.assert_allclose(vectors[0], np.mean([table[i] for i in ids], axis=0), rtol=1e-5)


def test_whitening_makes_the_fitted_covariance_the_identity():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6)) + 3.0  # correlated, off-centre
    white = baselines.fit_whitening(vectors)(vectors)
    np.testing.assert_allclose(white.mean(axis=0), 0, atol=1e-8)
    np.testing.assert_allclose(np.cov(white.T), np.eye(6), atol=1e-3)  # eps keeps tiny variances finite


def test_spectrum_of_a_cone_has_one_dominant_direction():
    rng = np.random.default_rng(1)
    spread = rng.normal(size=(200, 16))
    cone = spread * 0.1 + np.ones(16) * 3
    flat, narrow = baselines.singular_spectrum(spread), baselines.singular_spectrum(cone)
    assert flat[0] == narrow[0] == 1 and np.all(np.diff(flat) <= 1e-12)
    assert narrow[1] < 0.2 < flat[1]


def test_spearman_of_matches_a_hand_computation():
    pairs = ScoredPairs("t", ("a", "b", "c"), ("b", "c", "a"), (3.0, 1.0, 2.0), "test", False)
    table = {"a": np.array([1.0, 0.0]), "b": np.array([1.0, 1.0]), "c": np.array([0.0, 1.0])}
    rho = baselines.spearman_of(lambda ss: np.stack([table[s] for s in ss]), pairs)
    # cosines: a-b 0.707, b-c 0.707, c-a 0: ranks (2.5, 2.5, 1) against (3, 1, 2)
    from scipy.stats import spearmanr

    assert rho == pytest.approx(spearmanr([0.7071, 0.7071, 0.0], [3.0, 1.0, 2.0])[0] * 100, abs=1e-3)
