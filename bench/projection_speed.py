"""Projection: UMAP time of simcse_core.teaching.projection for 1k, 2k and 5k points, cold and warm.

Vectors are real all-MiniLM-L6-v2 embeddings of distinct STS-B sentences. "Cold" is the first call in a fresh
process (run in a subprocess, so ``import umap`` and numba's compilation are counted; the two are reported
apart). "Warm" is a later call in a process where :func:`simcse_core.teaching.projection.warm_up` already ran, which is
what the app arranges: it calls ``warm_up()`` in a background thread at start-up, so the compilation happens
while the user reads the first tab. Also timed: ``warm_up()`` itself, ``project_pair`` (the map tab's before |
after view, 2N points), a user's plain ``umap.UMAP()`` with its defaults, and the PCA fallback.
Run ``python -m bench.projection_speed --help``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import REPO, Target, load_stsb_split, make_parser, ratio, report, setup, time_call

NAME = "projection_speed"


def _child(npy: str, n: int, what: str) -> None:
    """In a fresh process: time ``import umap`` and the first project() (or warm_up() then project())."""
    vectors = np.load(npy)[:n]
    t0 = time.perf_counter()
    import umap  # noqa: F401

    import_s = time.perf_counter() - t0
    from simcse_core.teaching import projection

    result: dict[str, float] = {"import_umap_s": import_s}
    if what == "warm_up_then_project":
        result["warm_up_s"] = time_call(projection.warm_up)[0]
    result["first_project_s"] = time_call(lambda: projection.project(vectors, seed=0))[0]
    print("RESULT " + json.dumps(result))


def _run_child(npy: Path, n: int, what: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "bench.projection_speed", "--child", what, "--npy", str(npy),
                          "--n", str(n)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
                         check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def _plain_umap(vectors: np.ndarray) -> np.ndarray:
    """What a user would write: umap.UMAP() with its defaults (euclidean metric, all cores, no seed)."""
    import umap

    return umap.UMAP(n_components=2).fit_transform(vectors)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--child", default=None, help=argparse_hidden())
    parser.add_argument("--npy", default=None, help=argparse_hidden())
    parser.add_argument("--n", type=int, default=None, help=argparse_hidden())
    args = parser.parse_args(argv)
    setup(args)
    if args.child:
        _child(args.npy, args.n, args.child)
        return {}
    from simcse_core import load_encoder
    from simcse_core.teaching import projection

    repeats = args.repeats or (1 if args.quick else 3)
    sizes = [500, 1000] if args.quick else [1000, 2000, 5000]
    cold_sizes = [500] if args.quick else [1000, 5000]
    sentences: list[str] = []
    for split in ("dev", "test", "train"):
        sentences += load_stsb_split(split).sentences()
    sentences = list(dict.fromkeys(sentences))[: max(sizes)]
    encoder = load_encoder("minilm", device="cpu")
    vectors = encoder.encode(sentences)  # (N, D)

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        npy = Path(tmp) / "vectors.npy"
        np.save(npy, vectors)
        for n in cold_sizes:
            cold = _run_child(npy, n, "project")
            rows.append({"what": "project, cold (fresh process)", "points": n, "seconds": cold["first_project_s"],
                         "import_umap_s": cold["import_umap_s"]})
        hidden = _run_child(npy, 2000 if not args.quick else 500, "warm_up_then_project")
        rows.append({"what": "warm_up() alone (fresh process; the app runs it in a thread)", "points": 50,
                     "seconds": hidden["warm_up_s"], "import_umap_s": hidden["import_umap_s"]})
        rows.append({"what": "project right after warm_up() (fresh process)",
                     "points": 2000 if not args.quick else 500, "seconds": hidden["first_project_s"]})

    projection.warm_up()
    warm: dict[int, float] = {}
    for n in sizes:
        reps = repeats if n <= 2000 else max(1, min(repeats, 2))
        times = [time_call(lambda n=n: projection.project(vectors[:n], seed=0))[0] for _ in range(reps)]
        warm[n] = statistics.median(times)
        rows.append({"what": "project, warm", "points": n, "seconds": warm[n], "repeats": reps})
    pair_n = 2000 if not args.quick else 250  # the app's before | after map: 2 x max_map_points
    other = vectors[:pair_n] + np.random.default_rng(0).normal(0, 0.01, (pair_n, vectors.shape[1]))
    pair_s = statistics.median([time_call(lambda: projection.project_pair(vectors[:pair_n], other))[0]
                                for _ in range(repeats)])
    rows.append({"what": "project_pair (before | after), warm", "points": 2 * pair_n, "seconds": pair_s})
    compare_n = 2000 if not args.quick else 500
    _plain_umap(vectors[:compare_n])  # its own compilation (euclidean, parallel code paths) out of the timing
    plain = statistics.median([time_call(lambda: _plain_umap(vectors[:compare_n]))[0] for _ in range(repeats)])
    rows.append({"what": "plain umap.UMAP() defaults, warm", "points": compare_n, "seconds": plain})
    _cosine_umap(vectors[:100])
    cosine = statistics.median([time_call(lambda: _cosine_umap(vectors[:compare_n]))[0] for _ in range(repeats)])
    rows.append({"what": "umap.UMAP(metric='cosine') as the app called it before (pairs compared in Python)",
                 "points": compare_n, "seconds": cosine})
    pca = statistics.median([time_call(lambda: projection.pca_2d(vectors[:compare_n]))[0] for _ in range(3)])
    rows.append({"what": "PCA fallback (pca_2d)", "points": compare_n, "seconds": pca})
    for row in rows:
        if row["what"].startswith(("plain", "PCA", "umap.UMAP")) or row["what"] == "project, warm":
            if row["points"] in warm:
                row["vs_project_warm"] = ratio(row["seconds"], warm[row["points"]])

    targets = []
    if 2000 in warm:
        targets.append(Target("project 2k points, warm", warm[2000], 5.0, higher_is_better=False, unit=" s"))
    notes = [
        "Vectors: all-MiniLM-L6-v2 (mean pooling) embeddings of distinct STS-B sentences; UMAP cosine metric, "
        "n_neighbors 15, min_dist 0.1, seeded (single-threaded, as projection.project runs it).",
        "Cold = first call in a new process (numba compiles); import_umap_s is paid separately at first import.",
        "The app projects in its map worker (simcse_core.worker), a child process that runs projection.warm_up() "
        "when it starts.",
    ]
    return report(NAME, args, rows, targets=targets, notes=notes, extra={"warm_s": warm})


def _cosine_umap(vectors: np.ndarray) -> np.ndarray:
    import umap

    return umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, metric="cosine", random_state=0, n_jobs=1,
                     unique=True).fit_transform(vectors)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
