"""Retrieval: index build time, query latency (p50/p95) and recall@10 of simcse_core.retrieval's back ends.

Corpora: ``--sizes`` (default 10k and 100k; quick: 1k and 10k). The smallest corpus is real sentences
(distinct STS-B train/dev/test sentences and ``assets/corpus.csv``, repeat-sampled if needed) encoded with the
bundled model, the time of ``SearchIndex.build`` (encoding included) is reported once. Larger corpora are
synthetic: the real vectors repeated with Gaussian noise (σ = 0.02 per dimension, then re-normalised; cosine
to the original ≈ 0.93), which keeps the clustered structure of real embeddings that IVF depends on.

Queries are held-out STS-B sentences (not in the corpus), encoded once. For each back end
(``faiss-flat`` exact, ``faiss-ivf`` with its calibrated nprobe, ``numpy`` brute force, and ``auto``, what the app
uses) the script reports: build time from vectors (median of repetitions), single-query latency p50/p95 (one
query vector per call), batch-of-100 latency p50/p95, and recall@10 against exact search. The comparison point
is what a user would write without the engine: ``np.argsort(-(V @ q))[:10]``. End-to-end latency of a
string query (encoding included) is reported for ``auto``. Run ``python -m bench.retrieval_speed --help``.
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.common import (
    REPO,
    Target,
    latency_samples,
    load_stsb_split,
    make_parser,
    percentile,
    ratio,
    report,
    setup,
    time_call,
)

NAME = "retrieval_speed"
NOISE_SIGMA = 0.02
K = 10


def _corpus_sentences() -> list[str]:
    sentences: list[str] = []
    for split in ("train", "dev", "test"):
        sentences += load_stsb_split(split).sentences()
    path = REPO / "assets" / "corpus.csv"
    if path.is_file():
        with path.open(encoding="utf-8", newline="") as f:
            sentences += [row["text"] for row in csv.DictReader(f) if row.get("text")]
    return list(dict.fromkeys(s.strip() for s in sentences if s.strip()))


def _synthetic(vectors: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors: rows of ``vectors`` repeated cyclically, plus Gaussian noise, re-normalised."""
    rng = np.random.default_rng(seed)
    base = vectors[np.arange(n) % len(vectors)]  # (n, D)
    noisy = base + rng.normal(0.0, NOISE_SIGMA, size=base.shape).astype(np.float32)  # (n, D)
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def _recall_at_k(found: Sequence[Sequence[int]], truth: Sequence[Sequence[int]], k: int = K) -> float:
    """Mean over queries of |found[:k] ∩ truth[:k]| / k."""
    return float(np.mean([len(set(list(f)[:k]) & set(list(t)[:k])) / k for f, t in zip(found, truth)]))


def _auto_equivalent(n: int) -> str | None:
    """The kind that ``kind="auto"`` resolves to for ``n`` vectors when faiss is installed, else None."""
    try:
        import faiss  # noqa: F401

        from simcse_core.retrieval import IVF_MIN_VECTORS
    except ImportError:
        return None
    return "ivf" if n >= IVF_MIN_VECTORS else "flat"


def _naive_numpy_search(vectors: np.ndarray, query: np.ndarray, k: int = K) -> np.ndarray:
    """What a user writes without an index: full scores and a full sort."""
    return np.argsort(-(vectors @ query))[:k]  # (k,)


