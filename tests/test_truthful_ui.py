"""Issue 8: what the app shows a learner must mean what it says (handler-level tests on the real model)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from simcse_core.evaluation.sets import QUICK_EVAL_PAIRS, stsb_available
from ui.present import plots, text
from ui.serving.config import StudioConfig
from ui.serving.registry import ModelRegistry
from ui.serving.session import Session
from ui.serving.studio import Studio
from ui.tabs import evaluate, finetune, similarity

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Studio:
    config = StudioConfig(device="cpu", precision="fp32", temp_root=str(tmp_path_factory.mktemp("sessions")))
    return Studio(config, ModelRegistry(config))


def _score(out: str) -> float:
    return float(re.search(r"## (-?\d+\.\d+)", out).group(1))


def _compare(studio: Studio, a: str, b: str, pooler: str = "mean") -> str:
    """The Similarity tab's score for ``a`` and ``b`` with the base model."""
    return similarity.score_pair(studio, a=a, b=b, choice=studio.config.base_label, pooler=pooler,
                                 session=Session())["score"]


def test_unknown_emoji_get_no_verdict_and_a_plain_warning(studio: Studio) -> None:
    out = _compare(studio, "🐶", "🍕")
    assert _score(out) > 0.99  # both read as [UNK]: the number itself is meaningless
    assert text.NO_VERDICT in out and "nearly identical" not in out and "very close" not in out
    assert "“🐶” and “🍕” are both unknown to this model" in out


def test_mostly_unknown_chinese_gets_no_verdict(studio: Studio) -> None:
    out = _compare(studio, "我喜欢吃苹果", "今天天气很好")
    assert text.NO_VERDICT in out and "unknown to this model" in out


def test_truncation_is_said_on_screen(studio: Studio) -> None:
    long = "Go! " * 240  # 960 characters (under the box's limit), 480 word pieces
    out = _compare(studio, long, "A short sentence.")
    assert re.search(r"Sentence A is longer than this model reads: 254 of its 480 word pieces were used", out)


def test_whole_sentences_are_compared_not_their_first_32_tokens(studio: Studio) -> None:
    head = "the quick brown fox jumps over the lazy dog near the river bank while children play " * 2
    out = _compare(studio, head + "with a red ball.", head + "and stock prices crash on wall street.")
    assert _score(out) < 0.95 and "longer than this model reads" not in out


@pytest.mark.slow
def test_opposites_are_not_called_the_same_meaning(studio: Studio) -> None:
    for pooler in ("mean", "cls_before_pooler"):
        out = _compare(studio, "The movie was fantastic.", "The movie was terrible.", pooler)
        assert "same thing" not in out and "same meaning" not in out
        assert "opposites" in out  # the note on what cosine measures
    assert any(("not on the mat" in b) for _, b, _ in similarity.HARD_EXAMPLES)


def test_heatmap_blanks_sentences_the_model_cannot_read(studio: Studio) -> None:
    with pytest.warns(UserWarning, match="unknown to this model"):
        fig = similarity.heatmap(studio, lines="🐶\n🍕\nA dog runs in the park.\nA puppy plays on the grass.",
                                 choice=studio.config.base_label, pooler="mean", session=Session())["figure"]
    z = np.asarray(fig.data[0].z, dtype=float)
    assert np.isnan(z[0]).all() and np.isnan(z[:, 1]).all() and np.isfinite(z[2:, 2:]).all()
    assert "unknown" in fig.data[0].y[0]


@pytest.mark.slow
def test_cls_scores_are_the_same_on_every_request(studio: Studio) -> None:
    a, b = "A man is playing a guitar.", "Someone plays an instrument."
    first, second = _compare(studio, a, b, "cls"), _compare(studio, a, b, "cls")
    assert _score(first) == _score(second)
    assert studio.registry.get(studio.config.model, "cls").config.head == "checkpoint"


