"""Tests for simcse_core.teaching.projection: UMAP maps, the PCA fallback, the shared before/after space, helpers."""

from __future__ import annotations

import logging
import math
import sys
import threading
import time

import numpy as np
import pytest

from simcse_core.teaching import projection
from simcse_core.teaching.projection import (
    cluster_labels,
    cosine_distances,
    pairwise_cosine_histogram,
    pca_2d,
    project,
    project_pair,
)


@pytest.fixture(scope="session")
def umap_ready() -> None:
    """Pay numba's one-off compilation (seconds) once per session."""
    projection.warm_up()


def _blobs(n_per: int, n_centres: int, dim: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_centres, dim))
    labels = rng.permutation(np.repeat(np.arange(n_centres), n_per))
    x = centres[labels] + noise * rng.standard_normal((len(labels), dim))
    return x.astype(np.float32), labels


def _naive_pca_2d(x: np.ndarray) -> np.ndarray:
    """PCA by eigen-decomposition of the covariance (not SVD), same sign rule."""
    unit = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    centred = unit - unit.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred)
    top = vectors[:, np.argsort(values)[::-1][:2]].T  # (2, D)
    for row in top:
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1
    return centred @ top.T


def test_project_shape_determinism_and_seed(umap_ready) -> None:
    x, _ = _blobs(60, 4, 32, noise=0.3, seed=0)
    a = project(x, seed=1)
    assert a.shape == (240, 2) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_allclose(project(x, seed=1), a, atol=1e-6)
    assert not np.allclose(project(x, seed=2), a, atol=1e-3)


def test_project_keeps_well_separated_clusters_apart(umap_ready) -> None:
    x, labels = _blobs(50, 4, 32, noise=0.2, seed=1)
    coords = project(x, seed=0)
    d2 = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)  # (N, N)
    np.fill_diagonal(d2, np.inf)
    nearest = d2.argsort(axis=1)[:, :5]  # (N, 5)
    assert (labels[nearest] == labels[:, None]).mean() > 0.95


def test_pca_fallback_on_tiny_input(caplog: pytest.LogCaptureFixture) -> None:
    x = np.random.default_rng(2).standard_normal((6, 12)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="simcse_core.teaching.projection"):
        coords = project(x)
    assert "PCA" in caplog.text
    assert coords.shape == (6, 2)
    np.testing.assert_allclose(coords, _naive_pca_2d(x), atol=1e-5)
    np.testing.assert_allclose(pca_2d(-x), -coords, atol=1e-5)  # sign is fixed by the data, not by chance


def test_pca_handles_one_point_and_one_dimension() -> None:
    np.testing.assert_array_equal(pca_2d(np.ones((1, 5))), np.zeros((1, 2)))
    coords = pca_2d(np.array([[1.0], [-1.0], [2.0]]))
    assert coords.shape == (3, 2) and np.all(coords[:, 1] == 0)


def test_duplicates_count_once_for_the_tiny_input_rule(caplog: pytest.LogCaptureFixture) -> None:
    x = np.repeat(np.eye(4, dtype=np.float32), 10, axis=0)  # 40 rows, 4 distinct
    with caplog.at_level(logging.INFO, logger="simcse_core.teaching.projection"):
        coords = project(x)
    assert "4 distinct points" in caplog.text
    assert coords.shape == (40, 2)


def test_fallback_to_pca_when_umap_is_missing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "umap", None)  # `import umap` now raises ImportError
    x, _ = _blobs(20, 3, 16, noise=0.5, seed=3)
    with caplog.at_level(logging.WARNING, logger="simcse_core.teaching.projection"):
        coords = project(x)
    assert "umap-learn is not installed" in caplog.text
    np.testing.assert_allclose(coords, _naive_pca_2d(x), atol=1e-5)


