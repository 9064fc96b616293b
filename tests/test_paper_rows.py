"""Which row of the paper a run is shown beside: the row of the one setting it changes, or none, said why."""

from __future__ import annotations

from dataclasses import replace

import pytest

from simcse_core.evaluation import paper
from simcse_core.teaching import lessons, paper_rows
from simcse_core.training.config import TrainConfig

PAPER_UNSUP = TrainConfig(mode="unsup", pooler="cls", batch_size=64, lr=3e-5, steps=paper_rows.PAPER_STEPS["unsup"])
PAPER_SUP = TrainConfig(mode="sup", pooler="cls", batch_size=512, lr=5e-5, steps=paper_rows.PAPER_STEPS["sup"])


def test_the_papers_own_settings_match_their_default_rows_with_no_difference() -> None:
    unsup = paper_rows.match(PAPER_UNSUP)
    assert unsup.figure == paper.TABLE6["[CLS] w/ MLP (train)"]["unsup"] and unsup.differs == ()
    sup = paper_rows.match(PAPER_SUP, hard_negatives=True)
    assert sup.figure == paper.TABLE7["Contradiction, α = 1.0"] and sup.differs == ()


@pytest.mark.parametrize(("change", "figure"), [
    (dict(dropout=0.0), paper.TABLE3["p = 0.0"]),
    (dict(dropout=0.5), paper.TABLE3["p = 0.5"]),
    (dict(fixed_dropout_mask=True), paper.TABLE3["Fixed 0.1"]),
    (dict(temperature=1.0), paper.TABLE_D1["τ = 1"]),
    (dict(pooler="avg_first_last"), paper.TABLE6["First-last avg."]["unsup"]),
    (dict(pooler="cls_before_pooler"), paper.TABLE6["[CLS] w/o MLP"]["unsup"]),
])
def test_one_changed_setting_picks_the_row_of_that_setting(change: dict, figure) -> None:
    assert paper_rows.match(replace(PAPER_UNSUP, **change)).figure == figure


def test_no_dropout_is_table_3s_row_not_the_default_one() -> None:
    """A run without dropout was drawn against the default row (80.9 / 82.5); its row is Table 3's p = 0 (71.1)."""
    matched = paper_rows.match(replace(lessons.LESSON_RUN, dropout=0.0))
    assert matched.figure == paper.TABLE3["p = 0.0"]
    said = matched.said()
    assert "Table 3 “p = 0.0” = 71.1" in said and "unsupervised" in said
    assert "pooler “First-last avg.” (the row's: [CLS] w/ MLP (train))" in said  # measured through another pooler
    assert f"batch {lessons.LESSON_RUN.batch_size} (the paper's: 64)" in said


@pytest.mark.parametrize(("change", "why"), [
    (dict(dropout=0.3), "Table 3's rows are p"),
    (dict(temperature=0.2), "Table D.1's rows are τ"),
    (dict(pooler="mean"), "Table 6 has rows for [CLS]"),
    (dict(dropout=0.0, temperature=1.0), "at once"),
    (dict(fixed_dropout_mask=True, dropout=0.2), "only at p 0.1"),
])
def test_a_setting_no_row_has_is_shown_beside_no_row(change: dict, why: str) -> None:
    matched = paper_rows.match(replace(PAPER_UNSUP, **change))
    assert matched.figure is None and why in matched.why_none
    assert matched.said().startswith("no row of the paper matches this run")


def test_unsupervised_temperature_rows_say_table_d1_is_supervised() -> None:
    matched = paper_rows.match(replace(PAPER_UNSUP, temperature=0.1))
    assert matched.figure == paper.TABLE_D1["τ = 0.1"]
    assert "setting: unsupervised (the row's: supervised, inferred)" in matched.differs
    assert "(setting not stated; inferred)" in matched.said()


def test_supervised_rows_follow_the_hard_negatives() -> None:
    assert paper_rows.match(PAPER_SUP, hard_negatives=False).figure == paper.TABLE7["N/A (no hard negative)"]
    assert paper_rows.match(replace(PAPER_SUP, hard_negative_weight=2.0), True).figure == \
        paper.TABLE7["Contradiction, α = 2.0"]
    assert paper_rows.match(replace(PAPER_SUP, hard_negative_weight=0.3), True).figure is None
    assert paper_rows.match(replace(PAPER_SUP, dropout=0.0), True).why_none.endswith("Table 3 is unsupervised")


def test_the_model_data_and_length_are_said_as_differences() -> None:
    said = paper_rows.match(lessons.LESSON_RUN, model="raw-bert", data="20,000 sentences").said()
    assert "model raw-bert (the row's: BERT-base)" in said
    assert "data: 20,000 sentences (the paper's: 10⁶ Wikipedia sentences)" in said
    assert f"{lessons.LESSON_RUN.steps} steps (the paper's: 15,625: one epoch)" in said


def test_the_models_own_pooler_is_read_from_the_caller() -> None:
    own = replace(PAPER_UNSUP, pooler=None)
    assert paper_rows.match(own, pooler="avg_first_last").figure == paper.TABLE6["First-last avg."]["unsup"]
    assert paper_rows.match(own, pooler="mean").why_none.startswith("pooler mean: Table 6 has rows")