@pytest.mark.slow
@pytest.mark.skipif(not stsb_available(), reason="STS-B not installed")
def test_evaluate_defaults_to_a_quick_stated_sample_with_the_papers_figure(studio: Studio) -> None:
    assert evaluate.set_choices()[0] == evaluate.STSB_DEV_QUICK
    table = evaluate.evaluate(studio, set_choice=evaluate.STSB_DEV_QUICK, upload=None, choice=studio.config.base_label,
                              pooler="mean", session=Session())["table"]
    assert table["Pairs"][0] == QUICK_EVAL_PAIRS and f"{QUICK_EVAL_PAIRS}-pair sample" in table["Evaluation set"][0]
    cell = table["Paper, BERT-base (unsup / sup)"][0]
    assert cell.startswith("82.5 unsup") and "86.2 sup" in cell
    assert "[CLS] w/ MLP (train)" in cell and "Table 7" in cell  # each figure's pooler and table
    assert "1,500" in evaluate.STSB_DEV  # the full set, one option away, with its expected time
    assert "s per model" in evaluate.STSB_DEV


def test_scored_pairs_upload_says_what_was_kept(tmp_path: Path) -> None:
    path = tmp_path / "scored.csv"
    path.write_text("sentence1,sentence2,score\nA man plays.,Someone plays.,4.6\nA dog runs.,Stocks fell.,0.2\n"
                    "A kid reads.,A child reads a book.,4.2\n", encoding="utf-8")
    shown = finetune.describe_data(choice=text.UPLOAD_TRAINING, upload=str(path))
    assert shown["mode"] == "sup" and "2 of its 3 pairs were kept as positives" in shown["data_info"]


def test_live_curve_shows_the_papers_row_and_the_model_trained_at_scale() -> None:
    from types import SimpleNamespace

    from simcse_core.teaching import lessons, paper_rows

    job = SimpleNamespace(data=SimpleNamespace(examples=["a sentence"], summary=lambda: "1 sentence"),
                          config=lessons.LESSON_RUN,
                          base_name=lessons.START_MODEL, base_pooler=lessons.START_POOLER)
    scored = finetune.scoring(job, "STS-B dev (300-pair sample)")
    fig = plots.sts_curve([0, 10], [30.0, 50.0], "STS-B dev (300-pair sample)", scored.references)
    labels = [(a.text or "").replace("<br>   ", " ") for a in fig.layout.annotations]
    figure = paper_rows.match(lessons.LESSON_RUN).figure
    assert figure.setting == "unsup" and figure.table == "Table 6"  # the row of the lesson's pooler
    assert any(f"{figure.value:.1f}" in label and figure.table in label for label in labels)
    assert any(f"{lessons.TRAINED_AT_SCALE.stsb_dev:.1f}" in label and "trained at scale" in label for label in labels)
    assert finetune.scoring(job, "Demo pairs").references == ()


def test_texts_no_longer_claim_what_is_false() -> None:
    assert "Section 5 diagnostics" not in text.EVAL_INTRO
    assert "`mean` [`avg`]" in text.HOW_IT_WORKS  # the official pooler name beside ours
    assert "sup" in text.TIP_STEPS and "15,625" in text.TIP_STEPS
    assert "76.85" in text.PAPER_REFERENCE and "81.57" in text.PAPER_REFERENCE and "SICK-R" in text.PAPER_REFERENCE
    assert text.trained_at_scale() in text.FINETUNE_INTRO and text.lesson_run_measured() in text.FINETUNE_INTRO
    from simcse_core.evaluation.paper import QUOTES

    assert QUOTES["figure2_alignment"].text in text.AU_NOTE  # alignment steady, uniformity better (Figure 2)
    for said in ("already trained for sentence similarity with", "repairs", "trades a little alignment", "79.7"):
        assert said not in text.FINETUNE_INTRO + text.AU_NOTE + text.PAPER_REFERENCE


