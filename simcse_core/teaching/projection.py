"""2-D maps of sentence embeddings (UMAP, cosine metric), plus small helpers for the embedding-map tab.

UMAP (umap-learn) is imported inside the functions that need it. A PCA fallback (numpy SVD, deterministic
sign) is used for inputs with fewer than :data:`MIN_UMAP_POINTS` distinct points, where UMAP's
neighbour graph makes no sense, and when umap-learn is not installed (logged).

The first UMAP call in a process pays several seconds of numba compilation; :func:`warm_up` pays it on a
tiny input, and the app runs it in a background thread at start-up.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

MIN_UMAP_POINTS = 10  # fewer distinct points than this are projected with PCA
# Below this many distinct points umap-learn compares every pair (its "small data" path), and given a callable
# metric it does so through scikit-learn's per-pair Python loop: 17.5 s for 4,000 points, holding the GIL, so
# every other request of the server waited on it. These are handed the same cosine distances as one matrix
# product (5.4 s); above it UMAP's approximate neighbour search (numba) is used as before.
SMALL_DATA_POINTS = 4096
_WARM_UP_POINTS = 50  # points in the warm-up run (numba compiles the same code paths as for 2k points)
# numba's JIT cache is per process by nature; this lock only makes warm_up() run its UMAP once.
_WARM_UP_LOCK = threading.Lock()


def project(vectors: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """Project embeddings to 2-D with UMAP (cosine metric).

    Rows that are exactly equal get exactly the same position (projected once, as UMAP's ``unique=True``). Below
    :data:`SMALL_DATA_POINTS` distinct rows UMAP is given their cosine distances (one matrix product). With a seed, UMAP
    runs single-threaded (umap-learn forces ``n_jobs=1`` when ``random_state`` is set) and the result is
    reproducible on the same machine and library versions. Parallelism would not buy much here: on the
    2-core box, 2000 MiniLM vectors took 4.8 s seeded and 4.1-5.7 s unseeded with ``n_jobs=-1``.
    Measured there: 1000 points 1.6 s and 2000 points 4.8 s once compiled; the first call in a process
    adds about 9 s of numba compilation (see :func:`warm_up`) plus 3.5 s to import umap.

    Args:
        vectors: (N, D) embeddings; they need not be normalised (cosine ignores length).
        seed: random seed for UMAP (and nothing else).
        n_neighbors: UMAP's neighbourhood size (clipped to the number of distinct points - 1).
        min_dist: UMAP's minimum distance between points in the map.

    Returns:
        (N, 2) float32 coordinates, in input order.

    Raises:
        ValueError: ``vectors`` is not a non-empty finite (N, D) matrix, or bad UMAP parameters.
    """
    x = _check_matrix(vectors, "vectors")
    if n_neighbors < 2:
        raise ValueError(f"n_neighbors must be at least 2, got {n_neighbors}.")
    if not 0.0 <= min_dist <= 1.0:
        raise ValueError(f"min_dist must be between 0 and 1, got {min_dist}.")
    rows, inverse = np.unique(x, axis=0, return_inverse=True)  # (U, D): equal rows are one point, one position
    distinct = len(rows)
    if distinct < MIN_UMAP_POINTS:
        logger.info("Only %d distinct points: using PCA instead of UMAP for the 2-D map.", distinct)
        return pca_2d(x)
    try:
        import umap
    except ImportError:
        logger.warning("umap-learn is not installed: the 2-D map uses PCA instead (pip install umap-learn).")
        return pca_2d(x)
    start = time.perf_counter()
    small = distinct < SMALL_DATA_POINTS
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(n_neighbors, distinct - 1),
        min_dist=min_dist,
        metric="precomputed" if small else "cosine",
        random_state=seed,
        n_jobs=1,  # what umap-learn uses anyway once random_state is set; saying so avoids its warning
    )
    with warnings.catch_warnings():  # a map never maps new points back, so UMAP's caveat about that is moot
        warnings.filterwarnings("ignore", message="using precomputed metric", category=UserWarning)
        coords = reducer.fit_transform(cosine_distances(rows) if small else rows)[inverse.ravel()]  # (N, 2)
    logger.info("UMAP of %d points took %.1fs", len(x), time.perf_counter() - start)
    return np.ascontiguousarray(coords, dtype=np.float32)


def cosine_distances(x: np.ndarray) -> np.ndarray:
    """(N, N) float32 matrix of 1 - cos(x_i, x_j), in [0, 2], zero on the diagonal."""
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # (N, D)
    distances = np.clip(1.0 - unit @ unit.T, 0.0, 2.0).astype(np.float32)  # (N, N)
    np.fill_diagonal(distances, 0.0)
    return distances


def project_pair(before: np.ndarray, after: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Project two embeddings of the same sentences (before / after fine-tuning) into ONE 2-D space.

    UMAP is fitted once on the concatenation ``[before; after]`` (2N points) and the result is split, so a
    sentence's two positions, and its neighbours in both halves, are directly comparable. Choices
    considered:

    - Fit on ``before`` and ``transform`` the ``after`` vectors: new points are placed only relative to
      the old neighbourhoods, so structure that fine-tuning creates is under-drawn.
    - Fit twice and align (Procrustes): UMAP layouts differ by more than a rotation, so positions would
      still not be comparable.
    - ``umap.AlignedUMAP``: made for this, but its alignment term deliberately pulls a sentence's two
      positions together, hiding the movement the map is meant to show, and it costs more.

    Concatenating keeps one neighbour graph and one layout. It needs the two spaces to be close enough
    that a sentence's neighbours span both halves, which holds for fine-tuning from the same checkpoint
    (the only case the app draws). Measured on 1000 STS-B sentences, all-MiniLM-L6-v2 before and after
    100 unsupervised SimCSE steps (batch 64, lr 3e-5; mean cos(before_i, after_i) = 0.90): every
    ``after`` vector has its own ``before`` vector among its 15 nearest neighbours in the union, 37 % of
    all neighbours come from the other half, and the median move in the map (0.08) is under a third of
    the median distance to the 15th map neighbour (0.28). Under a 10x learning rate (60 steps at 3e-4,
    mean cos 0.68) the figures are 98 %, 14 %, and 0.16 vs 0.26: still one comparable map. Identical
    rows map to identical positions (``unique=True``), so a sentence whose vector did not change does
    not move.

    Args:
        before: (N, D) embeddings from the first model.
        after: (N, D) embeddings of the same N sentences, same order, from the second model.
        seed: random seed for UMAP.

    Returns:
        ``(before_2d, after_2d)``, each (N, 2) float32, in one coordinate system.

    Raises:
        ValueError: the shapes differ (e.g. models with different vector sizes) or are invalid.
    """
    a = _check_matrix(before, "before")
    b = _check_matrix(after, "after")
    if a.shape != b.shape:
        raise ValueError(f"before and after must be embeddings of the same sentences with the same size; "
                         f"got shapes {a.shape} and {b.shape}.")
    coords = project(np.concatenate([a, b]), seed=seed)  # (2N, 2)
    return coords[: len(a)], coords[len(a) :]


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """The first two principal components of the L2-normalised rows, with a deterministic sign.

    Each component's sign is chosen so that its largest-magnitude loading is positive (as scikit-learn's
    ``svd_flip``), so the same input always gives the same picture. Fewer than two components (one point,
    or 1-D input) are padded with zeros.

    Returns:
        (N, 2) float32 coordinates.
    """
    x = _check_matrix(vectors, "vectors").astype(np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # (N, D) cosine geometry
    x = x - x.mean(axis=0)  # (N, D)
    _, _, vt = np.linalg.svd(x, full_matrices=False)  # vt: (r, D)
    components = vt[:2]  # (c, D), c <= 2
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])  # (c,)
    components = components * np.where(signs == 0, 1.0, signs)[:, None]
    coords = np.zeros((len(x), 2), dtype=np.float32)  # (N, 2)
    coords[:, : len(components)] = x @ components.T
    return coords


