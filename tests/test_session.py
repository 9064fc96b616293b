"""The shared and per-visitor state: model cache, training queue, runs, cleanup."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ui.serving.config import PREPARED_LABEL, RAW_LABEL, StudioConfig, canonical_model_name
from ui.serving.errors import InputError
from ui.serving.registry import ModelRegistry
from ui.serving.session import FineTuneRecord, IndexKey, ModelKey, Session, close_session
from ui.serving.studio import Studio
from ui.serving.training_queue import QueueGroups, TrainingQueue


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
    assert closed.model_name("minilm") == "minilm" and closed.model_name("raw-bert") == "raw-bert"
    opened = StudioConfig(model="minilm", allow_local_models=True)
    assert opened.model_name(str(tiny_model_dir) + "/.") == str(tiny_model_dir.resolve())


def test_offline_the_picker_lists_only_what_can_load(monkeypatch: pytest.MonkeyPatch) -> None:
    config = StudioConfig()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # The base model, the raw model the lessons start from (shipped: it loads offline), the session's runs.
    assert config.model_choices(["run 1 · unsup · 3 steps"]) == [config.base_label, RAW_LABEL, PREPARED_LABEL,
                                                                 "run 1 · unsup · 3 steps"]
    assert config.model_name(PREPARED_LABEL) == "raw-bert-simcse"
    assert "offline" in config.picker_note()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert config.model_choices()[3:] == list(config.hub_models) and config.picker_note() == ""


def test_queue_positions_estimates_and_leaving() -> None:
    queue = TrainingQueue(slots=1, max_waiting=2)
    first, second, third = queue.join(60, "a"), queue.join(30, "b"), queue.join(90, "c")
    assert [queue.position(t) for t in (first, second, third)] == [0, 1, 2]
    # Upper bounds: the running run may use its whole budget (+ packaging), and so may each run ahead.
    assert 60 < queue.estimated_wait(second) <= 60 + 15 + 1
    assert queue.estimated_wait(third) == pytest.approx(queue.estimated_wait(second) + 30 + 15, abs=1)
    with pytest.raises(InputError, match="training queue is full"):
        queue.join(60, "d")
    queue.leave(second)  # a visitor leaves the line
    assert queue.position(third) == 1
    queue.leave(first)  # the run ends: the next in line starts
    assert queue.wait(third, timeout=1) and queue.position(third) == 0 and queue.counts() == (1, 0)


def test_queue_estimates_learn_how_long_runs_hold_their_slot_beyond_their_budget() -> None:
    queue = TrainingQueue(slots=1, max_waiting=5)
    run = queue.join(0.05, "a")
    time.sleep(0.1)
    queue.leave(run)  # held its slot ~0.05 s beyond its budget: less than the floor, which stays
    assert queue.overhead_s == pytest.approx(15.0)
    slow = queue.join(20, "b")
    slow.started_at -= 60  # a slow server: the run held its slot 40 s beyond its 20-s budget
    queue.leave(slow)
    assert queue.overhead_s == pytest.approx(40, abs=0.5)
    queue.join(20, "c")
    waiting = queue.join(20, "d")
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
    tickets = [queue.join(60, f"client {k}") for k in range(3)]
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


def test_the_base_models_map_of_the_bundled_corpus_is_made_once_for_every_visitor(tiny_model_dir: Path) -> None:
    """Thirty visitors drawing the base model's map of the bundled corpus share one UMAP (the soak's slow map);
    a map of a visitor's own corpus or run stays theirs."""
    config = StudioConfig(model=str(tiny_model_dir), device="cpu", precision="fp32")
    studio = Studio(config)
    studio.registry.get(config.model, "mean")
    base = ModelKey(canonical_model_name(config.model), "mean")
    made = []

    def umap(tag: str):
        return lambda: made.append(tag) or (tag,)

    visitors = [Session() for _ in range(3)]
    assert [studio.projection(s, (base, 0), umap("base")) for s in visitors] == [("base",)] * 3
    assert made == ["base"]
    own_corpus = [studio.projection(s, (base, 1), umap("own")) for s in visitors[:2]]
    run = ModelKey(base.source, "mean", run_id=1)
    own_run = [studio.projection(s, (base, run, 0), umap("run")) for s in visitors[:2]]
    assert own_corpus == [("own",)] * 2 and own_run == [("run",)] * 2
    assert made == ["base", "own", "own", "run", "run"]
    assert studio.projection(visitors[0], (base, 1), umap("again")) == ("own",)  # the session's own cache


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
        from ui.present import text
        from ui.tabs import retrieval

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