def test_official_simcse_checkpoints_are_picked_with_their_own_pooler(studio: Studio, monkeypatch) -> None:
    import app

    asked = []

    def fake_encoder_for(choice, pooler, session):
        asked.append(pooler)
        return studio.registry.get(studio.config.model, "mean")

    monkeypatch.setattr(studio, "encoder_for", fake_encoder_for)
    monkeypatch.setattr(type(studio.config), "model_name", lambda self, choice: choice)  # as when online
    shown = app.pick_model(studio, choice="princeton-nlp/unsup-simcse-bert-base-uncased", pooler="mean",
                           session=Session())
    assert asked == ["cls_before_pooler"] and shown["pooler"] == "cls_before_pooler"
    assert "trained with" in shown["status"]
    shown = app.pick_model(studio, choice="princeton-nlp/sup-simcse-bert-base-uncased", pooler="mean",
                           session=Session())
    assert asked[-1] == shown["pooler"] == "cls"


# --- issue 18: what the class sees moves, stays, and names the model ----------------------------------------


def test_evaluations_follow_this_runs_measured_progress_not_an_estimate() -> None:
    from simcse_core.training.train import LIVE_RUN, EvaluationSchedule

    # A loaded server: 3 s a step, so the 60 s budget ends the 250-step run near step 20.
    slow = EvaluationSchedule(LIVE_RUN.steps, LIVE_RUN.time_budget_s)
    due = [step for step in range(1, 21) if slow(step, elapsed_s=3.0 * step)]
    assert due and due[0] <= 3 and len(due) >= 3  # the chart moves in the first seconds, and again after
    # An idle server: every step in 0.1 s; the same shares of the run, by step count.
    fast = EvaluationSchedule(LIVE_RUN.steps, LIVE_RUN.time_budget_s)
    due = [step for step in range(1, 251) if fast(step, elapsed_s=0.1 * step)]
    assert due[0] == 20 and len(due) == len(fast.marks)


def test_finetune_sliders_read_the_core_settings() -> None:
    from simcse_core.training.config import setting_spec

    config = StudioConfig()
    for name in ("lr", "temperature", "dropout", "hard_negative_weight"):
        spec = setting_spec(name)
        assert config.setting_range(name) == (spec.low, spec.high)
    assert config.setting_range("batch_size")[1] < setting_spec("batch_size").high  # the app's narrower cap
    assert config.setting_range("steps") == (1, config.max_steps)
    assert config.setting_range("time_budget_s") == (10.0, config.max_time_budget_s)


def test_one_checker_the_cores_then_the_apps_range_each_message_naming_the_field() -> None:
    """The UI checks a training setting through the core's check_setting (its kinds and canonical form), then the
    app's narrower cap; a SettingError that reaches a handler is the visitor's mistake, not an apology."""
    from simcse_core.training.config import SettingError
    from ui.serving.errors import InputError, as_gr_error, check_training_setting

    config = StudioConfig()
    assert check_training_setting(64.0, "batch_size", "Batch size", config.setting_range("batch_size")) == 64
    assert check_training_setting("avg_first_last", "pooler", "Pooler") == "avg_first_last"
    with pytest.raises(InputError, match=r"^Batch size: 6.5 is not a whole number"):
        check_training_setting(6.5, "batch_size", "Batch size")
    with pytest.raises(InputError, match=r"^Batch size: 512 is outside the allowed range 2 to 256"):
        check_training_setting(512, "batch_size", "Batch size", config.setting_range("batch_size"))
    with pytest.raises(InputError, match=r"^Pooler: "):
        check_training_setting("bogus", "pooler", "Pooler")
    assert "error id" not in as_gr_error(SettingError({"dropout": "dropout must be ..."})).message


def test_a_run_is_named_by_its_label_wherever_it_is_drawn() -> None:
    class Encoder:
        description = "sentence-transformers/all-MiniLM-L6-v2 [cls_before_pooler]"
        config = type("Config", (), {"pooler": "cls_before_pooler"})

    label = "run 3 · unsup · 40 steps · STS 80.1→82.0"
    assert text.model_shown(label, Encoder()).startswith("run 3 ·")
    assert text.model_shown("Bundled: all-MiniLM-L6-v2", Encoder()) == Encoder.description


def test_ablation_headline_claims_agreement_only_for_what_was_compared() -> None:
    from ui.tabs.inside import presets

    notes = presets.notes_markdown([])
    assert "same way as the paper" not in notes and "Nothing is compared" in notes


