"""Shared helpers for the benchmarks: timing, percentiles, FLOP counts, matmul peak, machine facts, results.

Every benchmark script uses these so that its figures are taken and reported the same way: medians of several
repetitions (interleaved between the things compared, so that noise on a shared machine hits all of them
alike), a printed table, and ``bench/results/<name>.json`` with the figures and the machine they came from.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
# The shared STS-B copy (tests and benchmarks only; never copied into the repo).
SHARED_STSB = REPO.parent / "shared" / "data" / "stsb"


# ----------------------------------------------------------------------------------------------- statistics
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    ordered = sorted(float(v) for v in values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def summarize(times: Sequence[float]) -> dict[str, float]:
    """Median, p95, min, max and count of a list of timings (seconds)."""
    return {
        "median_s": statistics.median(times),
        "p95_s": percentile(times, 95),
        "min_s": min(times),
        "max_s": max(times),
        "n": len(times),
    }


def time_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall-clock seconds of one call, and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def interleaved_repeats(
    fns: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Time each function ``repeats`` times, in turns (A B C A B C ...), after ``warmup`` untimed calls each.

    Interleaving spreads the machine's background noise over every contender instead of one of them.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(time_call(fn)[0])
    return times


def latency_samples(fn: Callable[[], Any], n: int, warmup: int = 3) -> list[float]:
    """``n`` timings (seconds) of ``fn`` after ``warmup`` untimed calls, for p50/p95 latencies."""
    for _ in range(warmup):
        fn()
    return [time_call(fn)[0] for _ in range(n)]


def rss_mib() -> float:
    """This process's resident size in MiB (Linux /proc)."""
    with open("/proc/self/status", encoding="utf-8") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def settled_rss_mib() -> float:
    """This process's resident size in MiB once its garbage is collected and freed memory handed back."""
    import gc

    from simcse_core.memory import return_freed_memory

    gc.collect()
    return_freed_memory()
    return rss_mib()


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is 0."""
    return numerator / denominator if denominator else float("nan")


# ----------------------------------------------------------------------------------------------- FLOPs
@dataclass(frozen=True)
class TransformerShape:
    """The sizes of a BERT-like encoder that fix its matmul FLOPs."""

    layers: int  # transformer blocks
    hidden: int  # model width H
    intermediate: int  # feed-forward width I
    matmul_params: int  # parameters of the blocks' weight matrices (embeddings excluded: they are look-ups)

    @classmethod
    def of(cls, hf_model: Any) -> TransformerShape:
        """Read the shape of a Hugging Face BERT-like model."""
        config = hf_model.config
        layers, hidden, intermediate = config.num_hidden_layers, config.hidden_size, config.intermediate_size
        per_layer = 4 * hidden * hidden + 2 * hidden * intermediate  # Q, K, V, output; two feed-forward
        return cls(layers, hidden, intermediate, matmul_params=layers * per_layer)


def forward_flops(shape: TransformerShape, seq_lengths: Sequence[int]) -> float:
    """Matmul FLOPs of one forward pass over sequences of the given (padded) lengths.

    Per token and layer: Q, K, V and output projections 8·H², feed-forward 4·H·I; per sequence and layer the
    attention scores and the weighted sum add 4·T²·H. (A multiply-add counts as 2 FLOPs.)
    """
    h, i = shape.hidden, shape.intermediate
    total = 0
    for t in seq_lengths:
        total += shape.layers * (t * (8 * h * h + 4 * h * i) + 4 * t * t * h)
    return float(total)


def padded_lengths(lengths: Sequence[int], batch_size: int, order: Sequence[int] | None = None) -> list[int]:
    """Each sequence's length after padding to the longest of its batch (batches cut from ``order``).

    ``order`` is the order sequences are batched in (e.g. longest first); ``None`` keeps the input order.
    The result is in input order, so ``forward_flops(shape, padded_lengths(...))`` counts the work a
    padded batch really does.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    order = list(range(len(lengths))) if order is None else [int(i) for i in order]
    out = [0] * len(lengths)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        longest = max(lengths[i] for i in batch)
        for i in batch:
            out[i] = longest
    return out


def train_step_flops(shape: TransformerShape, seq_lengths: Sequence[int], views: int = 2) -> float:
    """Forward + backward FLOPs of a training step: 3 × forward (backward is twice the forward), × views.

    Unsupervised SimCSE passes the batch through the encoder twice (two dropout views), so ``views=2``.
    """
    return 3.0 * views * forward_flops(shape, seq_lengths)


def approx_train_flops(params: int, tokens: int, views: int = 2) -> float:
    """The usual estimate 6 × params × tokens for forward + backward, × views."""
    return 6.0 * params * tokens * views


