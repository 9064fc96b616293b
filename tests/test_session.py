"""The shared and per-visitor state: model cache, training queue, runs, cleanup."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ui.errors import InputError
from ui.registry import ModelRegistry, canonical_model_name
from ui.session import FineTuneRecord, IndexKey, ModelKey, Session, close_session
from ui.studio import Studio, StudioConfig
from ui.training_queue import QueueGroups, TrainingQueue


class FakeEncoder:
    """Stands in for an Encoder where only identity and poolers matter."""

    def __init__(self, name: str, pooler: str) -> None:
        self.name, self.config = name, type("Config", (), {"pooler": pooler})()

    def with_pooler(self, pooler: str) -> FakeEncoder:
        return FakeEncoder(self.name, pooler)

    def eval(self) -> FakeEncoder:
        return self


def test_every_spelling_of_a_folder_is_one_cache_entry(tiny_model_dir: Path) -> None:
    config = StudioConfig(model=str(tiny_model_dir), device="cpu", precision="fp32")
    registry = ModelRegistry(config)
    spellings = [str(tiny_model_dir), str(tiny_model_dir) + "/", str(tiny_model_dir / "."),
                 str(tiny_model_dir / ".." / tiny_model_dir.name)]
    encoders = {id(registry.get(name, "mean")) for name in spellings}
    assert len(encoders) == 1 and registry.loaded() == [canonical_model_name(str(tiny_model_dir))]


def test_registry_is_a_bounded_lru_that_keeps_the_base_model(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ModelRegistry(StudioConfig(model="base-model", max_models=2))
    monkeypatch.setattr(registry, "_load", lambda name, pooler: FakeEncoder(name, pooler))
    registry.get("base-model", "mean")
    registry.get("hub/a", "mean")
    registry.get("hub/b", "mean")  # over the cap: the least recently used non-base model goes
    assert registry.loaded() == ["base-model", "hub/b"]
    registry.get("hub/b", "cls")  # a second pooler of a loaded model is not a second model
    assert registry.loaded() == ["base-model", "hub/b"]


def test_a_slow_load_blocks_nobody_who_asks_for_another_model(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ModelRegistry(StudioConfig(model="base-model"))
    release = threading.Event()

    def load(name: str, pooler: str) -> FakeEncoder:
        if name == "slow/hub-model":
            release.wait(10)
        return FakeEncoder(name, pooler)

    monkeypatch.setattr(registry, "_load", load)
    registry.get("base-model", "mean")
    slow = threading.Thread(target=registry.get, args=("slow/hub-model", "mean"))
    slow.start()
    time.sleep(0.1)
    start = time.perf_counter()
    registry.get("base-model", "cls")  # a loaded model, another pooler
    registry.get("other/model", "mean")  # another model
    assert time.perf_counter() - start < 1.0
    release.set()
    slow.join(5)
    assert "slow/hub-model" in registry.loaded()


def test_two_visitors_asking_for_one_model_load_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ModelRegistry(StudioConfig(model="base-model"))
    loads = []

    def load(name: str, pooler: str) -> FakeEncoder:
        loads.append(name)
        time.sleep(0.2)
        return FakeEncoder(name, pooler)

    monkeypatch.setattr(registry, "_load", load)
    threads = [threading.Thread(target=registry.get, args=("hub/x", "mean")) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert loads == ["hub/x"]


def test_the_picker_loads_only_the_catalogue_unless_the_operator_allows_folders(tiny_model_dir: Path) -> None:
    closed = StudioConfig(model="minilm")
    with pytest.raises(InputError, match="not one of this app's models") as refused_existing:
        closed.model_name(str(tiny_model_dir))
    with pytest.raises(InputError, match="not one of this app's models") as refused_missing:
        closed.model_name("/no/such/folder")
    # The two messages differ only in the echoed name: they do not tell whether a folder exists.
    assert (str(refused_existing.value).replace(str(tiny_model_dir), "X")
            == str(refused_missing.value).replace("/no/such/folder", "X"))
    assert closed.model_name("minilm") == "minilm"
    opened = StudioConfig(model="minilm", allow_local_models=True)
    assert opened.model_name(str(tiny_model_dir) + "/.") == str(tiny_model_dir.resolve())


def test_offline_the_picker_lists_only_what_can_load(monkeypatch: pytest.MonkeyPatch) -> None:
    config = StudioConfig()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert config.model_choices(["run 1 · unsup · 3 steps"]) == [config.base_label, "run 1 · unsup · 3 steps"]
    assert "offline" in config.picker_note()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert config.model_choices()[1:] == list(config.hub_models) and config.picker_note() == ""


def test_queue_positions_estimates_and_leaving() -> None:
    queue = TrainingQueue(slots=1, max_waiting=2)
    first, second, third = queue.join(60), queue.join(30), queue.join(90)
    assert [queue.position(t) for t in (first, second, third)] == [0, 1, 2]
    # Upper bounds: the running run may use its whole budget (+ packaging), and so may each run ahead.
    assert 60 < queue.estimated_wait(second) <= 60 + 15 + 1
    assert queue.estimated_wait(third) == pytest.approx(queue.estimated_wait(second) + 30 + 15, abs=1)
    with pytest.raises(InputError, match="training queue is full"):
        queue.join(60)
    queue.leave(second)  # a visitor leaves the line
    assert queue.position(third) == 1
    queue.leave(first)  # the run ends: the next in line starts
    assert queue.wait(third, timeout=1) and queue.position(third) == 0 and queue.counts() == (1, 0)


def test_queue_estimates_learn_how_long_runs_hold_their_slot_beyond_their_budget() -> None:
    queue = TrainingQueue(slots=1, max_waiting=5)
    run = queue.join(0.05)
    time.sleep(0.1)
    queue.leave(run)  # held its slot ~0.05 s beyond its budget: less than the floor, which stays
    assert queue.overhead_s == pytest.approx(15.0)
    slow = queue.join(20)
    slow.started_at -= 60  # a slow server: the run held its slot 40 s beyond its 20-s budget
    queue.leave(slow)
    assert queue.overhead_s == pytest.approx(40, abs=0.5)
    queue.join(20)
    waiting = queue.join(20)
    assert queue.estimated_wait(waiting) == pytest.approx(20 + 40, abs=1)


def test_queue_limits_are_the_running_configs() -> None:
    studio = Studio(StudioConfig(training_slots=2, max_training_queue=3))
    assert (studio.training_queue.slots, studio.training_queue.max_waiting) == (2, 3)
    # Every admitted run (2 training, 3 waiting) has a handler, and one more is refused with the queue's message.
    assert studio.queues.train["concurrency_limit"] == studio.queues.preset["concurrency_limit"] == 6
    assert QueueGroups.of(1, 10).train["concurrency_limit"] == 12


def test_a_visitor_trains_one_run_at_a_time() -> None:
    session = Session()
    session.begin_training()
    with pytest.raises(InputError, match="already have a run training"):
        session.begin_training()
    session.end_training()
    session.begin_training()  # the next run is admitted once the first is over


def test_queue_with_two_slots_starts_two() -> None:
    queue = TrainingQueue(slots=2, max_waiting=5)
    tickets = [queue.join(60) for _ in range(3)]
    assert [queue.position(t) for t in tickets] == [0, 0, 1]
    assert queue.estimated_wait(tickets[2]) == pytest.approx(75, abs=1)


def _record(run_id: int, tmp_path: Path) -> FineTuneRecord:
    zip_path = tmp_path / f"run{run_id}.zip"
    zip_path.write_bytes(b"zip")
    return FineTuneRecord(run_id=run_id, encoder=FakeEncoder("m", "mean"), base_name="m", base_pooler="mean",
                          summary="", steps=run_id * 10, spearman_before=80.6, spearman_after=84.4,
                          model_zip=str(zip_path))


def test_runs_are_named_kept_capped_and_deleted(tmp_path: Path) -> None:
    session = Session()
    for run_id in (1, 2, 3):
        assert session.add_run(_record(run_id, tmp_path), keep=3) == []
    assert session.run_labels()[1] == "run 2 · unsup · 20 steps · STS 80.6→84.4"
    session.indexes[IndexKey(ModelKey("m", "mean", 1), 0)] = "index of run 1"
    dropped = session.add_run(_record(4, tmp_path), keep=3)
    assert [r.run_id for r in dropped] == [1] and list(session.runs) == [2, 3, 4]
    assert not session.indexes and not (tmp_path / "run1.zip").exists()  # its index and files went with it
    assert session.run_for("run 3 · whatever the rest says").run_id == 3
    assert session.delete_run(3).run_id == 3 and session.run_for("run 3 ·") is None
    assert session.finetuned.run_id == 4


def test_closing_a_session_stops_training_and_removes_everything(tmp_path: Path) -> None:
    session = Session()
    folder = session.folder(str(tmp_path))
    (folder / "model.zip").write_bytes(b"x" * 100)
    session.add_run(_record(1, tmp_path), keep=3)
    session.training_idle.clear()
    close_session(session)
    assert session.stop_requested.is_set() and not folder.exists() and not session.runs
    with pytest.raises(InputError, match="session has ended"):
        session.folder(str(tmp_path))  # a run finishing after the visitor left writes nothing


def test_corpus_switch_keeps_indexes_consistent(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Searches racing an upload see one corpus and its own index, never a mix."""
    config = StudioConfig(model=str(tiny_model_dir), device="cpu", precision="fp32")
    studio = Studio(config)
    session = Session()
    encoder = studio.registry.get(config.model, "mean")
    key = ModelKey(canonical_model_name(config.model), "mean")
    corpora = []
    for k in range(2):
        path = tmp_path / f"c{k}.txt"
        path.write_text("\n".join(f"sentence {k} number {i}" for i in range(5 + 10 * k)), encoding="utf-8")
        from ui import retrieval, text

        corpora.append(path)
    problems = []

    def search_many() -> None:
        for _ in range(30):
            corpus, index = studio.searchable(session, encoder, key)
            if len(index.vectors) != len(corpus.sentences):
                problems.append((corpus.name, len(index.vectors)))

    def switch_many() -> None:
        for k in range(30):
            retrieval.load_corpus(studio, text.UPLOAD_CORPUS, str(corpora[k % 2]), session)

    threads = [threading.Thread(target=search_many), threading.Thread(target=switch_many)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not problems


def _run(studio: Studio, session: Session, steps: int = 40, budget: float = 120):
    from ui import finetune, text

    form = finetune.FinetuneForm(data_choice=text.SAMPLE_UNSUP, upload=None, mode="unsup", steps=steps, batch_size=8,
                                 lr=1e-3, temperature=0.05, dropout=0.1, pooler="mean", max_length=16, budget=budget,
                                 picker=studio.config.base_label)
    return finetune.run_finetune(studio, form, session)


@pytest.fixture(scope="module")
def tiny_studio(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Studio:
    config = StudioConfig(model=str(tiny_model_dir), device="cpu", precision="fp32", live_eval_pairs=24,
                          temp_root=str(tmp_path_factory.mktemp("sessions")))
    return Studio(config)


def _until_step(updates, step: int) -> list[str]:
    """Consume updates until the status shows ``step`` or later; the statuses seen."""
    import re

    seen = []
    for update in updates:
        status = update.get("status", "")
        seen.append(status)
        found = re.search(r"step (\d+) /", status)
        if found and int(found.group(1)) >= step:
            return seen
    raise AssertionError(f"the run never reached step {step}")


def test_stop_keeps_the_run_and_measures_it_at_the_step_it_stopped(tiny_studio: Studio) -> None:
    session = Session()
    updates = _run(tiny_studio, session)
    seen = _until_step(updates, 2)
    session.stop_requested.set()
    rest = list(updates)
    record = session.finetuned
    assert record is not None and rest[-1]["status"].startswith("**Stopped**")
    assert record.spearman_after is not None  # re-measured, so the name carries before → after
    assert record.label == f"run 1 · unsup · {record.steps} steps · STS {record.spearman_before:.1f}→" \
                           f"{record.spearman_after:.1f}"
    statuses = seen + [u["status"] for u in rest if "status" in u]
    # Measured at the step it stopped: by the re-measurement, or by an evaluation that fell on that step.
    assert any("Re-measured" in s or f"measured at step {record.steps})" in s for s in statuses), statuses
    assert tiny_studio.training_queue.counts() == (0, 0) and session.training_idle.is_set()


def test_a_cancelled_run_is_kept_and_releases_its_slot_before_its_next_update(tiny_studio: Studio) -> None:
    """Stop cancels the handler at its next yield: the run must be kept and Stop answered by then."""
    session = Session()
    updates = _run(tiny_studio, session)
    _until_step(updates, 2)
    session.stop_requested.set()
    next(updates)  # the first update after the loop ended: Gradio may never ask for another
    assert session.finetuned is not None and session.training_idle.is_set()
    assert tiny_studio.training_queue.counts() == (0, 0)
    updates.close()  # what a cancellation does
    assert session.finetuned is not None


@pytest.mark.slow
def test_a_second_run_keeps_the_first(tiny_studio: Studio) -> None:
    session = Session()
    list(_run(tiny_studio, session, steps=2))
    list(_run(tiny_studio, session, steps=3))
    assert [r.steps for r in session.runs.values()] == [2, 3]
    assert session.run_labels()[0].startswith("run 1 · unsup · 2 steps")


@pytest.mark.slow
def test_closing_the_tab_mid_training_frees_the_slot_and_keeps_nothing(tiny_studio: Studio) -> None:
    session = Session()
    updates = _run(tiny_studio, session)
    _until_step(updates, 1)
    close_session(session)  # what gradio's delete_callback does when the tab closes
    list(updates)  # the run ends at its next step
    assert not session.runs and session.workdir is None and session.training_idle.is_set()
    assert tiny_studio.training_queue.counts() == (0, 0)
    other = Session()
    list(_run(tiny_studio, other, steps=2))  # the server is fine: the next visitor trains
    assert other.finetuned is not None


def test_a_visitor_waiting_in_the_queue_sees_their_place_and_can_leave(tiny_studio: Studio) -> None:
    queue = tiny_studio.training_queue
    blocker = queue.join(60)  # someone else is training
    try:
        session = Session()
        updates = _run(tiny_studio, session)
        first = next(updates)["status"]
        assert "number 1" in first and "Estimated start" in first and "Stop" in first
        session.stop_requested.set()
        last = list(updates)[-1]["status"]
        assert "left the training queue" in last and queue.counts() == (1, 0)
        assert session.training_idle.is_set() and not session.runs
    finally:
        queue.leave(blocker)


@pytest.mark.parametrize("weights, message", [
    ({"model.safetensors": b"not really safetensors"}, "could not be loaded: its files are damaged"),
    ({"pytorch_model.bin": b"pickle"}, "only safetensors files are loaded"),
])
def test_a_damaged_or_pickled_model_folder_is_refused_and_the_app_keeps_working(
        tiny_model_dir: Path, tmp_path: Path, weights: dict, message: str) -> None:
    import shutil

    import gradio as gr

    from ui import similarity

    folder = tmp_path / "visitor-model"
    shutil.copytree(tiny_model_dir, folder)
    for old in folder.glob("*.safetensors"):
        old.unlink()
    for name, content in weights.items():
        (folder / name).write_bytes(content)
    config = StudioConfig(model=str(tiny_model_dir), device="cpu", precision="fp32", allow_local_models=True)
    studio = Studio(config)
    with pytest.raises(gr.Error, match=message):
        similarity.score_pair(studio, "a cat", "a dog", str(folder), "mean", Session())
    assert similarity.score_pair(studio, "a cat", "a dog", config.base_label, "mean", Session()).startswith("## ")