def test_blanked_heatmap_cells_show_no_nan() -> None:
    figure = plots.similarity_heatmap(["a cat", "🐶"], np.array([[1.0, 0.2], [0.2, 1.0]]), "t", [False, True])
    assert all("nan" not in cell.lower() for row in figure.data[0].text for cell in row)


def test_hard_cases_have_distinct_labels_and_no_time_promises() -> None:
    labels = [label for _, _, label in similarity.HARD_EXAMPLES]
    assert len(labels) == len(set(labels))
    assert "few seconds" not in evaluate.STSB_DEV_QUICK and "Time to score (s, this server)" in evaluate.TABLE_COLUMNS


# --- issue 20: every figure of the lesson run is formatted from the core, never typed ---------------------------


def test_lesson_figures_are_formatted_from_the_measured_constants(monkeypatch) -> None:
    from dataclasses import replace

    from simcse_core.teaching import lessons
    from ui.tabs import lesson

    fake = replace(lessons.MEASURED, start_dev=12.3, after_dev=45.6, start_test=11.1, after_test=44.4,
                   start_anisotropy=0.91, after_anisotropy=0.27, train_s=58.0)
    monkeypatch.setattr(lessons, "MEASURED", fake)
    said = text.lesson_run_measured()
    assert "12.3 → 45.6" in said and "0.91 → 0.27" in said and "11.1 → 44.4" in said
    step = lesson._fine_tune_step()
    assert "12.3 → 45.6" in step and "0.91 → 0.27" in step
    assert f"{lessons.TRAINED_AT_SCALE.stsb_dev:.1f}" in step and lessons.START_MODEL in step


def test_no_caption_types_a_figure_of_the_lesson_run_or_the_model_trained_at_scale() -> None:
    from simcse_core.teaching import lessons

    figures = {f"{value:.1f}" for value in (lessons.TRAINED_AT_SCALE.stsb_dev, lessons.TRAINED_AT_SCALE.stsb_test,
                                             lessons.MEASURED.start_dev, lessons.MEASURED.after_dev,
                                             lessons.MEASURED.start_test, lessons.MEASURED.after_test) if value}
    figures |= {"79.7", "80.6", "84.4"}  # the old MiniLM-start figures
    root = Path(__file__).resolve().parents[1]
    modules = ["ui/present/text.py", "ui/tabs/lesson.py", "app.py",
               *(str(path.relative_to(root)) for tab in ("inside", "finetune")
                 for path in sorted((root / "ui/tabs" / tab).glob("*.py")))]
    for module in modules:
        source = (root / module).read_text(encoding="utf-8")
        typed = sorted(figure for figure in figures if re.search(rf"(?<![\d.]){re.escape(figure)}(?!\d)", source))
        assert not typed, (module, typed)


# --- issue 25: every comparison names its row and setting, both sides told, no false sentence ----------------


def _result(key: str, after: float, before: float = 22.7):
    from simcse_core.teaching import ablations

    preset = ablations.get_preset(key)
    history = ({"step": 0.0, "spearman": before, "alignment": 0.19, "uniformity": -1.2},
               {"step": 300.0, "spearman": after, "alignment": 0.6, "uniformity": -3.2})
    return ablations.AblationResult(key, preset.group, preset.label, preset.paper_stsb_dev, preset.paper_source,
                                    "STS-B dev", 300, 45.0, history)


def _row(table, key: str):
    from simcse_core.teaching import ablations

    return table.loc[table["Row"] == ablations.get_preset(key).label].iloc[0]


