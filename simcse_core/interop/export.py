"""Files for other tools: TensorFlow Embedding Projector TSVs, and CSVs of evaluations and run histories.

The Embedding Projector (projector.tensorflow.org, "Load") reads two files: ``vectors.tsv``, one vector per
line with tab-separated numbers and no header, and ``metadata.tsv``, one line per vector in the same order.
With one metadata column the file has no header; with two or more, the first line names the columns. Tabs and
line breaks inside a sentence would break either format, so they become spaces.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from simcse_core.training.train import TrainEvent

HISTORY_COLUMNS = ("step", "loss", "alignment", "uniformity", "spearman", "anisotropy", "lr", "elapsed_s")


def _cell(value: object) -> str:
    return " ".join(str(value).split())  # tabs and line breaks become single spaces


def write_projector_files(
    folder: str | os.PathLike[str],
    vectors: np.ndarray,
    metadata: Mapping[str, Sequence[object]],
    prefix: str = "",
) -> tuple[Path, Path]:
    """Write ``vectors.tsv`` and ``metadata.tsv`` for the Embedding Projector.

    Args:
        folder: where to write (created if needed).
        vectors: (N, D) embeddings, written as they are (the Projector normalises on request).
        metadata: column name -> N values, e.g. ``{"sentence": [...], "topic": [...], "model": [...]}``.
        prefix: put before the file names, e.g. ``"run2-"``.

    Returns:
        The paths of the vectors file and the metadata file.

    Raises:
        ValueError: no column, a column of the wrong length, or vectors that are not a finite (N, D) matrix.
    """
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0 or not np.isfinite(x).all():
        raise ValueError(f"vectors must be a non-empty finite (N, D) matrix, got shape {x.shape}.")
    if not metadata:
        raise ValueError("Give at least one metadata column (e.g. the sentences).")
    for name, values in metadata.items():
        if len(values) != len(x):
            raise ValueError(f"Metadata column {name!r} has {len(values)} values for {len(x)} vectors.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vectors_path, metadata_path = folder / f"{prefix}vectors.tsv", folder / f"{prefix}metadata.tsv"
    np.savetxt(vectors_path, x, delimiter="\t", fmt="%.6g", encoding="utf-8")
    columns = list(metadata)
    with metadata_path.open("w", encoding="utf-8", newline="") as f:
        if len(columns) > 1:
            f.write("\t".join(_cell(c) for c in columns) + "\n")
        for row in zip(*(metadata[c] for c in columns)):
            f.write("\t".join(_cell(v) for v in row) + "\n")
    return vectors_path, metadata_path


def history_rows(events: Iterable[TrainEvent]) -> list[dict[str, float | None]]:
    """One row per training event: step, loss, and the evaluation metrics where the step was evaluated."""
    rows = []
    for event in events:
        metrics = event.metrics or {}
        rows.append({"step": event.step, "loss": event.loss, "alignment": metrics.get("alignment"),
                     "uniformity": metrics.get("uniformity"), "spearman": metrics.get("spearman"),
                     "anisotropy": metrics.get("anisotropy"), "lr": event.lr, "elapsed_s": event.elapsed_s})
    return rows


def write_csv(path: str | os.PathLike[str], rows: Sequence[Mapping[str, object]],
              columns: Sequence[str] | None = None) -> Path:
    """Write dicts as a CSV with a header (columns: ``columns``, else every key in first-seen order).

    Missing values and NaN are written as empty cells, so spreadsheets and pandas read them as missing.
    """
    if not rows:
        raise ValueError("There is nothing to export yet.")
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def value(v: object) -> object:
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else v

    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([value(row.get(c)) for c in columns])
    return path


def write_run_history(path: str | os.PathLike[str], events: Iterable[TrainEvent]) -> Path:
    """A run's history as CSV: step, loss, alignment, uniformity, spearman, anisotropy, lr, elapsed_s."""
    return write_csv(path, history_rows(events), HISTORY_COLUMNS)