def _run(studio: Studio, session: Session, steps: int = 40, budget: float = 120, client: str = "local"):
    from ui.present import text
    from ui.tabs import finetune

    form = finetune.FinetuneForm(data_choice=text.SAMPLE_UNSUP, upload=None, mode="unsup", steps=steps, batch_size=8,
                                 lr=1e-3, temperature=0.05, dropout=0.1, pooler="mean", max_length=16, budget=budget,
                                 picker=studio.config.base_label, start="picked")  # the tiny model
    return finetune.run_finetune(studio, form=form, session=session, client=client)


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

    from ui.tabs import similarity

    folder = tmp_path / "visitor-model"
    shutil.copytree(tiny_model_dir, folder)
    for old in folder.glob("*.safetensors"):
        old.unlink()
    for name, content in weights.items():
        (folder / name).write_bytes(content)
    config = StudioConfig(model=str(tiny_model_dir), device="cpu", precision="fp32", allow_local_models=True)
    studio = Studio(config)
    with pytest.raises(gr.Error, match=message):
        similarity.score_pair(studio, a="a cat", b="a dog", choice=str(folder), pooler="mean", session=Session())
    shown = similarity.score_pair(studio, a="a cat", b="a dog", choice=config.base_label, pooler="mean",
                                  session=Session())
    assert shown["score"].startswith("## ")


# --- fair per person, bounded in time (issue 19) ----------------------------------------------------------------
def test_runs_count_per_address_across_sessions_and_presets_share_the_limit(tiny_studio: Studio,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.tabs.inside import presets

    queue = tiny_studio.training_queue
    monkeypatch.setattr(queue, "max_per_client", 2)  # the backstop, lowered so three sessions reach it
    blocker = queue.join(60, "someone else")  # keeps the runs below waiting
    first, second, third = Session(), Session(), Session()
    try:
        waiting = [_run(tiny_studio, first, client="10.0.0.7"), _run(tiny_studio, second, client="10.0.0.7")]
        for updates in waiting:
            assert "number" in next(updates)["status"]
        import gradio as gr

        with pytest.raises(gr.Error, match="This network address .* already has 2 runs training or waiting.*"
                                           "Try again in about"):
            next(_run(tiny_studio, third, client="10.0.0.7"))  # a fresh session from the same address
        with pytest.raises(gr.Error, match="already has 2 runs"):
            next(presets.run_preset(tiny_studio, key="dropout-0", session=third,
                                    client="10.0.0.7"))  # presets count too
        with pytest.raises(gr.Error, match="already have a run training"):
            next(presets.run_preset(tiny_studio, key="dropout-0", session=first,
                                    client="10.0.0.8"))  # one run per session
        assert "number 3" in next(_run(tiny_studio, third, client="10.0.0.8"))["status"]  # another address
    finally:
        for session in (first, second, third):
            session.stop_requested.set()
        queue.leave(blocker)
    deadline = time.monotonic() + 10
    while queue.counts() != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.2)


