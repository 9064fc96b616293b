"""Handler tests of the Inside SimCSE tab and the lesson, on the tiny random model: real handlers and engine."""

from __future__ import annotations

import csv
import math
import re
import zipfile
from dataclasses import replace
from pathlib import Path

import gradio as gr
import pytest

from simcse_core.teaching import ablations, lessons
from simcse_core.training.losses import simcse_loss
from ui.serving import runs
from ui.serving.config import START_PICKED, START_RAW, StudioConfig
from ui.serving.registry import ModelRegistry
from ui.serving.session import PresetRun, Session, close_session
from ui.serving.studio import Studio
from ui.tabs import lesson
from ui.tabs.inside import cone, exports, inputs, loss, presets, twins

NUMBER = re.compile(r"-?\d+\.\d+")


@pytest.fixture(scope="module")
def studio(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Studio:
    config = StudioConfig(model=str(tiny_model_dir), device="cpu", precision="fp32",
                          temp_root=str(tmp_path_factory.mktemp("sessions")))
    return Studio(config, ModelRegistry(config))


def _pickers(studio: Studio) -> dict:
    """The inputs the pickers at the top give the twins and the loss: the base model, the mean pooler; a new session."""
    return {"choice": studio.config.base_label, "pooler": "mean", "session": Session()}


def test_twins_handler_reports_twins_below_one_and_identical_eval(studio):
    shown = twins.show_twins(studio, text="a man plays a guitar\nthe dog runs", dropout=0.3, start=START_PICKED,
                              **_pickers(studio))
    summary, figure = shown["twin_summary"], shown["twin_plot"]
    mean_twin = float(NUMBER.findall(summary)[1])  # "Dropout 0.30: twin cosine 0.xxxx"
    assert mean_twin < 1.0 and "identical, bit for bit" in summary
    assert [len(trace.y) for trace in figure.data[:2]] == [2, 2]  # twin bars and nearest-other bars


def test_loss_handler_equals_simcse_loss_and_rescoring_needs_no_encoding(studio):
    shown = loss.encode_batch(studio, text=loss.LOSS_SENTENCES, mode="unsup", dropout=0.1, temperature=0.05,
                                alpha=1.0, start=START_PICKED, **_pickers(studio))
    summary, state = shown["loss_summary"], shown["session"]
    views = state.loss_views
    shown = float(re.search(r"Batch loss (\d+\.\d+)", summary).group(1))
    assert shown == pytest.approx(float(simcse_loss(views.z1, views.z2, temperature=0.05)), abs=1e-4)
    assert f"ln(8) = {math.log(8):.2f}" in summary
    flat = loss.rescore(temperature=1.0, alpha=1.0, session=state)["loss_summary"]
    assert state.loss_views is views  # the same vectors, re-scored
    high = float(re.search(r"Batch loss (\d+\.\d+)", flat).group(1))
    assert high == pytest.approx(float(simcse_loss(views.z1, views.z2, temperature=1.0)), abs=1e-4)


def test_supervised_batch_shows_the_hard_negative_block(studio):
    shown = loss.encode_batch(studio, text=loss.sample_triplets(4), mode="sup", dropout=0.1, temperature=0.05,
                                alpha=0.5, start=START_PICKED, **_pickers(studio))
    figure, state = shown["loss_plot"], shown["session"]
    assert state.loss_views.hard is not None and len(figure.data[0].x) == 8  # 4 positives + 4 hard negatives


@pytest.mark.parametrize(("text", "mode", "message"), [
    ("only one line", "unsup", "2 to 32 lines"), ("a | b\nc", "sup", "line 2"),
])
def test_loss_handler_refuses_bad_batches_by_name(studio, text, mode, message):
    with pytest.raises(gr.Error, match=message):
        loss.encode_batch(studio, text=text, mode=mode, dropout=0.1, temperature=0.05, alpha=1.0, **_pickers(studio))


@pytest.mark.slow
def test_a_preset_run_is_overlaid_compared_with_the_paper_and_exported(studio, monkeypatch, tmp_path):
    def short(key: str) -> ablations.AblationPreset:
        preset = ablations.PRESETS_BY_KEY[key]
        return replace(preset, config=replace(preset.config, steps=2, batch_size=8, eval_every=0))

    monkeypatch.setattr(ablations, "get_preset", short)
    state = Session()
    for key in ("dropout-0.1", "dropout-0"):
        updates = list(presets.run_preset(studio, key=key, session=state))
        assert updates[-1]["session"] is state and "paper" in updates[-1]["status"]
    results, events = state.presets()
    assert [r.key for r in results] == ["dropout-0.1", "dropout-0"]
    # Kept events hold no snapshot: a snapshot holds the run's optimizer (moments and fp32 parameters).
    assert all(event.snapshot is None for kept in events.values() for event in kept)
    shown = presets.ablation_outputs(state)
    figure, table, notes = shown["plane"], shown["table"], shown["notes"]
    assert len([t for t in figure.data if t.mode == "lines+markers"]) == 2  # both runs on one plane
    assert table.loc[table["Row"] == "dropout 0", "Paper STS-B dev"].item().startswith("71.1 ")
    assert "Why:" in notes and ablations.MINIATURE_CAVEAT in notes
    drawn = cone.draw_cone(studio, session=state)
    caption, arrows_plot = drawn["cone_caption"], drawn["cone_plot"]
    assert studio.registry.is_loaded(ablations.START_MODEL)  # the preset trained a copy of the raw model
    assert f"`{ablations.START_MODEL}" in caption  # drawn against the raw model it started from
    assert "preset “dropout 0”" in caption and re.search(r"\d\.\d\d before → -?\d\.\d\d after", caption)
    arrows = [a for a in arrows_plot.layout.annotations if a.showarrow]
    assert len(arrows) == 2 * 12 * cone.CONE_PER_TOPIC  # one arrow per sentence on each panel
    exported = exports.export_tables(studio, session=state)
    results, history = exported["results_file"], exported["history_file"]
    with open(results, encoding="utf-8") as f:
        assert [row["preset"] for row in csv.DictReader(f)] == ["dropout-0.1", "dropout-0"]
    with open(history, encoding="utf-8") as f:
        assert [row["step"] for row in csv.DictReader(f)] == ["0", "1", "2"]
    archive = exports.export_projector(studio, session=state)["projector_file"]
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == ["metadata.tsv", "vectors.tsv"]
        rows = z.read("metadata.tsv").decode().splitlines()
        assert rows[0] == "sentence\ttopic\tmodel" and len(rows) - 1 == len(z.read("vectors.tsv").splitlines())
    # The preset model and the exported files are the visitor's: they go when the tab closes.
    folder = Path(archive).parent
    close_session(state)
    assert not folder.exists() and state.preset_run is None and state.presets() == ([], {})


def test_cone_without_a_trained_model_says_what_to_do(studio):
    with pytest.raises(gr.Error, match="one-minute fine-tune"):
        cone.draw_cone(studio, session=Session())


def test_lesson_steps_move_within_bounds_and_open_their_tab():
    shown = lesson.go(index=0, delta=1)
    assert shown["index"] == 1 and "Dropout twins" in shown["text"] and shown["tabs"].selected == "tab-inside"
    assert shown["inner"].selected == "inside-twins" and shown["back"]["interactive"] and shown["next"]["interactive"]
    last = lesson.go(index=len(lesson.STEPS) - 1, delta=1)
    assert last["index"] == len(lesson.STEPS) - 1 and not last["next"]["interactive"] and "inner" not in last
    assert lesson.go(index=0, delta=-1)["index"] == 0
    assert [s.minutes for s in lesson.STEPS] and 15 <= sum(s.minutes for s in lesson.STEPS) + 3 <= 25


def test_a_preset_waits_in_the_fine_tunes_training_queue(studio):
    holder = studio.training_queue.join(60)  # someone else's fine-tune holds the slot
    assert studio.training_queue.wait(holder, timeout=1)
    session = Session()
    try:
        updates = presets.run_preset(studio, key=ablations.PRESETS[0].key, session=session)
        first = next(updates)
        assert "waiting for a training slot" in first["status"] and "number 1 in line" in first["status"]
        session.stop_requested.set()  # the visitor leaves: the preset leaves the queue, nothing trains
        assert ["left the training queue" in u["status"] for u in updates] == [True]
        assert session.training_idle.is_set() and not session.presets()[0]
        training, waiting = studio.training_queue.counts()
        assert (training, waiting) == (1, 0)
    finally:
        studio.training_queue.leave(holder)


# --- where the lessons start: the raw model ------------------------------------------------------------------


def test_the_twins_and_the_loss_start_from_the_raw_model_unless_the_visitor_switches(studio):
    summary = twins.show_twins(studio, text="a man plays a guitar", dropout=0.1, **_pickers(studio))["twin_summary"]
    assert f"Model: `{lessons.START_MODEL}" in summary  # the default start, whatever the global picker says
    raw = studio.registry.get(lessons.START_MODEL, lessons.START_POOLER)
    assert studio.start_encoder(None, studio.config.base_label, "mean", Session()) is raw  # an old API call
    assert studio.start_encoder(START_RAW, studio.config.base_label, "mean", Session()) is raw
    picked = studio.start_encoder(START_PICKED, studio.config.base_label, "mean", Session())
    assert picked is studio.registry.get(studio.config.model, "mean")
    assert "You switched" not in inputs.describe_start(START_RAW, studio.config.base_label, "mean")
    note = inputs.describe_start(START_PICKED, studio.config.base_label, "mean")
    assert "You switched" in note and studio.config.base_label in note and lessons.START_MODEL in note
    with pytest.raises(gr.Error, match="Start from"):
        twins.show_twins(studio, text="a cat", dropout=0.1, start="elsewhere", **_pickers(studio))


class _Marker:
    """Stands for an encoder the registry returns."""

    def __init__(self, name, pooler):
        self.name, self.pooler, self.description = name, pooler, f"{name} [{pooler}]"


def test_presets_always_start_from_the_raw_model(studio, monkeypatch):
    from types import SimpleNamespace

    import simcse_core.evaluation.sets as sets

    monkeypatch.setattr(studio.registry, "get", lambda name, pooler: _Marker(name, pooler))
    monkeypatch.setattr(sets, "default_eval_pairs", lambda: SimpleNamespace(name="pairs"))
    monkeypatch.setattr(ablations, "eval_sample", lambda pairs: pairs)
    monkeypatch.setattr(ablations, "start", lambda preset, base, pairs, time_budget_s: (base, iter(())))
    training = runs.PresetJob(ablations.PRESETS[0]).begin(studio, Session())
    assert (training.base.name, training.base.pooler) == (ablations.START_MODEL, ablations.START_POOLER)
    session = Session()  # the cone's "before" of a preset run is the raw model too
    session.preset_run = PresetRun(encoder=_Marker("trained", "x"), label="preset “dropout 0”")
    before, after, _ = cone.cone_models(studio, session, studio.config.base_label)
    assert (before.name, before.pooler) == (ablations.START_MODEL, ablations.START_POOLER)


def _dropout_result():
    """A finished run of the "dropout 0.1" preset, as the table and notes read it (STS 30.0 → 50.0)."""
    from types import SimpleNamespace

    return SimpleNamespace(key="dropout-0.1", group="dropout", label="dropout 0.1", paper_stsb_dev=82.5,
                           before={"spearman": 30.0}, after={"spearman": 50.0}, gain=20.0, steps=10,
                           history=({"uniformity": -1, "alignment": 0.5},), eval_name="STS-B dev")


def test_ablation_headline_shows_the_model_trained_at_scale():
    result = _dropout_result()
    notes = presets.notes_markdown([result])
    assert f"{lessons.TRAINED_AT_SCALE.stsb_dev:.1f}" in notes and "Trained at scale" in notes
    table = presets.paper_table([result])
    shown = table.loc[table["Row"] == ablations.PRESETS_BY_KEY["dropout-0.1"].label, presets.SCALE_COLUMN]
    assert shown.item() == f"{lessons.TRAINED_AT_SCALE.stsb_dev:.1f}"


def test_ablation_table_shows_run_columns_only_once_there_is_a_run():
    empty = presets.paper_table([])  # nine columns before any run pushed the paper's figure off a laptop screen
    assert list(empty.columns) == ["Table", "Row", "Setting: paper · ours", "Paper STS-B dev", presets.MEASURED_COLUMN]
    ran = presets.paper_table([_dropout_result()])
    assert list(ran.columns) == [*empty.columns, *presets.RUN_COLUMNS]
    row = ran["Row"] == ablations.PRESETS_BY_KEY["dropout-0.1"].label
    assert ran.loc[row, "Ours: start → end"].item() == "30.0 → 50.0"
    assert (ran.loc[~row, "Ours: start → end"] == "").all()


def test_moving_tau_before_encoding_says_what_to_press_and_changes_nothing_else():
    shown = loss.rescore(temperature=0.1, alpha=1.0, session=Session())
    assert set(shown) == {"loss_summary"} and "Encode the batch" in shown["loss_summary"]
