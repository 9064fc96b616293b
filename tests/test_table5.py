"""Table 5 in miniature: the paper's rows behind our readings, and a verdict that says who wins."""

from __future__ import annotations

import json

from simcse_core.evaluation import paper
from simcse_core.teaching import table5
from simcse_core.teaching.table5 import Table5Row


def _row(label: str, kind: str, test: float) -> Table5Row:
    return Table5Row(label, kind, "mean", None, test, None, None)


def test_each_reading_stands_for_the_papers_row_with_its_stsb_test_figure():
    stsb = paper.TABLE5_SETS.index("STS-B")
    assert table5.paper_stsb_test("BERTbase-whitening") == paper.TABLE5_BASELINES["BERTbase-whitening"][stsb].value
    assert table5.paper_stsb_test(table5.UNSUP_ROW) == paper.STSB_TEST["unsup"]
    assert table5.paper_stsb_test(None) is None
    rows = dict((pooler, row) for _, pooler, row in table5.TRAINING_FREE)
    assert rows["whitened"] == "BERTbase-whitening" and rows["avg_first_last"] == "BERTbase (first-last avg.)"


def test_the_verdict_names_the_winner_either_way():
    free = [_row("first-last average, whitened", "training-free", 51.4), _row("raw [CLS]", "training-free", 5.7)]
    won = table5.verdict([*free, _row("the prepared run", "SimCSE", 60.0)])
    assert won.startswith("SimCSE wins") and "8.6 above" in won and "whitened" in won
    lost = table5.verdict([*free, _row("the lesson run", "SimCSE", 45.9)])
    assert "does not hold" in lost and "5.5 above" in lost and "the lesson run" in lost


def test_measured_rows_read_the_bench_result_and_survive_a_missing_one(tmp_path):
    assert table5.measured_rows(tmp_path / "missing.json") == []
    stored = tmp_path / "raw_model.json"
    stored.write_text(json.dumps({"table5": table5.as_records([_row("x", "SimCSE", 1.0)])}))
    assert table5.measured_rows(stored) == [_row("x", "SimCSE", 1.0)]


def test_the_shipped_result_has_a_verdict_that_matches_its_rows():
    rows = table5.measured_rows()
    if rows:  # present once bench/raw_model.py has been run on this checkout
        stored = json.loads(table5.MEASURED_PATH.read_text())
        assert stored["verdict"] == table5.verdict(rows)