def test_a_waiter_whose_listener_is_gone_leaves_the_line(tiny_studio: Studio, monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    queue = tiny_studio.training_queue
    monkeypatch.setattr(queue, "listener_timeout_s", 0.5)
    blocker = queue.join(60, "someone else")
    try:
        session = Session()
        updates = _run(tiny_studio, session, client="gone")
        assert "number 1" in next(updates)["status"]  # then the client is killed: nobody takes the next update
        time.sleep(0.8)
        assert queue.counts() == (1, 0) and session.training_idle.is_set()  # the place is given up
        assert list(updates) == [] and not session.runs  # resumed after all: it ends, nothing trained
    finally:
        queue.leave(blocker)


def test_a_run_whose_listener_is_gone_stops_and_frees_its_slot(tiny_studio: Studio,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    queue = tiny_studio.training_queue
    monkeypatch.setattr(queue, "listener_timeout_s", 0.5)
    session = Session()
    updates = _run(tiny_studio, session, client="gone")
    _until_step(updates, 1)  # training; then nobody takes the updates
    time.sleep(0.8)
    assert queue.counts() == (0, 0) and session.training_idle.is_set()
    other = Session()
    list(_run(tiny_studio, other, steps=2))  # the slot is free for the next visitor
    assert other.finetuned is not None
    assert list(updates) == [] and not session.runs  # resumed late: it stops at once and keeps nothing


def test_stop_answers_within_two_seconds_and_the_run_ends_after_its_step(tiny_studio: Studio,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.serving import runs
    from ui.tabs import finetune

    real = runs.lifecycle.background_iter

    def slow_steps(items, **kwargs):  # a busy server: every step takes 1 s
        for item in real(items, **kwargs):
            time.sleep(1.0)
            yield item

    monkeypatch.setattr(runs.lifecycle, "background_iter", slow_steps)
    session = Session()
    updates = _run(tiny_studio, session, steps=50)
    _until_step(updates, 1)
    rest: list = []
    consumer = threading.Thread(target=lambda: rest.extend(updates))
    consumer.start()
    start = time.monotonic()
    answer = finetune.stop_finetune(tiny_studio, session=session)
    assert time.monotonic() - start < 2.0
    assert "Stopping after this step" in answer["status"] or "Stopped" in answer["status"]
    consumer.join(30)
    assert rest and rest[-1]["status"].startswith("**Stopped**") and session.finetuned is not None
    assert session.training_idle.is_set() and tiny_studio.training_queue.counts() == (0, 0)


def test_the_slot_is_released_at_most_one_step_after_the_budget(tiny_studio: Studio,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from ui.present import text
    from ui.serving import runs
    from ui.tabs import finetune

    real = runs.lifecycle.background_iter
    step_s = 0.5

    def slow_steps(items, **kwargs):  # the trainer's own clock sees fast steps; the slot's clock does not
        for item in real(items, **kwargs):
            time.sleep(step_s)
            yield item

    monkeypatch.setattr(runs.lifecycle, "background_iter", slow_steps)
    queue, released = tiny_studio.training_queue, []
    leave = queue.leave

    def timed_leave(ticket):
        if ticket.started_at is not None and not released:
            released.append(time.monotonic() - ticket.started_at)
        leave(ticket)

    monkeypatch.setattr(queue, "leave", timed_leave)
    session = Session()
    form = finetune.FinetuneForm(data_choice=text.SAMPLE_UNSUP, upload=None, mode="unsup", steps=2000,
                                 batch_size=8, lr=1e-3, temperature=0.05, dropout=0.1, pooler="mean",
                                 max_length=16, budget=10, picker=tiny_studio.config.base_label, start="picked")
    job = finetune.finetune_job(tiny_studio, form, session)
    job = dataclasses.replace(job, config=dataclasses.replace(job.config, time_budget_s=3.0))
    updates = list(runs.run(tiny_studio, session, job))
    assert released and released[0] <= 3.0 + step_s + 0.5, released
    assert updates[-1].reason == "Time budget reached"


def test_the_queue_estimates_from_measured_step_times(tiny_studio: Studio) -> None:
    from simcse_core.training.train import TrainConfig
    from ui.serving import runs

    queue = TrainingQueue(slots=1, max_waiting=5)
    queue.join(300, "a", expected_s=20)  # a 300-s budget whose steps, measured here, take 20 s in all
    waiting = queue.join(300, "b", expected_s=20)
    assert queue.estimated_wait(waiting) == pytest.approx(20 + queue.overhead_s, abs=1)
    config = TrainConfig(steps=100, batch_size=16, time_budget_s=300)
    tiny_studio.seconds_per_example = 0.01  # measured by the runs before
    assert runs.expected_seconds(tiny_studio, config, examples=1000) == pytest.approx(100 * 16 * 0.01)


# --- the disk bounded (issue 19) ----------------------------------------------------------------------------------
def _served(path: Path, cache: Path) -> Path:
    """What gradio does when it serves a download from outside its cache: a copy in the cache."""
    from gradio.processing_utils import save_file_to_cache

    return Path(save_file_to_cache(path, str(cache)))


def test_delete_run_and_session_end_remove_the_files_and_gradios_copies(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "gradio-cache"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    session = Session()
    (tmp_path / "sessions-root").mkdir()
    folder = session.folder(str(tmp_path / "sessions-root"))
    records = []
    for run_id in (1, 2):
        zip_path, npy_path = folder / f"run{run_id}.zip", folder / f"vectors{run_id}.npy"
        zip_path.write_bytes(b"zip %d" % run_id)
        npy_path.write_bytes(b"npy %d" % run_id)
        records.append(FineTuneRecord(run_id=run_id, encoder=FakeEncoder("m", "mean"), base_name="m",
                                      base_pooler="mean", summary="", model_zip=str(zip_path),
                                      embeddings_npy=str(npy_path)))
        session.add_run(records[-1], keep=3)
    copies = [_served(Path(p), cache) for r in records for p in (r.model_zip, r.embeddings_npy)]
    export = folder / "embedding-projector.zip"
    export.write_bytes(b"export")
    copies.append(_served(export, cache))
    assert all(c.exists() for c in copies)
    session.delete_run(1)
    assert not Path(records[0].model_zip).exists() and not copies[0].exists() and not copies[1].exists()
    assert copies[2].exists()  # run 2 is still there
    close_session(session)
    assert not folder.exists() and not any(c.exists() for c in copies)


def test_a_session_over_its_disk_quota_is_told_so(tmp_path: Path) -> None:
    session = Session()
    folder = session.folder(str(tmp_path), quota_bytes=1000)
    (folder / "model.zip").write_bytes(b"x" * 1000)
    with pytest.raises(InputError, match=r"Your session's files take .* the limit per visitor .*Delete run"):
        session.folder(str(tmp_path), quota_bytes=1000)


def test_the_server_empties_its_cache_when_it_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import atexit
    import os

    import app

    registered = []
    monkeypatch.setattr(atexit, "register", lambda fn, *args: registered.append((fn, args)))
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    sessions = Path(app.server_folders())
    cache = Path(os.environ["GRADIO_TEMP_DIR"])
    assert sessions.parent == cache and cache.is_dir()  # downloads are served from the session folders
    (cache / "upload-hash").mkdir()
    (cache / "upload-hash" / "corpus.txt").write_text("a cat")
    for fn, args in reversed(registered):  # what the interpreter does at exit (last registered first)
        fn(*args)
    assert not cache.exists() and not any(tmp_path.iterdir())


def test_a_run_of_every_step_is_replayed_to_the_same_settings_without_the_queue(
        tiny_studio: Studio, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from simcse_core.model import catalogue
    from ui.serving import replays, runs

    monkeypatch.setitem(catalogue.SHIPPED_MODELS, str(tiny_model_dir), tiny_model_dir)  # a catalogue model
    monkeypatch.setattr(replays, "REPLAY_S", 0.2)
    monkeypatch.setattr(runs.lifecycle, "REPLAY_S", 0.2)
    monkeypatch.setattr(tiny_studio, "replays", replays.ReplayCache())
    first, second, third = Session(), Session(), Session()
    trained = list(_run(tiny_studio, first, steps=6))
    assert len(tiny_studio.replays) == 1 and "replay" not in trained[-1]["status"]
    joined = []
    monkeypatch.setattr(tiny_studio.training_queue, "join",
                        lambda *a, **k: joined.append(a) or pytest.fail("a replay must not queue"))
    replayed = list(_run(tiny_studio, second, steps=6))
    assert not joined and "is a replay" in replayed[0]["status"] and "Replaying" in replayed[1]["status"]
    assert "Done (replayed)" in replayed[-1]["status"]
    one, two = first.finetuned, second.finetuned
    assert two.encoder is one.encoder and two.steps == one.steps == 6  # shared, read-only: no second copy
    assert two.spearman_after == one.spearman_after and Path(two.model_zip).is_file()
    assert "replayed from this server's run" in two.summary
    monkeypatch.undo()  # another setting trains (the queue is real again)
    assert all("replay" not in u["status"] for u in _run(tiny_studio, third, steps=5) if "status" in u)


def test_a_stopped_or_budgeted_run_is_not_replayed(tiny_studio: Studio, tiny_model_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from simcse_core.model import catalogue
    from ui.serving import replays

    monkeypatch.setitem(catalogue.SHIPPED_MODELS, str(tiny_model_dir), tiny_model_dir)
    monkeypatch.setattr(tiny_studio, "replays", replays.ReplayCache())
    session = Session()
    updates = _run(tiny_studio, session, steps=2000)
    for update in updates:
        if "Training" in update.get("status", ""):
            session.stop_requested.set()
    assert len(tiny_studio.replays) == 0


def test_a_tab_closed_while_its_last_request_writes_state_still_ends_its_session() -> None:
    """gradio's delete_state raised "dictionary changed size during iteration" when a request of the session wrote
    its state during the walk (seen in the soak); the session then stayed for gradio's hour."""
    from ui.serving.session import end_session

    class RacingHolder:
        calls = 0
        deleted = False

        def delete_state(self, session_hash: str) -> None:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("dictionary changed size during iteration")
            self.deleted = True

    holder = RacingHolder()
    end_session(holder, "abc")
    assert holder.deleted and holder.calls == 2


def test_closing_a_session_twice_is_safe() -> None:
    session = Session()
    session.runs = {1: object()}
    close_session(session)
    close_session(session)  # a retried delete_state runs the callback again
    assert session.closed and session.runs == {}