def test_table_d1_rows_say_their_inferred_supervised_setting_and_show_the_unsupervised_figure() -> None:
    from simcse_core.evaluation import paper
    from simcse_core.teaching import ablations, lessons
    from ui.serving import runs
    from ui.tabs.inside import presets

    unsup = paper.TABLE6[lessons.TABLE6_ROW]["unsup"]  # the paper's unsupervised τ = 0.05 run through our pooler
    tau = ablations.get_preset("tau-0.05")
    assert not tau.same_setting and tau.counterpart == unsup
    assert ablations.get_preset("tau-1").counterpart is None  # the paper gives no unsupervised τ = 1 figure
    results = [_result("tau-0.05", 38.5), _result("tau-1", 19.4)]
    table = presets.paper_table(results)
    for key in ("tau-0.05", "tau-1"):
        setting = _row(table, key)["Setting: paper · ours"]
        assert "paper: supervised (inferred" in setting and "ours: unsupervised" in setting
        assert "another setting" in setting
    assert f"{unsup.value:.1f} ({unsup.table} “{unsup.row}”)" in _row(table, "tau-0.05")["Paper STS-B dev"]
    legend = plots.ablation_plane(presets.plane_runs(results)).data[0].name
    assert "Table D.1" in legend and "supervised (inferred)" in legend and f"{unsup.value:.1f}" in legend
    shown = presets.preset_shown(Session(), tau, runs.Finished("Done", results[0], (), None))["status"]
    assert "Table D.1 “τ = 0.05”" in shown and "supervised (inferred" in shown and f"{unsup.value:.1f}" in shown
    assert "⚠ Another setting: the paper's row is supervised, ours unsupervised; another pooler" in shown
    notes = presets.notes_markdown(results)
    assert "Table D.1's setting" in notes and ablations.TEMPERATURE_NOTE in notes


def test_table7_presets_say_they_train_on_hand_written_triplets_at_batch_32_not_nli() -> None:
    from simcse_core.data import load_triplets
    from simcse_core.evaluation import paper
    from simcse_core.teaching import ablations
    from ui.serving import runs
    from ui.tabs.inside import presets

    sup = ablations.get_preset("sup-alpha-1")
    count = len(load_triplets(ablations.SUP_TRIPLETS))
    ours = ablations.our_setting(sup)
    assert f"{count} hand-written triplets at batch {sup.config.batch_size} (not NLI data)" in ours
    assert f"SNLI+MNLI ({paper.NLI_PAIRS} pairs)" in ablations.paper_setting(sup)
    started = presets.preset_shown(Session(), sup, runs.Started(sup.label, "STS-B dev", sup.paper_source))["status"]
    assert ours in started and "Table 7" in started
    assert "hand-written" in _row(presets.paper_table([]), "sup-alpha-1")["Setting: paper · ours"]
    assert "Hand-written" in text.SAMPLE_SUP and "NLI triplets" not in text.SAMPLE_SUP


def test_runs_through_another_pooler_than_the_rows_say_so() -> None:
    from simcse_core.teaching import ablations
    from ui.tabs.inside import presets

    table = presets.paper_table([])
    assert "another pooler" in _row(table, "dropout-0")["Setting: paper · ours"]  # ours first-last, paper w/ MLP
    assert "another pooler" in _row(table, "sup-alpha-1")["Setting: paper · ours"]
    for key in ("pool-cls", "pool-cls-mlp", "pool-cls-mlp-train", "pool-first-last"):
        assert ablations.get_preset(key).same_pooler and "⚠" not in _row(table, key)["Setting: paper · ours"]
    assert "Another pooler: the paper's row reads [CLS] w/ MLP (train), ours First-last avg." in \
        presets.differences_said(ablations.get_preset("dropout-0"))


def test_ablation_notes_tell_agreements_and_disagreements_with_both_sides() -> None:
    from ui.tabs.inside import presets

    results = [_result("dropout-0.1", 38.5), _result("dropout-0", 16.7), _result("dropout-fixed-0.1", 32.6)]
    notes = presets.notes_markdown(results)
    assert "✓ agrees: dropout 0 against dropout 0.1 (default): the paper's row is 11.4 points below it (71.1 vs " \
           "82.5); ours 21.8 points below (16.7 vs 38.5): same direction." in notes
    assert "✗ differs: fixed mask 0.1 against dropout 0.1 (default): the paper's row is 38.9 points below it " \
           "(43.6 vs 82.5); ours 5.9 points below (32.6 vs 38.5): much smaller here." in notes
    fixed = _row(presets.paper_table(results), "dropout-fixed-0.1")
    assert fixed["Ours: start → end"] == "22.7 → 32.6"  # no "(+9.9)" that reads as "the fixed mask helps"
    assert fixed["Row against its table's default: paper · ours"].startswith(
        "paper 38.9 points below, ours 5.9 points below")