def test_project_pair_identical_inputs_give_identical_halves(umap_ready) -> None:
    x, _ = _blobs(40, 3, 24, noise=0.4, seed=4)
    before, after = project_pair(x, x.copy(), seed=0)
    assert before.shape == after.shape == (120, 2)
    np.testing.assert_allclose(before, after, atol=1e-6)


def test_project_pair_unchanged_sentences_stay_put_and_changed_ones_move(umap_ready) -> None:
    x, _ = _blobs(40, 3, 24, noise=0.4, seed=5)
    moved = x.copy()
    rng = np.random.default_rng(6)
    moved[:30] = rng.standard_normal((30, 24)) * 3  # 30 sentences get new, unrelated vectors
    before, after = project_pair(x, moved, seed=0)
    np.testing.assert_allclose(before[30:], after[30:], atol=1e-6)  # one shared coordinate system
    spread = np.linalg.norm(before - before.mean(axis=0), axis=1).mean()
    assert np.linalg.norm(before[:30] - after[:30], axis=1).mean() > 0.1 * spread


def test_project_pair_rejects_different_shapes() -> None:
    with pytest.raises(ValueError, match="same sentences"):
        project_pair(np.ones((5, 4)), np.ones((5, 6)))
    with pytest.raises(ValueError, match="empty"):
        project(np.zeros((0, 4)))


def test_warm_up_runs_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def slow_fake_project(points: np.ndarray, seed: int = 0) -> np.ndarray:
        calls.append(len(points))
        time.sleep(0.2)
        return np.zeros((len(points), 2), dtype=np.float32)

    projection._warm_up_once.cache_clear()
    monkeypatch.setattr(projection, "project", slow_fake_project)
    try:
        threads = [threading.Thread(target=projection.warm_up) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        projection.warm_up()
        assert calls == [projection._WARM_UP_POINTS]
    finally:
        projection._warm_up_once.cache_clear()


def test_warm_up_without_umap_only_logs(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "umap", None)
    projection._warm_up_once.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="simcse_core.teaching.projection"):
            projection.warm_up()
        assert "nothing to warm up" in caplog.text
    finally:
        projection._warm_up_once.cache_clear()


def test_histogram_of_all_pairs_equals_a_naive_loop() -> None:
    x = np.random.default_rng(7).standard_normal((30, 6)).astype(np.float32)
    counts, edges = pairwise_cosine_histogram(x, bins=20)
    assert counts.sum() == 30 * 29 // 2
    np.testing.assert_allclose(edges, np.linspace(-1, 1, 21))
    naive = np.zeros(20, dtype=int)
    for i in range(30):
        for j in range(i + 1, 30):
            a, b = x[i].astype(float), x[j].astype(float)
            cosine = float(a @ b) / math.sqrt(float(a @ a) * float(b @ b))
            naive[min(int((cosine + 1) / 2 * 20), 19)] += 1  # bins are [e_k, e_k+1), the last one closed
    np.testing.assert_array_equal(counts, naive)


def test_sampled_histogram_uses_distinct_pairs_and_is_seeded() -> None:
    x = np.eye(200, dtype=np.float32)  # distinct rows are orthogonal (cosine 0); a row with itself is 1
    counts, edges = pairwise_cosine_histogram(x, bins=10, max_pairs=1_000, seed=3)
    assert counts.sum() == 1_000
    assert counts[np.searchsorted(edges, 0.0, side="right") - 1] == 1_000  # every pair in the bin of 0
    again, _ = pairwise_cosine_histogram(x, bins=10, max_pairs=1_000, seed=3)
    np.testing.assert_array_equal(counts, again)
    empty, _ = pairwise_cosine_histogram(x[:1], bins=10)
    assert empty.sum() == 0 and empty.shape == (10,)


