"""Semantic search over a corpus of sentences: cosine similarity with faiss, or numpy when faiss is missing.

Vectors are L2-normalised, so inner product = cosine. Three back ends give the same answer up to float
rounding (exact) or up to a measured recall (IVF):

- ``"faiss-flat"``: ``IndexFlatIP``, exact. The default below :data:`IVF_MIN_VECTORS` vectors.
- ``"faiss-ivf"``: ``IndexIVFFlat`` (inner product) with ``nlist ≈ 4·sqrt(N)`` lists, trained on the corpus.
  ``nprobe`` is calibrated when the index is built so that recall@10 against exact search is at least
  :data:`IVF_TARGET_RECALL` for queries from outside the corpus (see :func:`_calibrate_nprobe` for the
  measurements behind this).
- ``"numpy"``: brute force ``queries @ vectors.T``, exact; used when faiss is not installed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from simcse_core.model.encoder import Encoder

logger = logging.getLogger(__name__)

IndexKind = Literal["auto", "flat", "ivf", "numpy"]
Backend = Literal["faiss-flat", "faiss-ivf", "numpy"]

IVF_MIN_VECTORS = 50_000  # kind="auto" switches from exact flat search to IVF at this corpus size
IVF_TARGET_RECALL = 0.95  # recall@10 vs exact search that IVF aims at for queries from outside the corpus
IVF_CALIBRATION_RECALL = 0.98  # the bar nprobe must clear on calibration queries (see _calibrate_nprobe)
_CALIBRATION_QUERIES = 500  # corpus vectors used as queries when calibrating nprobe
_MIN_POINTS_PER_LIST = 39  # faiss k-means wants >= 39 training points per centroid
# Query batches up to this size are searched with one OpenMP thread: measured 3-6x faster on the 2-core box
# (single query on 50k x 384: 3-5 ms with 1 thread vs 13-25 ms with 2), where thread start-up dominates.
_SINGLE_THREAD_MAX_QUERIES = 64
_NUMPY_BLOCK = 1 << 24  # score-matrix entries per block in the numpy back end (64 MB of float32)


@dataclass(frozen=True)
class Hit:
    """One search result."""

    corpus_id: int  # position of the sentence in the corpus it was built from
    sentence: str  # the corpus sentence
    score: float  # cosine similarity to the query, in [-1, 1]


class SearchIndex:
    """A cosine-similarity index over sentences. Build it with :meth:`build` or :meth:`from_vectors`."""

    def __init__(
        self,
        vectors: np.ndarray,
        sentences: Sequence[str],
        encoder: Encoder | None,
        backend: Backend,
        faiss_index: object | None,
        nprobe: int | None = None,
    ):
        self._vectors = vectors  # (N, D) float32, unit rows, read-only
        self._sentences = tuple(sentences)
        self.encoder = encoder
        self.backend: Backend = backend
        self._faiss_index = faiss_index
        self.nprobe = nprobe  # IVF lists searched per query (None unless backend is "faiss-ivf")

    @classmethod
    def build(
        cls,
        encoder: Encoder,
        sentences: Sequence[str],
        kind: IndexKind = "auto",
        batch_size: int = 64,
        progress: Callable[[int, int], None] | None = None,
    ) -> SearchIndex:
        """Encode ``sentences`` with ``encoder`` and index them.

        Args:
            encoder: the sentence encoder; also used later to encode string queries.
            sentences: the corpus; ``Hit.corpus_id`` is a position in this sequence.
            kind: ``"auto"`` (exact flat below :data:`IVF_MIN_VECTORS` vectors, IVF above), ``"flat"``,
                ``"ivf"`` or ``"numpy"``. Without faiss every kind falls back to numpy (logged).
            batch_size: sentences per encoder batch.
            progress: called as ``progress(done, total)`` after each encoded batch.

        Raises:
            ValueError: the corpus is empty or ``batch_size`` < 1.
        """
        sentences = list(sentences)
        if kind not in ("auto", "flat", "ivf", "numpy"):
            raise ValueError(f"Unknown index kind {kind!r}; choose auto, flat, ivf or numpy.")
        if not sentences:
            raise ValueError("The corpus is empty: give at least one sentence to search.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        start = time.perf_counter()
        vectors = encoder.encode(sentences, batch_size=batch_size, progress=progress)  # (N, D)
        logger.info("Encoded %d sentences in %.1fs", len(sentences), time.perf_counter() - start)
        return cls.from_vectors(vectors, sentences, encoder=encoder, kind=kind)

    @classmethod
    def from_vectors(
        cls,
        vectors: np.ndarray,
        sentences: Sequence[str],
        encoder: Encoder | None = None,
        kind: IndexKind = "auto",
    ) -> SearchIndex:
        """Index precomputed vectors (N, D); rows are L2-normalised here (a copy is kept).

        Args:
            vectors: one row per sentence.
            sentences: the N sentences, in the same order.
            encoder: needed only to search with string queries.
            kind: as in :meth:`build`.

        Raises:
            ValueError: empty corpus, shape mismatch, non-finite values or unknown ``kind``.
        """
        if kind not in ("auto", "flat", "ivf", "numpy"):
            raise ValueError(f"Unknown index kind {kind!r}; choose auto, flat, ivf or numpy.")
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be a (N, D) matrix, got shape {vectors.shape}.")
        if vectors.shape[0] == 0:
            raise ValueError("The corpus is empty: give at least one sentence to search.")
        if vectors.shape[0] != len(sentences):
            raise ValueError(f"Got {vectors.shape[0]} vectors but {len(sentences)} sentences.")
        if not np.isfinite(vectors).all():
            raise ValueError("vectors contain NaN or infinite values.")
        unit = _unit_rows(vectors)  # (N, D) float32, C-contiguous
        unit.flags.writeable = False
        if kind == "numpy":
            return cls(unit, sentences, encoder, "numpy", None)
        try:
            import faiss
        except ImportError:
            logger.warning("faiss is not installed: using exact numpy brute-force search (slower on large "
                           "corpora). Install faiss-cpu for fast search.")
            return cls(unit, sentences, encoder, "numpy", None)
        if kind == "ivf" or (kind == "auto" and len(unit) >= IVF_MIN_VECTORS):
            index, nprobe = _build_ivf(faiss, unit)
            return cls(unit, sentences, encoder, "faiss-ivf", index, nprobe)
        index = faiss.IndexFlatIP(unit.shape[1])
        index.add(unit)
        return cls(unit, sentences, encoder, "faiss-flat", index)

    @property
    def vectors(self) -> np.ndarray:
        """The indexed unit vectors (N, D) float32 (read-only)."""
        return self._vectors

    @property
    def sentences(self) -> tuple[str, ...]:
        """The corpus sentences, in corpus-id order."""
        return self._sentences

    def __len__(self) -> int:
        return len(self._sentences)

    def search(
        self, queries: str | Sequence[str] | np.ndarray, top_k: int = 5, threshold: float | None = None
    ) -> list[list[Hit]]:
        """The ``top_k`` most similar corpus sentences for each query, best first.

        Args:
            queries: one sentence, several sentences (encoded with the index's encoder), or query
                vectors (D,) or (Q, D) (normalised here).
            top_k: hits per query; clamped to the corpus size.
            threshold: if given, hits with cosine score below it are dropped (so a query may get fewer
                than ``top_k`` hits, or none).

        Returns:
            One list of :class:`Hit` per query, in query order, sorted by score descending.

        Raises:
            ValueError: no queries, an empty query sentence, ``top_k`` < 1, a dimension mismatch, or
                string queries on an index built without an encoder.
        """
        if int(top_k) != top_k or top_k < 1:
            raise ValueError(f"top_k must be a whole number of at least 1, got {top_k}.")
        if threshold is not None and not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number or None, got {threshold}.")
        query_vectors = self._query_vectors(queries)  # (Q, D)
        k = min(int(top_k), len(self))
        if self._faiss_index is None:
            scores, ids = _numpy_top_k(query_vectors, self._vectors, k)  # (Q, k), (Q, k)
        else:
            scores, ids = _faiss_search(self._faiss_index, query_vectors, k)  # (Q, k), (Q, k)
        results = []
        for row_scores, row_ids in zip(scores, ids):
            hits = [Hit(int(i), self._sentences[i], float(s)) for s, i in zip(row_scores, row_ids) if i >= 0]
            if threshold is not None:
                hits = [hit for hit in hits if hit.score >= threshold]
            results.append(hits)
        return results

    def _query_vectors(self, queries: str | Sequence[str] | np.ndarray) -> np.ndarray:
        if isinstance(queries, np.ndarray):
            vectors = np.atleast_2d(queries)
            if vectors.ndim != 2 or vectors.shape[0] == 0:
                raise ValueError(f"Query vectors must be (D,) or (Q, D) with Q >= 1, got {queries.shape}.")
            if not np.isfinite(vectors).all():
                raise ValueError("Query vectors contain NaN or infinite values.")
        else:
            texts = [queries] if isinstance(queries, str) else list(queries)
            if not texts:
                raise ValueError("No query given: type a sentence to search for.")
            if any(not isinstance(t, str) or not t.strip() for t in texts):
                raise ValueError("A query is empty: type a sentence to search for.")
            if self.encoder is None:
                raise ValueError("This index was built from vectors without an encoder; pass query vectors.")
            vectors = self.encoder.encode(texts)  # (Q, D)
        if vectors.shape[1] != self._vectors.shape[1]:
            raise ValueError(f"Query dimension {vectors.shape[1]} does not match the index "
                             f"({self._vectors.shape[1]}); was the corpus encoded with another model?")
        return _unit_rows(vectors)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # (N, 1)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _numpy_top_k(queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(vectors)
    rows = max(1, _NUMPY_BLOCK // n)
    all_scores, all_ids = [], []
    for start in range(0, len(queries), rows):
        scores = queries[start : start + rows] @ vectors.T  # (q, N)
        if k < n:
            ids = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (q, k) unordered
        else:
            ids = np.broadcast_to(np.arange(n), scores.shape)  # (q, N)
        top = np.take_along_axis(scores, ids, axis=1)  # (q, k)
        order = np.lexsort((ids, -top))  # (q, k): score descending, ties by corpus id
        all_ids.append(np.take_along_axis(ids, order, axis=1))
        all_scores.append(np.take_along_axis(top, order, axis=1))
    return np.concatenate(all_scores), np.concatenate(all_ids)


def _faiss_search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    if len(queries) > _SINGLE_THREAD_MAX_QUERIES:
        scores, ids = index.search(queries, k)  # (Q, k), (Q, k)
    else:
        # OpenMP's thread count is per calling thread (libgomp), so this does not affect other threads.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = index.search(queries, k)  # (Q, k), (Q, k)
        finally:
            faiss.omp_set_num_threads(threads)
    # Break ties (duplicate sentences) by corpus id, as the numpy back end does; missing hits (id -1,
    # score -3.4e38) stay last.
    order = np.lexsort((ids, -scores))  # (Q, k)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


def _ivf_nlist(n: int) -> int:
    return int(max(1, min(round(4 * math.sqrt(n)), n // _MIN_POINTS_PER_LIST)))


def _build_ivf(faiss, vectors: np.ndarray) -> tuple[object, int]:
    n, dim = vectors.shape
    nlist = _ivf_nlist(n)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    start = time.perf_counter()
    index.train(vectors)
    index.add(vectors)
    nprobe, recall = _calibrate_nprobe(index, vectors, nlist)
    index.nprobe = nprobe
    logger.info("IVF index: %d vectors, nlist=%d, nprobe=%d (measured recall@10 %.3f), built in %.1fs",
                n, nlist, nprobe, recall, time.perf_counter() - start)
    return index, nprobe


def _calibrate_nprobe(index, vectors: np.ndarray, nlist: int, k: int = 10) -> tuple[int, float]:
    """The smallest nprobe on a ×1.5 ladder whose recall@k vs exact search reaches IVF_CALIBRATION_RECALL.

    A search index cannot see its future queries, so it calibrates on two stand-ins and needs both to reach
    the bar: (a) corpus vectors, each with itself removed from both result lists, and (b) midpoints of two
    random corpus vectors (re-normalised), which land between regions as typed queries often do. Why two:
    with near-duplicates in the corpus, (a) alone flatters IVF — on 100k vectors made of 10 noisy copies of
    10k real ones it read 0.992 at nprobe 5 where held-out STS-B queries got 0.904. Measured recall@10
    (nlist = 4·sqrt(N), all-MiniLM-L6-v2 vectors, 300 held-out STS-B sentences as queries):

    - real 5k: nprobe 27 -> held-out 0.962, (b) 0.979;
    - real 10k: nprobe 27 -> held-out 0.950, (a) 0.955, (b) 0.969; nprobe 41 -> 0.969, 0.973, 0.982;
    - synthetic 100k: nprobe 8 -> held-out 0.939, (a) 0.994, (b) 0.967; nprobe 12 -> 0.957, 0.996, 0.981.

    Held-out recall trailed the stricter stand-in by at most 0.025, hence the bar of 0.98 for a held-out
    goal of :data:`IVF_TARGET_RECALL` (0.95). Calibration costs one exact search of 500 queries.
    """
    n = len(vectors)
    rng = np.random.default_rng(0)
    m = min(_CALIBRATION_QUERIES // 2, n)
    sample = rng.choice(n, size=m, replace=False)
    own = vectors[sample]  # (m, D)
    midpoints = _unit_rows(vectors[rng.integers(0, n, m)] + vectors[rng.integers(0, n, m)])  # (m, D)
    kk = min(k + 1, n)
    _, exact_self = _numpy_top_k(own, vectors, kk)  # (m, kk)
    _, exact_mid = _numpy_top_k(midpoints, vectors, min(k, n))  # (m, k)
    truth_self = [set(row[row != s][:k].tolist()) for row, s in zip(exact_self, sample)]
    truth_mid = [set(row.tolist()) for row in exact_mid]
    nprobe, recall = max(1, math.ceil(nlist / 256)), 0.0
    while True:
        index.nprobe = nprobe
        _, found_self = index.search(own, kk)  # (m, kk)
        _, found_mid = index.search(midpoints, min(k, n))  # (m, k)
        recall = min(
            _recall([set(row[row != s][:k].tolist()) for row, s in zip(found_self, sample)], truth_self),
            _recall([set(row.tolist()) for row in found_mid], truth_mid),
        )
        if recall >= IVF_CALIBRATION_RECALL or nprobe >= nlist:
            return nprobe, recall
        nprobe = min(nlist, math.ceil(nprobe * 1.5))


def _recall(found: list[set[int]], truth: list[set[int]]) -> float:
    denominator = sum(len(t) for t in truth)
    return sum(len(f & t) for f, t in zip(found, truth)) / denominator if denominator else 1.0
