"""Metrics against naive loops, their invariances, and STS-B Spearman of the real model."""

from __future__ import annotations

import csv
import math
import random

import numpy as np
import pytest
import torch

from simcse_core.evaluation.metrics import alignment, anisotropy, embedding_report, sts_spearman, uniformity
from simcse_core.evaluation.sets import ScoredPairs


def _unit_rows(x: np.ndarray) -> list[list[float]]:
    out = []
    for row in x.tolist():
        norm = math.sqrt(sum(v * v for v in row))
        out.append([v / norm for v in row])
    return out


def _sq_dist(u: list[float], v: list[float]) -> float:
    return sum((a - b) ** 2 for a, b in zip(u, v))


def _points(n: int = 12, dim: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32) + 0.3  # not centred


def test_alignment_matches_loop() -> None:
    x, y = _points(seed=1), _points(seed=2)
    ux, uy = _unit_rows(x), _unit_rows(y)
    for alpha in (1, 2, 3):
        expected = sum(math.sqrt(_sq_dist(a, b)) ** alpha for a, b in zip(ux, uy)) / len(ux)
        assert alignment(x, y, alpha=alpha) == pytest.approx(expected, abs=1e-6)


def test_uniformity_matches_double_loop() -> None:
    x = _points(n=10)
    ux = _unit_rows(x)
    for t in (1.0, 2.0):
        terms = [math.exp(-t * _sq_dist(ux[i], ux[j])) for i in range(len(ux)) for j in range(i + 1, len(ux))]
        assert uniformity(x, t=t) == pytest.approx(math.log(sum(terms) / len(terms)), abs=1e-6)


def test_anisotropy_matches_loop_on_small_input() -> None:
    x = _points(n=9)
    ux = _unit_rows(x)
    cosines = [sum(a * b for a, b in zip(ux[i], ux[j])) for i in range(9) for j in range(9) if i != j]
    assert anisotropy(x) == pytest.approx(sum(cosines) / len(cosines), abs=1e-6)


def test_anisotropy_exact_formula_matches_all_pairs_on_a_larger_set() -> None:
    x = _points(n=300, dim=8, seed=3)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = unit @ unit.T
    expected = (cos.sum() - np.trace(cos)) / (300 * 299)
    assert anisotropy(x) == pytest.approx(float(expected), abs=1e-6)


def test_metrics_are_invariant_to_scaling_and_accept_torch() -> None:
    x, y = _points(seed=4), _points(seed=5)
    scale = np.random.default_rng(0).uniform(0.1, 50, size=(len(x), 1)).astype(np.float32)
    assert alignment(x * scale, y * 7) == pytest.approx(alignment(x, y), abs=1e-6)
    assert uniformity(x * scale) == pytest.approx(uniformity(x), abs=1e-6)
    assert anisotropy(x * scale) == pytest.approx(anisotropy(x), abs=1e-6)
    assert uniformity(torch.from_numpy(x)) == pytest.approx(uniformity(x), abs=1e-6)
    assert isinstance(alignment(torch.from_numpy(x), torch.from_numpy(y)), float)


def test_identical_and_collapsed_vectors_hit_the_bounds() -> None:
    x = _points()
    assert alignment(x, x * 2) == pytest.approx(0.0, abs=1e-6)
    collapsed = np.ones((6, 4))
    assert uniformity(collapsed) == pytest.approx(0.0, abs=1e-6)
    assert anisotropy(collapsed) == pytest.approx(1.0, abs=1e-6)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="alignment"):
        alignment(_points(n=3), _points(n=4))
    with pytest.raises(ValueError, match="at least two"):
        uniformity(_points(n=1))
    with pytest.raises(ValueError, match="at least two"):
        anisotropy(_points(n=1))
    with pytest.raises(ValueError, match="matrix"):
        uniformity(np.zeros(5))


def _toy_pairs() -> ScoredPairs:
    # Each pair has its own pair of token counts, so no two cosines tie even when most words are [UNK]
    # (ties would make the rank comparison depend on float rounding).
    s1 = ("a man plays the guitar", "a dog runs in the park", "the stock fell", "a child reads a book",
          "a woman cooks food in the kitchen", "a man plays the guitar")
    s2 = ("the man is playing guitar now", "a cat eats", "the price of the stock rose today",
          "children read", "she cooks in the small kitchen", "birds sing in trees")
    scores = (4.8, 0.5, 2.0, 4.2, 3.5, 0.2)
    return ScoredPairs("toy", s1, s2, scores, source="test", is_benchmark=False)