@pytest.mark.parametrize("faiss_missing", [False, True])
def test_cluster_labels_find_separated_clusters(faiss_missing: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if faiss_missing:
        monkeypatch.setitem(sys.modules, "faiss", None)
    x, truth = _blobs(40, 6, 16, noise=0.1, seed=8)
    labels = cluster_labels(x, n_clusters=6, seed=0)
    assert labels.shape == (240,) and labels.dtype == np.int64
    first_seen = [labels.tolist().index(c) for c in range(6)]
    assert first_seen == sorted(first_seen)  # clusters are numbered in order of first appearance
    pairs = {(int(p), int(t)) for p, t in zip(labels, truth)}
    assert len(pairs) == 6  # a one-to-one match between found and true clusters
    assert len({p for p, _ in pairs}) == 6 and len({t for _, t in pairs}) == 6
    np.testing.assert_array_equal(cluster_labels(x, n_clusters=6, seed=0), labels)
    assert set(cluster_labels(x[:3], n_clusters=8).tolist()) <= {0, 1, 2}


def test_cone_view_shows_a_cone_far_out_and_a_spread_cloud_near_the_centre() -> None:
    from simcse_core.evaluation.metrics import anisotropy
    from simcse_core.teaching.projection import cone_view

    rng = np.random.default_rng(0)
    common = np.zeros(64)
    common[0] = 1.0
    before = common * 3 + rng.standard_normal((40, 64)) * 0.3  # a narrow cone around axis 0
    after = rng.standard_normal((40, 64))  # isotropic
    view = cone_view(before, after)
    assert anisotropy(before) > 0.5 > 0.1 > abs(anisotropy(after))
    radius_before = np.linalg.norm(view.before, axis=1)
    radius_after = np.linalg.norm(view.after, axis=1)
    assert radius_before.min() > 0.6 and np.median(radius_after) < 0.4  # the cone sits far out
    assert (view.before[:, 0] > 0).all()  # axis 0 points along the common direction
    np.testing.assert_allclose(view.axes @ view.axes.T, np.eye(2), atol=1e-5)  # orthonormal
    assert radius_before.max() <= 1 + 1e-5 and 0 < view.captured[1] < view.captured[0] <= 1
    # An independent check of linearity: coordinates are dot products of unit vectors with the axes.
    unit = before / np.linalg.norm(before, axis=1, keepdims=True)
    np.testing.assert_allclose(view.before, unit @ view.axes.T, atol=1e-5)


def test_cone_view_in_3d_and_its_errors() -> None:
    from simcse_core.teaching.projection import cone_view

    rng = np.random.default_rng(1)
    x = rng.standard_normal((10, 8))
    view = cone_view(x, x, n_components=3)
    assert view.before.shape == (10, 3)
    np.testing.assert_array_equal(view.before, view.after)
    with pytest.raises(ValueError, match="2 or 3"):
        cone_view(x, x, n_components=4)
    with pytest.raises(ValueError, match="same sentences"):
        cone_view(x, x[:5])


def test_project_compares_pairs_without_a_python_loop(umap_ready, monkeypatch: pytest.MonkeyPatch) -> None:
    """umap-learn's small-data path went through scikit-learn's per-pair Python loop (17.5 s for 4,000 points,
    holding the GIL): the map is given the cosine distances as one matrix instead."""
    import sklearn.metrics.pairwise as pairwise

    def refuse(*args, **kwargs):
        raise AssertionError("pairs compared one by one in Python")

    monkeypatch.setattr(pairwise, "_pairwise_callable", refuse)
    x, labels = _blobs(60, 4, 32, noise=0.3, seed=0)
    points = project(np.concatenate([x, x[:5]]), seed=1)  # five rows twice
    assert points.shape == (245, 2)
    np.testing.assert_array_equal(points[-5:], points[:5])  # equal rows, equal positions


def test_cosine_distances_against_scipy() -> None:
    from scipy.spatial.distance import cdist

    x = np.random.default_rng(0).standard_normal((30, 8)).astype(np.float32)
    np.testing.assert_allclose(cosine_distances(x), cdist(x, x, "cosine"), atol=1e-5)