def test_no_disagreement_is_claimed_when_the_best_row_differs() -> None:
    # Table 6's default here is the lesson's pooler (first-last): a row within a point of it in both (agreeing),
    # but ours ranks another row first.
    from simcse_core.evaluation import paper
    from ui.tabs.inside import presets

    default, other = "pool-first-last", "pool-cls-mlp"
    gap = paper.TABLE6["First-last avg."]["unsup"].value - paper.TABLE6["[CLS] w/ MLP"]["unsup"].value
    assert abs(gap) <= 1.0  # the paper's two rows are within a point: "agrees" needs ours within a point too
    paper_best_is_default = gap > 0
    lower, higher = (38.0, 38.5) if paper_best_is_default else (38.5, 38.0)
    results = [_result(default, 38.5), _result(other, 38.0 if not paper_best_is_default else 38.9)]
    notes = presets.notes_markdown(results)
    assert "No disagreement" not in notes and "agrees with the paper on all" not in notes
    assert "**not the same row**" in notes
    same = presets.notes_markdown([_result(default, higher), _result(other, lower)])
    assert "agrees with the paper on all 1 row(s)" in same and "(the same row)" in same


def test_evaluate_and_how_it_works_say_where_the_miniature_can_differ(monkeypatch) -> None:
    from dataclasses import replace

    from simcse_core.teaching import ablations, lessons

    assert "direction* of the effect" not in text.PAPER_REFERENCE
    said = text.miniature_direction()
    assert said in text.PAPER_REFERENCE and said in text.HOW_IT_WORKS and "can differ" in said
    monkeypatch.setattr(lessons, "MEASURED", replace(lessons.MEASURED, start_alignment=0.11, after_alignment=0.55))
    monkeypatch.setattr(ablations, "best_rows", lambda: {"differs": ["Table 1", "Table 7"], "same": ["Table D.1"],
                                                         "tied": ["Table 3"]})
    said = text.miniature_direction()
    assert "alignment rises (0.11 → 0.55)" in said and "Table 1 and Table 7" in said
    assert "the best row of Table D.1 is the paper's" in said  # agreements are told too
    assert "the best rows of Table 1 and Table 7 (the ablations" in said and "are not the paper's" in said
    assert "in Table 3 our best row and the paper's are within the seeds' spread" in said


def test_the_tables_whose_best_row_differs_are_read_from_the_measured_results(tmp_path) -> None:
    import json

    from simcse_core.teaching import ablations

    rows = [{**_result(key, after).row(), "steps": 300, "train_s": 40.0}
            for key, after in (("pool-cls-mlp-train", 39.9), ("pool-first-last", 53.7))]
    stored = {"rows": rows, "model_sha256": ablations.start_model_fingerprint()}
    (tmp_path / "ablations_pooler.json").write_text(json.dumps(stored), encoding="utf-8")
    assert ablations.tables_whose_best_row_differs(tmp_path) == ["Table 6"]
    assert [r.after["spearman"] for r in ablations.measured_results("pooler", tmp_path)] == [39.9, 53.7]
    stored["model_sha256"] = "measured-on-other-weights"  # results of another raw model are not shown as ours
    (tmp_path / "ablations_pooler.json").write_text(json.dumps(stored), encoding="utf-8")
    assert ablations.measured_results("pooler", tmp_path) == []