def _rank(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):  # average ranks over ties
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def _pearson(a: list[float], b: list[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))


def test_sts_spearman_matches_manual_computation(tiny_encoder) -> None:
    pairs = _toy_pairs()
    cosines = [float(tiny_encoder.similarity([a], [b])[0, 0])
               for a, b in zip(pairs.sentence1, pairs.sentence2)]
    assert len(set(cosines)) == len(cosines)  # no ties
    expected = 100 * _pearson(_rank(cosines), _rank(list(pairs.scores)))
    assert sts_spearman(tiny_encoder, pairs, batch_size=2) == pytest.approx(expected, abs=1e-4)


def test_sts_spearman_encodes_each_distinct_sentence_once(tiny_encoder, monkeypatch) -> None:
    calls: list[list[str]] = []
    original = tiny_encoder.encode

    def counting_encode(sentences, *args, **kwargs):
        calls.append(list(sentences))
        return original(sentences, *args, **kwargs)

    monkeypatch.setattr(tiny_encoder, "encode", counting_encode)
    pairs = _toy_pairs()
    sts_spearman(tiny_encoder, pairs)
    encoded = [s for call in calls for s in call]
    assert sorted(encoded) == sorted(set(pairs.sentence1) | set(pairs.sentence2))


def test_embedding_report_matches_the_separate_metrics(tiny_encoder) -> None:
    pairs = _toy_pairs()
    report = embedding_report(tiny_encoder, pairs)
    assert set(report) == {"spearman", "alignment", "uniformity", "anisotropy"}
    vectors = tiny_encoder.encode(pairs.sentences())
    positives = pairs.positives()
    assert len(positives) == 2  # scores 4.8 and 4.2
    assert report["spearman"] == pytest.approx(sts_spearman(tiny_encoder, pairs), abs=1e-6)
    expected_alignment = alignment(tiny_encoder.encode(list(positives.sentence1)),
                                   tiny_encoder.encode(list(positives.sentence2)))
    assert report["alignment"] == pytest.approx(expected_alignment, abs=1e-5)
    assert report["uniformity"] == pytest.approx(uniformity(vectors), abs=1e-6)
    assert report["anisotropy"] == pytest.approx(anisotropy(vectors), abs=1e-6)


def test_embedding_report_without_positives_gives_nan_alignment(tiny_encoder) -> None:
    pairs = _toy_pairs()
    low = ScoredPairs("low", pairs.sentence1, pairs.sentence2, tuple(min(s, 3.0) for s in pairs.scores),
                      source="test", is_benchmark=False)
    assert math.isnan(embedding_report(tiny_encoder, low)["alignment"])


# Published STS-B test Spearman of all-MiniLM-L6-v2 (mean pooling, cosine): 82.03. Measured here (fp32):
# 82.03 at max_length 128 and 256 (the longest test sentence has 46 tokens), 81.80 at the
# encoder's default 32, where 106 of the 2,552 distinct sentences are truncated; so evaluation encodes
# whole sentences (metrics.EVAL_MAX_LENGTH).
MINILM_STSB_TEST = 82.0


@pytest.mark.slow
@pytest.mark.integration
def test_minilm_stsb_test_spearman_matches_published_figure(minilm, shared_stsb) -> None:
    with open(shared_stsb / "test.csv", encoding="utf-8", newline="") as f:
        rows = [(a, b, float(score)) for a, b, score in csv.reader(f)]
    pairs = ScoredPairs("STS-B test (shared copy)", tuple(r[0] for r in rows), tuple(r[1] for r in rows),
                        tuple(r[2] for r in rows), source=str(shared_stsb), is_benchmark=True)
    assert len(pairs) == 1379
    assert sts_spearman(minilm, pairs) == pytest.approx(MINILM_STSB_TEST, abs=0.3)  # EVAL_MAX_LENGTH tokens


def test_rank_helper_handles_ties() -> None:
    values = [random.Random(0).choice([1.0, 2.0, 3.0]) for _ in range(20)]
    ranks = _rank(values)
    for i in range(20):
        for j in range(20):
            if values[i] < values[j]:
                assert ranks[i] < ranks[j]
            if values[i] == values[j]:
                assert ranks[i] == ranks[j]
