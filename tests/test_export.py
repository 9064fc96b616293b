"""Export files: the Embedding Projector's TSV pair and CSVs, read back with independent readers."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from simcse_core.interop.export import history_rows, write_csv, write_projector_files, write_run_history
from simcse_core.training.train import TrainEvent


def test_projector_files_round_trip_with_a_header_for_several_columns(tmp_path):
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    sentences = ["plain", "has\ta tab", "two\nlines"]
    vec_path, meta_path = write_projector_files(tmp_path, vectors, {"sentence": sentences, "topic": ["a", "b", "c"]})
    np.testing.assert_allclose(np.loadtxt(vec_path, delimiter="\t"), vectors, rtol=1e-5)
    lines = meta_path.read_text(encoding="utf-8").splitlines()
    assert lines == ["sentence\ttopic", "plain\ta", "has a tab\tb", "two lines\tc"]  # one line per vector


def test_projector_metadata_with_one_column_has_no_header(tmp_path):
    _, meta_path = write_projector_files(tmp_path, np.ones((2, 3)), {"sentence": ["x", "y"]}, prefix="run1-")
    assert meta_path.name == "run1-metadata.tsv"
    assert meta_path.read_text(encoding="utf-8").splitlines() == ["x", "y"]


@pytest.mark.parametrize(("vectors", "metadata", "message"), [
    (np.ones((2, 3)), {"sentence": ["x"]}, "has 1 values for 2"),
    (np.ones((2, 3)), {}, "at least one"),
    (np.array([[np.nan, 1.0]]), {"s": ["x"]}, "finite"),
])
def test_projector_refuses_mismatched_input(tmp_path, vectors, metadata, message):
    with pytest.raises(ValueError, match=message):
        write_projector_files(tmp_path, vectors, metadata)


def test_run_history_csv_has_one_row_per_event_and_blank_cells_when_not_evaluated(tmp_path):
    metrics = {"spearman": 80.5, "alignment": 0.1, "uniformity": -2.0, "anisotropy": 0.5}
    events = [TrainEvent(0, 2, None, 3e-5, 0.1, metrics, False),
              TrainEvent(1, 2, 1.25, 3e-5, 0.6, None, False),
              TrainEvent(2, 2, 0.75, 1.5e-5, 1.2, {**metrics, "spearman": 82.0}, True)]
    path = write_run_history(tmp_path / "history.csv", events)
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["loss"] == "" and rows[1]["spearman"] == "" and float(rows[2]["spearman"]) == 82.0
    assert list(rows[0])[:5] == ["step", "loss", "alignment", "uniformity", "spearman"]
    assert history_rows(events)[1]["loss"] == 1.25


def test_write_csv_blanks_nan_and_refuses_nothing(tmp_path):
    path = write_csv(tmp_path / "eval.csv", [{"model": "base", "spearman": float("nan")}])
    assert path.read_text(encoding="utf-8").splitlines() == ["model,spearman", "base,"]
    with pytest.raises(ValueError, match="nothing to export"):
        write_csv(tmp_path / "empty.csv", [])
