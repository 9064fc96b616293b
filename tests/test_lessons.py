"""The lessons' start: the figures captions quote agree with the bench run that measured them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from simcse_core.teaching import lessons

RESULT = Path(__file__).resolve().parents[1] / "bench" / "results" / "raw_model.json"
LR_GRIDS = ("lesson_recipe_seeds", "lesson_recipe_seeds_b")  # the lesson's learning rate: seeds 42-44, then 45-51
# The lesson's schedule and AdamW β₂, ten seeds each (42-51), against the paper's schedule of LR_GRIDS.
SCHEDULE_GRIDS = ("lesson_recipe_schedule", "lesson_recipe_schedule_held50")


def _row(rows: list[dict], model: str, pooler: str, when: str) -> dict:
    return next(r for r in rows if r["model"] == model and r["pooler"] == pooler and r["when"].startswith(when))


def test_measured_figures_agree_with_the_bench_result():
    result = json.loads(RESULT.read_text())
    before = _row(result["rows"], lessons.START_MODEL, lessons.START_POOLER, "as shipped")
    after = _row(result["rows"], lessons.START_MODEL, lessons.START_POOLER, "after the lesson run")
    m = lessons.MEASURED
    assert (m.start_dev, m.start_test) == pytest.approx((before["stsb_dev"], before["stsb_test"]), abs=0.01)
    assert (m.after_dev, m.after_test) == pytest.approx((after["stsb_dev"], after["stsb_test"]), abs=0.01)
    assert (m.start_anisotropy, m.after_anisotropy) == pytest.approx((before["anisotropy"], after["anisotropy"]),
                                                                      abs=0.001)
    assert (m.start_alignment, m.after_alignment) == pytest.approx((before["alignment"], after["alignment"]),
                                                                    abs=0.001)
    assert m.train_s == pytest.approx(result["lesson_train_s"], abs=0.1)
    assert result["lesson_steps"] == lessons.LESSON_RUN.steps
    scale = lessons.TRAINED_AT_SCALE
    minilm = _row(result["rows"], scale.model, scale.pooler, "as shipped")
    assert (scale.stsb_dev, scale.stsb_test, scale.anisotropy) == pytest.approx(
        (minilm["stsb_dev"], minilm["stsb_test"], minilm["anisotropy"]), abs=0.01)


def test_the_lesson_run_is_the_papers_unsupervised_setting_but_for_the_measured_pooler_lr_and_batch():
    run = lessons.LESSON_RUN
    assert (run.mode, run.temperature, run.dropout, run.max_length) == ("unsup", 0.05, 0.1, 32)
    assert run.batch_size in (64, 128, 256, 512)  # the paper's grid (Appendix A)
    assert run.pooler == lessons.START_POOLER == "avg_first_last" and lessons.TABLE6_ROW == "First-last avg."


def test_the_recipe_is_the_one_its_bench_chose_and_its_figures_agree():
    result = json.loads((RESULT.parent / "lesson_recipe.json").read_text())
    chosen = result["chosen"]
    assert chosen["pooler"] == lessons.START_POOLER
    free = {r["recipe"]: r for r in result["rows"] if r["kind"] == "training-free"}
    measured = lessons.RECIPE_MEASURED
    assert (measured["pooler_dev"], measured["pooler_test"]) == pytest.approx(
        (chosen["stsb_dev"], chosen["stsb_test"]), abs=0.01)
    assert measured["best_free_test"] == pytest.approx(free["first-last average"]["stsb_test"], abs=0.01)
    assert measured["whitened_test"] == pytest.approx(free["first-last average, whitened"]["stsb_test"], abs=0.01)
    cls_runs = [r["stsb_test"] for r in result["rows"] if r.get("pooler") == "cls_before_pooler"]
    assert measured["cls_test"] == pytest.approx(cls_runs[0], abs=0.01)
    # The batch: chosen on the same examples; its chosen run is the lesson run itself.
    batch = json.loads((RESULT.parent / "lesson_recipe_batch.json").read_text())
    picked = batch["chosen"]
    assert (picked["batch"], picked["lr"], picked["steps"]) == (lessons.LESSON_BATCH, chosen["lr"],
                                                                lessons.LESSON_STEPS)
    assert (measured["dev"], measured["test"]) == pytest.approx((picked["stsb_dev"], picked["stsb_test"]), abs=0.01)
    batch64 = next(r for r in batch["rows"] if r.get("batch") == 64)
    assert measured["batch64_dev"] == pytest.approx(batch64["stsb_dev"], abs=0.01)
    assert batch64["steps"] * 64 == picked["steps"] * picked["batch"]  # the same examples
    # The learning rate: chosen on the mean STS-B dev of ten seeds (two grid runs: seeds 42-44, then 45-51), at
    # the lesson's pooler, batch and steps.
    from bench.lesson_recipe import by_candidate

    rows = [row for name in LR_GRIDS for row in json.loads((RESULT.parent / f"{name}.json").read_text())["rows"]]
    runs = [r for r in rows if r["kind"] == "SimCSE"]
    assert len({(r["lr"], r["seed"]) for r in runs}) == len(runs)  # no seed counted twice
    by_lr = {c["lr"]: c for c in by_candidate(rows)}
    best = max(by_lr.values(), key=lambda c: c["stsb_dev_mean"])
    assert best["lr"] == lessons.LESSON_LR and best["seeds"] == measured["lr_seeds"] == 10
    assert all(c["seeds"] == 10 for c in by_lr.values())
    assert (best["pooler"], best["batch"], best["dropout"]) == (lessons.START_POOLER, lessons.LESSON_BATCH,
                                                                lessons.LESSON_RUN.dropout)
    assert all(r["steps"] == lessons.LESSON_STEPS for r in runs)
    assert (measured["lr_dev"], measured["lr_dev_sd"], measured["lr_test"], measured["lr_test_sd"]) == pytest.approx(
        (best["stsb_dev_mean"], best["stsb_dev_sd"], best["stsb_test_mean"], best["stsb_test_sd"]), abs=0.01)
    assert (measured["lr_1e-3_dev"], measured["lr_1e-3_test"], measured["lr_2e-3_dev"]) == pytest.approx(
        (by_lr[1e-3]["stsb_dev_mean"], by_lr[1e-3]["stsb_test_mean"], by_lr[2e-3]["stsb_dev_mean"]), abs=0.01)


def test_the_schedule_is_the_one_its_bench_chose_over_ten_seeds_and_its_figures_agree():
    from bench.lesson_recipe import by_candidate

    run, measured = lessons.LESSON_RUN, lessons.RECIPE_MEASURED
    rows = [row for name in SCHEDULE_GRIDS for row in json.loads((RESULT.parent / f"{name}.json").read_text())["rows"]]
    runs = [r for r in rows if r["kind"] == "SimCSE"]
    assert all(r["steps"] == lessons.LESSON_STEPS and r["batch"] == lessons.LESSON_BATCH for r in runs)
    assert {r["seed"] for r in runs} == set(range(42, 52))  # the seeds of the paper-schedule grid
    candidates = by_candidate(rows)
    assert all(c["seeds"] == 10 for c in candidates)
    best = max(candidates, key=lambda c: c["stsb_dev_mean"])  # chosen on the seeds' mean STS-B dev
    assert (best["lr"], best["decay_fraction"], best["adam_beta2"]) == (run.lr, run.decay_fraction, run.adam_beta2)
    assert (measured["schedule_dev"], measured["schedule_dev_sd"], measured["schedule_test"],
            measured["schedule_test_sd"]) == pytest.approx((best["stsb_dev_mean"], best["stsb_dev_sd"],
                                                             best["stsb_test_mean"], best["stsb_test_sd"]), abs=0.01)
    assert measured["schedule_seeds"] == best["seeds"]
    at_1e3 = next(c for c in candidates if c["lr"] == 1e-3 and c["decay_fraction"] == run.decay_fraction)
    held50 = next(c for c in candidates if c["decay_fraction"] == 0.5)
    assert (measured["schedule_1e-3_dev"], measured["held50_dev"]) == pytest.approx(
        (at_1e3["stsb_dev_mean"], held50["stsb_dev_mean"]), abs=0.01)
    # "ended higher": above the paper's schedule at the same rate, on the same ten seeds
    assert best["stsb_dev_mean"] > measured["lr_dev"] and best["stsb_test_mean"] > measured["lr_test"]


def test_same_recipe_ignores_length_and_seed_only():
    from dataclasses import replace

    assert lessons.same_recipe(replace(lessons.LESSON_RUN, steps=5000, seed=7, time_budget_s=60.0))
    assert not lessons.same_recipe(replace(lessons.LESSON_RUN, lr=3e-3))
    assert not lessons.same_recipe(replace(lessons.LESSON_RUN, decay_fraction=1.0))


def test_lesson_sentences_are_read_once_and_not_empty():
    sentences = lessons.lesson_sentences()
    assert len(sentences) == 20_000 and all(s == s.strip() and s for s in sentences)


def test_the_prepared_run_keeps_its_own_learning_rate_only_where_the_lessons_scored_lower():
    from simcse_core.teaching.prepared import PREPARED_RUN

    prepared, run = lessons.PREPARED, lessons.LESSON_RUN
    assert (PREPARED_RUN.lr, PREPARED_RUN.decay_fraction, PREPARED_RUN.adam_beta2) == (
        prepared.lr, prepared.decay_fraction, prepared.adam_beta2)
    assert lessons.same_recipe(replace(PREPARED_RUN, lr=run.lr, decay_fraction=run.decay_fraction,
                                       adam_beta2=run.adam_beta2))
    if (prepared.decay_fraction, prepared.adam_beta2) != (run.decay_fraction, run.adam_beta2):
        # the lesson's schedule at the prepared run's length, not higher on STS-B dev by more than one seed resolves
        held = json.loads((RESULT.parent / "prepared_recipe_held.json").read_text())["rows"][0]
        assert held["steps"] == prepared.steps and held["stsb_dev"] - prepared.stsb_dev < 1.0
        assert prepared.recipe().endswith("with the paper's schedule")
    if prepared.lr != lessons.LESSON_LR:  # chosen on STS-B dev, as the lesson's own rate was
        other = json.loads((RESULT.parent / "raw_model_prepared_lr1.5e-3.json").read_text())
        assert lessons.LESSON_LR == 1.5e-3, "measure the prepared run at the lesson's new rate"
        at_lesson_lr = next(r for r in other["rows"] if r["model"] == prepared.model)
        assert at_lesson_lr["stsb_dev"] < prepared.stsb_dev
        assert prepared.recipe().startswith(f"the same recipe at lr {prepared.lr:g}")


def test_the_prepared_runs_figures_agree_with_the_bench_and_its_files_fit_a_space():
    result = json.loads(RESULT.read_text())
    row = next(r for r in result["rows"] if r["model"] == lessons.PREPARED.model)
    training = json.loads((RESULT.parents[2] / "models" / lessons.PREPARED.model / "training.json").read_text())
    prepared = lessons.PREPARED
    assert (prepared.stsb_dev, prepared.stsb_test) == pytest.approx((row["stsb_dev"], row["stsb_test"]), abs=0.01)
    assert prepared.steps == training["steps"]
    assert prepared.train_min == pytest.approx(training["train_s"] / 60, abs=0.05)
    assert prepared.train_min <= 15  # the bound on two idle cores
    folder = RESULT.parents[2] / "models" / prepared.model
    assert all(f.stat().st_size <= 9_000_000 for f in folder.iterdir())