def matmul_peak(dtype: str = "fp32", size: int = 2048, repeats: int = 5, threads: int | None = None) -> float:
    """This machine's measured matmul throughput (FLOP/s): median over ``repeats`` square (size x size) matmuls.

    ``dtype`` is "fp32" or "bf16" (a bf16 matmul uses AVX512-BF16 / AMX where the CPU has it).
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(torch_dtype)  # (n, n)
    b = torch.randn(size, size, generator=generator).to(torch_dtype)  # (n, n)
    times = interleaved_repeats({"mm": lambda: torch.mm(a, b)}, repeats=repeats, warmup=2)["mm"]
    return 2.0 * size**3 / statistics.median(times)


def matmul_peaks(quick: bool = False) -> dict[str, float]:
    """fp32 and bf16 matmul peaks (FLOP/s) and their ratio, measured now."""
    size, repeats = (1024, 3) if quick else (2048, 7)
    fp32 = matmul_peak("fp32", size, repeats)
    bf16 = matmul_peak("bf16", size, repeats)
    return {"fp32_flops": fp32, "bf16_flops": bf16, "bf16_over_fp32": ratio(bf16, fp32), "size": size}


# ----------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class StsSplit:
    """One STS-B split: sentence pairs and gold scores (0-5)."""

    name: str
    sentence1: tuple[str, ...]
    sentence2: tuple[str, ...]
    scores: tuple[float, ...]

    def sentences(self) -> list[str]:
        """Distinct sentences, order kept."""
        return list(dict.fromkeys(self.sentence1 + self.sentence2))


def load_stsb_split(split: Literal["train", "dev", "test"]) -> StsSplit:
    """STS-B from the shared benchmark copy, else from the engine's loader (the PyPI package)."""
    path = SHARED_STSB / f"{split}.csv"
    if path.is_file():
        s1, s2, scores = [], [], []
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.reader(f):
                if len(row) < 3:
                    continue
                try:
                    score = float(row[2])
                except ValueError:  # a header line
                    continue
                s1.append(row[0])
                s2.append(row[1])
                scores.append(score)
        return StsSplit(f"STS-B {split} (shared copy)", tuple(s1), tuple(s2), tuple(scores))
    from simcse_core.evaluation.sets import load_stsb

    pairs = load_stsb(split)
    return StsSplit(f"STS-B {split} ({pairs.source})", pairs.sentence1, pairs.sentence2, pairs.scores)


def spearman_from_vectors(vectors1: Any, vectors2: Any, scores: Sequence[float]) -> float:
    """Spearman correlation × 100 between row-wise cosine similarities and gold scores."""
    import numpy as np
    from scipy.stats import spearmanr

    a = np.asarray(vectors1, dtype=np.float64)
    b = np.asarray(vectors2, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    cosine = (a * b).sum(axis=1)  # (N,)
    return float(spearmanr(cosine, np.asarray(scores, dtype=np.float64)).statistic * 100.0)


# ----------------------------------------------------------------------------------------------- setup, facts
def make_parser(description: str) -> argparse.ArgumentParser:
    """The flags every benchmark has: --quick, --repeats, --threads, --no-write."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a small, fast version for smoke testing")
    parser.add_argument("--repeats", type=int, default=None, help="repetitions per measurement (median is quoted)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write bench/results/*.json")
    return parser


def setup(args: argparse.Namespace) -> None:
    """Quiet logging, offline hub, and the thread count asked for."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "sentence_transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    if REPO.as_posix() not in sys.path:
        sys.path.insert(0, REPO.as_posix())
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def bench_machine_facts() -> dict[str, Any]:
    """simcse_core's machine facts plus load average, library versions and the repository commit."""
    from simcse_core.runtime import machine_facts

    facts: dict[str, Any] = dict(machine_facts())
    try:
        facts["load_average_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        facts["load_average_1m"] = None
    for module in ("sentence_transformers", "faiss", "umap", "gradio", "scipy"):
        try:
            facts[module] = __import__(module).__version__
        except (ImportError, AttributeError):
            facts[module] = None
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10, check=False)
        facts["commit"] = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        facts["commit"] = None
    return facts


# ----------------------------------------------------------------------------------------------- targets, output
@dataclass(frozen=True)
class Target:
    """A goal from the issue, checked against a measured value."""

    name: str  # what is measured, e.g. "encode speed-up vs sentence-transformers"
    value: float  # the measured value
    threshold: float  # the goal
    higher_is_better: bool = True
    unit: str = ""

    @property
    def met(self) -> bool:
        if math.isnan(self.value):
            return False
        return self.value >= self.threshold if self.higher_is_better else self.value <= self.threshold

    def row(self) -> dict[str, Any]:
        sign = ">=" if self.higher_is_better else "<="
        return {"target": self.name, "goal": f"{sign} {self.threshold:g}{self.unit}",
                "measured": f"{self.value:.3g}{self.unit}", "met": "yes" if self.met else "NO"}


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A Markdown table of ``rows`` (dicts); floats are shown with 3-4 significant digits."""
    if not rows:
        return "(no rows)"
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))

    def cell(value: Any) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return "n/a"
            return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3g}"
        return "" if value is None else str(value)

    body = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[k]) for r in body)) for k, c in enumerate(columns)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |" for r in body]
    return "\n".join(lines)


def report(
    name: str,
    args: argparse.Namespace,
    rows: Sequence[Mapping[str, Any]],
    *,
    targets: Sequence[Target] = (),
    extra: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    columns: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Print the table (and targets, notes) and write ``bench/results/<name>.json``; return the payload."""
    title = f"## {name}" + (" (quick)" if args.quick else "")
    print(f"\n{title}\n")
    print(format_table(rows, columns))
    if targets:
        print()
        print(format_table([t.row() for t in targets]))
    for note in notes:
        print(f"- {note}")
    payload = {
        "name": name,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "args": {k: v for k, v in vars(args).items() if k != "func"},
        "machine": bench_machine_facts(),
        "rows": [dict(r) for r in rows],
        "targets": [{**asdict(t), "met": t.met} for t in targets],
        "notes": list(notes),
        **(dict(extra) if extra else {}),
    }
    if not args.no_write:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{name}{'_quick' if args.quick else ''}.json"
        text = json.dumps(strict_json(payload), indent=2, default=_json_default, allow_nan=False)
        path.write_text(text + "\n", encoding="utf-8")
        print(f"\nwrote {path.relative_to(REPO)}")
    return payload


def strict_json(value: Any) -> Any:
    """A copy of ``value`` where NaN and infinite floats become None (JSON has no NaN), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return strict_json(value.tolist())
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)