@dataclass(frozen=True)
class ConeView:
    """Before / after unit vectors on ONE linear basis, where the anisotropic cone can be seen."""

    before: np.ndarray  # (N, k) coordinates of the before vectors, inside the unit disk (k=2) or ball (k=3)
    after: np.ndarray  # (N, k) the same sentences after fine-tuning, on the same axes
    axes: np.ndarray  # (k, D) the orthonormal basis; axis 0 points along the vectors' common direction
    captured: tuple[float, float]  # share of the squared length the k axes keep: (before, after), 0..1


def cone_view(before: np.ndarray, after: np.ndarray, n_components: int = 2) -> ConeView:
    """Project the unit vectors of ``before`` and ``after`` on one shared basis that keeps the cone.

    The basis is the top right-singular vectors of the UNcentred matrix ``[before; after]`` of unit vectors,
    so axis 0 is the direction all vectors share (centring, as ordinary PCA does, would subtract exactly the
    common direction that makes the cone). Every coordinate is a plain dot product with an axis, so the picture
    is linear and faithful in what it shows: a point's distance from the centre is the length of its vector
    along these axes (at most 1); a cloud far from the centre and tight is a cone (every sentence points the
    same way); a cloud near the centre and spread is a space used in many directions. What it drops: the other
    D - k directions (``captured`` says how much length the axes keep), so neighbours may overlap that are far
    apart in the full space: UMAP keeps neighbours instead, and loses this geometry.

    Signs are deterministic: axis 0 points towards the mean of all vectors; the others follow scikit-learn's
    ``svd_flip`` rule (largest loading positive).

    Args:
        before: (N, D) embeddings (need not be normalised).
        after: (N, D) embeddings of the same sentences, same order.
        n_components: 2 (a disk) or 3 (a ball).

    Raises:
        ValueError: shapes differ, or ``n_components`` is not 2 or 3.
    """
    if n_components not in (2, 3):
        raise ValueError(f"n_components must be 2 or 3, got {n_components}.")
    a = _unit_rows(_check_matrix(before, "before"))
    b = _unit_rows(_check_matrix(after, "after"))
    if a.shape != b.shape:
        raise ValueError(f"before and after must be embeddings of the same sentences with the same size; "
                         f"got shapes {a.shape} and {b.shape}.")
    both = np.concatenate([a, b])  # (2N, D)
    _, _, vt = np.linalg.svd(both, full_matrices=False)  # vt: (r, D)
    axes = np.zeros((n_components, a.shape[1]))  # (k, D); zero rows when the data have fewer directions
    axes[: min(n_components, len(vt))] = vt[:n_components]
    mean = both.mean(axis=0)  # (D,)
    signs = np.sign(axes[np.arange(n_components), np.abs(axes).argmax(axis=1)])  # (k,)
    signs[0] = np.sign(axes[0] @ mean) or signs[0]
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
    coords_a, coords_b = a @ axes.T, b @ axes.T  # (N, k) each
    captured = (float((coords_a ** 2).sum(axis=1).mean()), float((coords_b ** 2).sum(axis=1).mean()))
    return ConeView(coords_a.astype(np.float32), coords_b.astype(np.float32), axes.astype(np.float32), captured)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # (N, D)