def test_measured_ablations_compare_the_seeds_means_and_say_their_spread(tmp_path, monkeypatch) -> None:
    """Three seeds a row: the comparison uses their means; a difference within the seeds' spread is said so (the
    paper's large drop then 'much smaller here'), never called noise from one seed; the table shows mean ± SD."""
    import json

    from simcse_core.teaching import ablations
    from ui.tabs.inside import presets

    def row(key: str, seeds: list[float]) -> dict:
        mean = sum(seeds) / len(seeds)
        sd = (sum((x - mean) ** 2 for x in seeds) / (len(seeds) - 1)) ** 0.5
        return {**_result(key, seeds[0]).row(), "steps": 400, "train_s": 60.0, "ours_after": mean, "seeds": 3,
                "ours_after_sd": sd, "ours_after_seeds": seeds}

    rows = [row("dropout-0.1", [56.9, 56.2, 57.6]), row("dropout-0", [56.9, 58.1, 56.0]),
            row("dropout-0.5", [43.6, 43.9, 43.6])]
    stored = {"rows": rows, "model_sha256": ablations.start_model_fingerprint()}
    (tmp_path / "ablations_dropout.json").write_text(json.dumps(stored), encoding="utf-8")
    results = ablations.measured_results("dropout", tmp_path)
    assert [round(r.final, 2) for r in results] == [56.9, 57.0, 43.7] and results[1].final_said.endswith("(3 seeds)")
    said = {c.row: c for c in ablations.comparisons(results)}
    assert said["dropout 0"].how == "much smaller here" and "the seeds spread it ±" in said["dropout 0"].sentence()
    assert said["dropout 0.5"].how == "same direction"
    monkeypatch.setattr(ablations, "MEASURED_DIR", tmp_path)
    monkeypatch.setattr(ablations, "measured_results",
                        lambda group, directory=tmp_path: results if group == "dropout" else [])
    table = presets.paper_table([])
    shown = dict(zip(table["Row"], table[presets.MEASURED_COLUMN], strict=True))
    assert shown["dropout 0"] == results[1].final_said and "not measured" in shown["τ 0.05 (default)"]


def test_false_sentences_are_gone_from_the_screen_and_the_readme() -> None:
    from simcse_core.evaluation import paper
    from simcse_core.teaching import ablations
    from ui.tabs.inside import presets

    assert f"({paper.NLI_PAIRS})" in paper.QUOTES["training_data"].text  # the stored figure, as printed
    assert "every 250 training steps" in paper.QUOTES["schedule"].text
    for shown in (text.HOW_IT_WORKS, text.PAPER_REFERENCE, text.TIP_STEPS, presets.PAPER_NOTE):
        assert "275k NLI triplets" not in shown and paper.NLI_PAIRS in shown
    assert "official SimCSE scripts" in text.TIP_MAXLEN and "Paper: 32" not in text.TIP_MAXLEN
    assert "| Max length | 32 tokens |" not in text.HOW_IT_WORKS and "every 250 steps" in text.HOW_IT_WORKS
    assert "hour" not in ablations.MINIATURE_CAVEAT and "one training run" not in paper.__doc__
    assert "before training" not in presets.START_NOTE  # a first-last row is scored through first-last from step 0
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())
    for false in ("the four poolers are within 1.4 points", "lesson's sentences with the lesson run's settings;",
                  "the paper's 275k NLI triplets", "STS-B dev evaluated every 125 steps, the best",
                  "The paper's figures are BERT-base's after an hour"):
        assert false not in readme, false
    assert "every 125 steps (the official scripts'" in readme and "Appendix A: every 250" in readme


def test_figure2_notes_read_the_direction_of_alignment_from_the_measurement(monkeypatch) -> None:
    from dataclasses import replace

    from simcse_core.teaching import lessons
    from ui.tabs import lesson

    rising = replace(lessons.MEASURED, start_alignment=0.19, after_alignment=0.63)
    monkeypatch.setattr(lessons, "MEASURED", rising)
    assert "alignment rises (the lesson run: STS-B dev pairs' alignment 0.19 → 0.63)" in text._au_note()
    assert "alignment rises here" in lesson._fine_tune_step()
    monkeypatch.setattr(lessons, "MEASURED", replace(rising, after_alignment=0.18))  # a re-pretrained model
    assert "rises" not in text._au_note() and "0.19 → 0.18" in text._au_note()
    assert "rises" not in lesson._fine_tune_step() and "rises" not in text.miniature_direction()