def _measure_size(n: int, real: np.ndarray, real_sentences: list[str], queries: np.ndarray, args,
                  repeats: int) -> list[dict[str, Any]]:
    from simcse_core.retrieval import SearchIndex

    vectors = real[:n] if n <= len(real) else _synthetic(real, n)
    sentences = [real_sentences[i % len(real_sentences)] for i in range(n)]
    source = "real" if n <= len(real) else f"synthetic (real x noise σ={NOISE_SIGMA})"
    exact = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :K]  # (Q, K) ground truth
    n_single = 50 if args.quick else 200
    n_batch = 5 if args.quick else 20
    batch = queries[:100]
    rows: list[dict[str, Any]] = []
    for kind in ("flat", "ivf", "numpy", "auto"):
        same = _auto_equivalent(n) if kind == "auto" else None
        if same is not None:  # auto picks the same index as a kind measured above: reuse its figures
            twin = next(r for r in rows if r["backend"].startswith(same))
            rows.append({**twin, "backend": f"auto -> {twin['backend'].split(' -> ')[1]} (same as {same})"})
            continue
        slow = kind == "ivf" and n >= 50_000
        build_times, index = [], None
        for _ in range(min(repeats, 2) if slow else repeats):
            seconds, index = time_call(lambda kind=kind: SearchIndex.from_vectors(vectors, sentences, kind=kind))
            build_times.append(seconds)
        q_iter = iter(np.resize(np.arange(len(queries)), n_single + 3))
        single = latency_samples(lambda index=index: index.search(queries[next(q_iter)], top_k=K), n_single)
        batched = latency_samples(lambda index=index: index.search(batch, top_k=K), n_batch, warmup=1)
        hits = index.search(queries, top_k=K)
        found = [[h.corpus_id for h in row] for row in hits]
        rows.append({
            "corpus": n, "vectors": source, "backend": f"{kind} -> {index.backend}",
            "nprobe": index.nprobe, "build_s": statistics.median(build_times),
            "single_p50_ms": 1e3 * percentile(single, 50), "single_p95_ms": 1e3 * percentile(single, 95),
            "batch100_p50_ms": 1e3 * percentile(batched, 50), "batch100_p95_ms": 1e3 * percentile(batched, 95),
            "recall_at_10": _recall_at_k(found, exact),
        })
    q_iter = iter(np.resize(np.arange(len(queries)), n_single + 3))
    naive = latency_samples(lambda: _naive_numpy_search(vectors, queries[next(q_iter)]), n_single)
    naive_p50 = 1e3 * percentile(naive, 50)
    rows.append({"corpus": n, "vectors": source, "backend": "naive numpy (V @ q, argsort)", "build_s": 0.0,
                 "single_p50_ms": naive_p50, "single_p95_ms": 1e3 * percentile(naive, 95),
                 "recall_at_10": 1.0})
    for row in rows:
        row["single_speedup_vs_naive"] = ratio(naive_p50, row["single_p50_ms"])
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None, help="comma-separated corpus sizes (default 10000,100000)")
    parser.add_argument("--queries", type=int, default=None, help="held-out query sentences (default 300)")
    args = parser.parse_args(argv)
    setup(args)
    from simcse_core import load_encoder
    from simcse_core.retrieval import SearchIndex

    repeats = args.repeats or (1 if args.quick else 3)
    sizes = [int(s) for s in (args.sizes or ("1000,10000" if args.quick else "10000,100000")).split(",")]
    n_queries = args.queries or (100 if args.quick else 300)
    pool = _corpus_sentences()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(pool))
    query_sentences = [pool[i] for i in order[:n_queries]]
    rest = [pool[i] for i in order[n_queries:]]
    n_real = min(sizes[0], len(rest))
    real_sentences = rest[:n_real]
    encoder = load_encoder("minilm", device="cpu")

    build_s, index = time_call(lambda: SearchIndex.build(encoder, real_sentences, kind="auto"))
    real = np.asarray(index.vectors)
    queries = encoder.encode(query_sentences)  # (Q, D)
    end_to_end = latency_samples(lambda: index.search(query_sentences[0], top_k=K), 30 if args.quick else 100)

    rows: list[dict[str, Any]] = []
    for n in sizes:
        print(f"  corpus {n} ...")
        rows += _measure_size(n, real, real_sentences, queries, args, repeats)
    largest = max(sizes)
    auto_large = next(r for r in rows if r["corpus"] == largest and r["backend"].startswith("auto"))
    targets = [
        Target(f"auto back end single-query p50 at {largest} vectors", auto_large["single_p50_ms"], 10.0,
               higher_is_better=False, unit=" ms"),
        Target(f"auto back end recall@10 at {largest} vectors", auto_large["recall_at_10"], 0.95),
    ]
    notes = [
        f"SearchIndex.build of {n_real} real sentences (encoding with {encoder.description}, "
        f"autocast {encoder.autocast_dtype}, plus indexing): {build_s:.1f} s "
        f"({n_real / build_s:.0f} sentences/s).",
        f"string query end to end (encode 1 sentence + search {n_real} vectors, auto): p50 "
        f"{1e3 * percentile(end_to_end, 50):.1f} ms, p95 {1e3 * percentile(end_to_end, 95):.1f} ms.",
        f"{n_queries} held-out query sentences; recall@10 vs exact inner-product search (numpy argsort).",
        "single = one query vector per search call; batch100 = 100 query vectors per call; build_s from vectors "
        "(IVF: k-means training + nprobe calibration included); median of repetitions.",
    ]
    return report(NAME, args, rows, targets=targets, notes=notes,
                  extra={"build_with_encoding_s": build_s, "real_sentences": n_real,
                         "string_query_p50_ms": 1e3 * percentile(end_to_end, 50),
                         "string_query_p95_ms": 1e3 * percentile(end_to_end, 95)})


if __name__ == "__main__":
    main()