def warm_up() -> None:
    """Run UMAP once on a few random points so numba compiles its code now, not on the first real map.

    Idempotent and thread-safe: the app may call it from a background thread at start-up; concurrent and
    later calls wait for, or skip, the single run. Does nothing (beyond logging) without umap-learn.
    """
    with _WARM_UP_LOCK:
        _warm_up_once()


@functools.cache
def _warm_up_once() -> None:
    try:
        import umap  # noqa: F401  (only checks that it is installed)
    except ImportError:
        logger.warning("umap-learn is not installed: nothing to warm up; maps will use PCA.")
        return
    start = time.perf_counter()
    points = np.random.default_rng(0).standard_normal((_WARM_UP_POINTS, 16)).astype(np.float32)
    project(points, seed=0)
    logger.info("UMAP warm-up (numba compilation) took %.1fs", time.perf_counter() - start)


def pairwise_cosine_histogram(
    vectors: np.ndarray, bins: int = 50, max_pairs: int = 200_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of the cosine similarity of distinct pairs of rows (the anisotropy picture).

    All N(N-1)/2 pairs are used when there are at most ``max_pairs`` of them; otherwise ``max_pairs``
    distinct-index pairs are drawn uniformly (with replacement, seeded).

    Args:
        vectors: (N, D) embeddings.
        bins: number of equal-width bins over [-1, 1].
        max_pairs: the most pairs to use.
        seed: seed for the pair sample.

    Returns:
        ``(counts, edges)``: counts (bins,) int64 summing to the number of pairs used, and edges (bins + 1,).
    """
    x = _check_matrix(vectors, "vectors", allow_empty=True)
    if bins < 1 or max_pairs < 1:
        raise ValueError(f"bins and max_pairs must be at least 1, got {bins} and {max_pairs}.")
    edges = np.linspace(-1.0, 1.0, bins + 1)
    n = len(x)
    if n < 2:
        return np.zeros(bins, dtype=np.int64), edges
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # (N, D)
    total = n * (n - 1) // 2
    if total <= max_pairs:
        i, j = np.triu_indices(n, k=1)  # (P,), (P,)
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, size=max_pairs)  # (P,)
        j = rng.integers(0, n - 1, size=max_pairs)  # (P,)
        j = j + (j >= i)  # uniform over the other n - 1 rows
    cosines = np.empty(len(i), dtype=np.float64)  # (P,)
    for start in range(0, len(i), 65_536):
        a, b = i[start : start + 65_536], j[start : start + 65_536]
        cosines[start : start + len(a)] = np.einsum("pd,pd->p", unit[a], unit[b])
    counts, _ = np.histogram(np.clip(cosines, -1.0, 1.0), bins=edges)
    return counts.astype(np.int64), edges


def cluster_labels(vectors: np.ndarray, n_clusters: int = 8, seed: int = 0) -> np.ndarray:
    """Spherical k-means labels for colouring a map when the sentences have no topic labels.

    Rows are L2-normalised; centroids start from seeded k-means++ and are refined with faiss k-means, or a
    numpy Lloyd loop when faiss is missing (logged). Labels are renumbered in order of first appearance,
    so point 0 is in cluster 0.

    Args:
        vectors: (N, D) embeddings.
        n_clusters: number of clusters (clipped to the number of points).
        seed: seed for the initial centroids.

    Returns:
        (N,) int64 labels in ``[0, n_clusters)``.
    """
    x = _check_matrix(vectors, "vectors")
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be at least 1, got {n_clusters}.")
    unit = np.ascontiguousarray(
        x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12), dtype=np.float32)  # (N, D)
    k = min(n_clusters, len(unit))
    init = _kmeans_plus_plus(unit, k, np.random.default_rng(seed))  # (k, D)
    try:
        import faiss
    except ImportError:
        logger.info("faiss is not installed: clustering with numpy k-means.")
        labels = _lloyd(unit, init)
    else:
        kmeans = faiss.Kmeans(unit.shape[1], k, niter=25, seed=seed, spherical=True, min_points_per_centroid=1)
        kmeans.train(unit, init_centroids=init)
        labels = kmeans.index.search(unit, 1)[1][:, 0]  # (N,)
    _, first = np.unique(labels, return_index=True)
    renumber = np.empty(labels.max() + 1, dtype=np.int64)
    renumber[labels[np.sort(first)]] = np.arange(len(first))
    return renumber[labels]


def _kmeans_plus_plus(unit: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centroids = [unit[rng.integers(len(unit))]]
    closest = np.full(len(unit), np.inf)  # (N,) squared distance to the nearest chosen centroid
    for _ in range(1, k):
        closest = np.minimum(closest, ((unit - centroids[-1]) ** 2).sum(axis=1))
        total = closest.sum()
        probs = closest / total if total > 0 else np.full(len(unit), 1.0 / len(unit))
        centroids.append(unit[rng.choice(len(unit), p=probs)])
    return np.ascontiguousarray(centroids, dtype=np.float32)  # (k, D)


def _lloyd(unit: np.ndarray, centroids: np.ndarray, n_iter: int = 25) -> np.ndarray:
    labels = np.zeros(len(unit), dtype=np.int64)
    for _ in range(n_iter):
        labels = (unit @ centroids.T).argmax(axis=1)  # (N,)
        new = centroids.copy()
        for c in range(len(centroids)):
            members = unit[labels == c]
            if len(members):
                mean = members.sum(axis=0)
                new[c] = mean / max(np.linalg.norm(mean), 1e-12)
        if np.allclose(new, centroids):
            break
        centroids = new
    return labels


def _check_matrix(vectors: np.ndarray, name: str, allow_empty: bool = False) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a (N, D) matrix, got shape {x.shape}.")
    if len(x) == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: there is nothing to draw.")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return x
