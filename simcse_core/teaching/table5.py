"""The paper's Table 5 in miniature: the raw model's training-free readings beside SimCSE runs from it.

Table 5 (STS-B test column) puts unsupervised SimCSE from BERT-base above every training-free reading of
BERT-base: GloVe (avg.) 58.02, first-last average 53.87, whitening 68.24, unsup-SimCSE 76.85. Here the same
readings are taken of ``raw-bert`` (the static word-piece average standing for GloVe), and scored beside the
lesson's live run and the prepared run (the same recipe, trained longer at its own learning rate).
:func:`verdict` says plainly which wins, so a screen never implies the paper's order where our miniature does not
show it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from simcse_core.evaluation import paper
from simcse_core.paths import PROJECT_ROOT
from simcse_core.teaching import baselines

if TYPE_CHECKING:
    from simcse_core.evaluation.sets import ScoredPairs

MEASURED_PATH = PROJECT_ROOT / "bench" / "results" / "raw_model.json"  # written by bench/raw_model.py
STSB = paper.TABLE5_SETS.index("STS-B")
UNSUP_ROW = "Unsup-SimCSE-BERT-base"

# (our label, pooler as the encoder names it, the paper's Table 5 row it stands for, or None)
TRAINING_FREE: tuple[tuple[str, str, str | None], ...] = (
    ("static word-piece average", "static", "GloVe embeddings (avg.)"),
    ("raw [CLS]", "cls_before_pooler", None),
    ("mean of the last layer", "mean", None),
    ("first-last average", "avg_first_last", "BERTbase (first-last avg.)"),
    ("first-last average, whitened", "whitened", "BERTbase-whitening"),
)


@dataclass(frozen=True)
class Table5Row:
    """One reading of a model, scored on STS-B, beside the paper's figure for the row it stands for."""

    label: str  # as shown on screen
    kind: Literal["training-free", "SimCSE"]
    pooler: str  # the encoder's pooler name ("static" and "whitened" for the two computed readings)
    stsb_dev: float | None  # Spearman x100
    stsb_test: float
    paper_row: str | None  # Table 5's row label, when the paper has one
    paper_stsb_test: float | None  # that row's STS-B test figure (BERT-base)
    note: str = ""  # how ours differs from the paper's setting


def paper_stsb_test(row: str | None) -> float | None:
    """Table 5's STS-B test figure of a row (baselines and SimCSE rows alike)."""
    if row is None:
        return None
    if row in paper.TABLE5_BASELINES:
        return paper.TABLE5_BASELINES[row][STSB].value
    return paper.TABLE5[row][STSB]


def training_free_rows(model: str, dev: ScoredPairs | None, test: ScoredPairs,
                       whitening_sentences: Sequence[str]) -> list[Table5Row]:
    """The raw model's five training-free readings (whitening fitted on ``whitening_sentences``)."""
    from simcse_core.model.loading import load_encoder

    first_last = load_encoder(model, pooler="avg_first_last")
    whitening = baselines.fit_whitening(first_last.encode(list(whitening_sentences)))
    rows = []
    for label, pooler, row in TRAINING_FREE:
        if pooler == "static":
            embed = lambda s: baselines.static_average(first_last, s)  # noqa: E731
            note = "the model's own input word-piece embeddings, not GloVe"
        elif pooler == "whitened":
            embed = lambda s: whitening(first_last.encode(list(s)))  # noqa: E731
            note = f"fitted on {len(whitening_sentences):,} lesson sentences (the paper's on NLI)"
        else:
            encoder = load_encoder(model, pooler=pooler)
            embed = lambda s, e=encoder: e.encode(list(s))  # noqa: E731
            note = ""
        rows.append(_row(label, "training-free", pooler, embed, dev, test, row, note))
    return rows


def simcse_row(label: str, embed: Callable[[Sequence[str]], np.ndarray], pooler: str, dev: ScoredPairs | None,
               test: ScoredPairs, note: str = "") -> Table5Row:
    """A SimCSE run's row, beside Table 5's unsupervised SimCSE (BERT-base, [CLS] w/ MLP (train))."""
    return _row(label, "SimCSE", pooler, embed, dev, test, UNSUP_ROW, note)


def _row(label, kind, pooler, embed, dev, test, paper_row, note) -> Table5Row:
    return Table5Row(label, kind, pooler, None if dev is None else round(baselines.spearman_of(embed, dev), 2),
                     round(baselines.spearman_of(embed, test), 2), paper_row, paper_stsb_test(paper_row), note)


def verdict(rows: Sequence[Table5Row]) -> str:
    """One plain sentence: which reading scores highest on STS-B test, and whether that is the paper's order."""
    if not rows:
        return "Nothing measured yet."
    best = max(rows, key=lambda r: r.stsb_test)
    free = [r for r in rows if r.kind == "training-free"]
    trained = [r for r in rows if r.kind == "SimCSE"]
    if not free or not trained:
        return f"Highest on STS-B test: {best.label} ({best.stsb_test:.1f})."
    best_free = max(free, key=lambda r: r.stsb_test)
    best_run = max(trained, key=lambda r: r.stsb_test)
    gap = best_run.stsb_test - best_free.stsb_test
    unresolved = " — under a point, which one seed does not resolve" if abs(gap) < 1 else ""
    if gap > 0:
        below = [r for r in trained if r.stsb_test <= best_free.stsb_test]
        still = f" Still below it: {'; '.join(f'{r.label}, {r.stsb_test:.1f}' for r in below)}." if below else ""
        return (f"SimCSE wins, as in the paper's Table 5: {best_run.label} scores {best_run.stsb_test:.1f} on "
                f"STS-B test, {gap:.1f} above the best training-free reading ({best_free.label}, "
                f"{best_free.stsb_test:.1f}; one training run, seed 42{unresolved}).{still}")
    return (f"Here the paper's order does not hold: the best training-free reading ({best_free.label}, "
            f"{best_free.stsb_test:.1f}) is {-gap:.1f} above the best SimCSE run ({best_run.label}, "
            f"{best_run.stsb_test:.1f}; one training run, seed 42{unresolved}) on STS-B test. Our raw model is far "
            "smaller than BERT-base and saw far less text (models/raw-bert/MODEL.md).")


def measured_rows(path: Path = MEASURED_PATH) -> list[Table5Row]:
    """The rows bench/raw_model.py measured on the project's machine (empty when it has not been run)."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8")).get("table5", [])
    except (OSError, ValueError):
        return []
    return [Table5Row(**row) for row in stored]


def as_records(rows: Sequence[Table5Row]) -> list[dict]:
    """Rows as plain dicts (for JSON)."""
    return [asdict(r) for r in rows]