def test_a_comparison_of_a_raw_start_run_says_the_run_is_weak_and_where_real_search_is():
    from types import SimpleNamespace

    from simcse_core.teaching import lessons
    from ui.tabs import retrieval

    encoder = SimpleNamespace(config=SimpleNamespace(pooler="mean"))
    run = SimpleNamespace(label="run 1", base_name=lessons.START_MODEL, base_pooler="mean", spearman_after=31.2,
                          eval_name="STS-B dev (sample)", encoder=encoder)
    note = retrieval.compare_note(SimpleNamespace(run=run, base_label="base: raw-bert"), "mean", 5)
    assert "still weak" in note and "31.2" in note and "pick the base model" in note
    minilm_run = SimpleNamespace(**{**vars(run), "base_name": "minilm"})
    assert "still weak" not in retrieval.compare_note(SimpleNamespace(run=minilm_run, base_label="b"), "mean", 5)


def test_an_uploaded_corpus_name_is_shown_as_text_in_retrieval_status():
    import inspect

    from ui.tabs import retrieval

    assert ".name}**" not in inspect.getsource(retrieval)


@pytest.mark.parametrize(("twin", "nearest", "said"), [(0.88, 0.81, "0.07 lower"), (0.96, 0.82, "0.14 lower"),
                                                       (0.80, 0.85, "as alike as the twin, or more")])
def test_the_twins_gap_is_told_with_its_size(twin: float, nearest: float, said: str) -> None:
    """0.88 against 0.81 is not "much further away": both numbers and the gap are on screen."""
    sentence = text.twin_gap(twin, nearest)
    assert said in sentence and f"{twin:.2f}" in sentence and f"{nearest:.2f}" in sentence
    assert "much further" not in sentence



def test_the_lesson_says_what_evaluate_scores() -> None:
    """Evaluate scores a run beside the model it started from (ui.tabs.evaluate.models_to_evaluate), not beside
    the model picked at the top: the lesson's words say so."""
    from ui.tabs import lesson

    said = next(step.say for step in lesson.STEPS if step.tab == "tab-evaluate")
    assert "beside the model it started from" in said and "score the model picked at the top and" not in said


def test_a_best_row_within_the_seeds_spread_of_the_papers_best_is_called_tied_not_different() -> None:
    """Table 3: ours at p 0.05 (58.2 ± 1.2) above p 0.1 (56.9 ± 0.9) was told as 'the best row is not the
    paper's'; the seeds cannot tell them apart."""
    from dataclasses import replace

    from simcse_core.teaching import ablations

    def seeded(key: str, mean: float, sd: float):
        return replace(_result(key, mean), seeds=3, final_mean=mean, final_sd=sd)

    tied = ablations.agreement([seeded("dropout-0.1", 56.9, 0.9), seeded("dropout-0.05", 58.2, 1.2),
                                seeded("dropout-0.5", 43.7, 1.0)])
    assert not tied["same_best"] and tied["best_tied"]
    apart = ablations.agreement([seeded("dropout-0.1", 50.0, 0.5), seeded("dropout-0.05", 58.2, 0.5)])
    assert not apart["same_best"] and not apart["best_tied"]
    one_seed = ablations.agreement([_result("dropout-0.1", 56.9), _result("dropout-0.05", 57.2)])
    assert not one_seed["best_tied"]  # one seed measures no spread: nothing is called tied


def test_the_lessons_schedule_is_said_where_its_settings_are_and_beside_the_papers() -> None:
    from simcse_core.teaching import lessons
    from simcse_core.training.train import LIVE_RUN

    run = lessons.LESSON_RUN
    said = text.schedule_said(run)
    assert f"held for the first {1 - run.decay_fraction:.0%} of the steps" in said
    assert f"β₂ {run.adam_beta2:g} (the paper: 0.999)" in said and "the paper: decayed from the first step" in said
    assert said in text.settings_said(run) and said in text.FINETUNE_INTRO
    assert text.schedule_said(LIVE_RUN) == ""  # the paper's schedule: nothing to say
    assert f"holds it for the first {1 - run.decay_fraction:.0%}" in text.TIP_LR
    assert "held for" in lessons.RECIPE_NOTE and "held for" in lessons.RECIPE_WHY
