"""One admission per run (issue 24): :func:`ui.serving.runs.run` admits a run in its session and releases it
exactly once on every path — finish, Stop (training or waiting), error, gone listener — and a late release of one
run never frees a later run's admission. Fake jobs: no model, no server.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from simcse_core.training.train import TrainEvent
from ui.serving import runs
from ui.serving.config import StudioConfig
from ui.serving.errors import InputError, as_gr_error
from ui.serving.session import Session
from ui.serving.studio import Studio


def _event(step: int, total: int) -> TrainEvent:
    done = step == total
    return TrainEvent(step=step, total_steps=total, loss=None if step == 0 else 1.0 / step, lr=1e-3,
                      elapsed_s=float(step), metrics=None, done=done, train_s=0.1 * step,
                      stop_reason="steps" if done else None)


def _steps(total: int) -> Callable[[], Iterator[TrainEvent]]:
    return lambda: (_event(step, total) for step in range(total + 1))


class FakeEncoder:
    def eval(self) -> FakeEncoder:
        return self

    def compact(self, base=None) -> None:
        pass


@dataclass
class FakeJob:
    """A run whose training is ``events()`` (TrainEvents, or an error): what the lifecycle sees of a real one."""

    events: Callable[[], Iterator[TrainEvent]]
    where: str = "fake_run"
    remeasure: bool = False
    downloads: bool = False
    budget_s: float = 60.0

    def expected_s(self, studio: Studio) -> float:
        return 1.0

    def begin(self, studio: Studio, session: Session) -> runs.Training:
        return runs.Training(title="fake run", base=None, encoder=FakeEncoder(), events=self.events(),
                             eval_pairs=SimpleNamespace(name="pairs"), data="fake data",
                             history=runs.RunHistory("pairs"), thread_name="fake-run")

    def keep(self, studio: Studio, session: Session, training: runs.Training, model_zip: str | None):
        return f"kept at step {training.last.step}", ()


@pytest.fixture
def studio(tmp_path: Path) -> Studio:
    return Studio(StudioConfig(model="never-loaded", temp_root=str(tmp_path), training_slots=1))


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Session:
    """A session that counts its releases (``session.released``)."""
    session = Session()
    session.released = []
    end = session.end_training
    monkeypatch.setattr(session, "end_training", lambda: (session.released.append(time.monotonic()), end()))
    return session


def _admitted(session: Session) -> bool:
    """True while a run of ``session`` is admitted (another would be refused)."""
    return not session.training_idle.is_set()


def _until(updates: Iterator, kind: type) -> object:
    return next(update for update in updates if isinstance(update, kind))


# --- the token ---------------------------------------------------------------------------------------------------
def test_an_admission_is_released_once_and_a_late_release_leaves_the_next_run_admitted(session: Session) -> None:
    with runs.Admission(session) as first:
        assert _admitted(session)
        first.release()
        assert not _admitted(session)
        second = runs.Admission(session)
        first.release()  # late: a second path of the first run
    assert _admitted(session) and not second.released  # the first's `with` ended too: still the second's
    assert len(session.released) == 1
    second.release()
    assert not _admitted(session)


def test_a_refused_admission_releases_nothing(session: Session) -> None:
    with runs.Admission(session):
        with pytest.raises(InputError, match="already have a run"), runs.Admission(session):
            pass
        assert _admitted(session)


# --- each path of a run ------------------------------------------------------------------------------------------
def test_a_finished_run_releases_its_admission_and_slot_once(studio: Studio, session: Session) -> None:
    updates = list(runs.run(studio, session, FakeJob(_steps(3))))
    assert isinstance(updates[-1], runs.Finished) and updates[-1].kept == "kept at step 3"
    assert len(session.released) == 1 and not _admitted(session)
    assert studio.training_queue.counts() == (0, 0)


def test_a_late_release_of_run_1_leaves_run_2_admitted(studio: Studio, session: Session) -> None:
    """Run 1 is kept and released before its last updates; run 2 starts meanwhile (an API client does not wait for
    the Start button); run 1's end must not free run 2's admission."""
    first = runs.run(studio, session, FakeJob(_steps(2)))
    _until(first, runs.Finished)  # run 1 is kept; its generator has not ended yet
    assert not _admitted(session)
    second = runs.run(studio, session, FakeJob(_steps(50)))
    assert isinstance(next(second), runs.Started)
    assert list(first) == []  # run 1 ends late
    assert _admitted(session), "run 1's late end freed run 2's admission"
    assert len(session.released) == 1
    second.close()
    assert len(session.released) == 2 and not _admitted(session)


def test_stop_while_training_keeps_the_run_and_releases_once(studio: Studio, session: Session) -> None:
    updates = runs.run(studio, session, FakeJob(_steps(50)))
    _until(updates, runs.Progress)
    session.stop_requested.set()
    rest = list(updates)
    assert rest[-1].reason == "Stopped" and rest[-1].kept is not None
    assert len(session.released) == 1 and studio.training_queue.counts() == (0, 0)


def test_stop_while_waiting_leaves_the_queue_and_a_later_run_keeps_its_admission(studio: Studio,
                                                                                 session: Session) -> None:
    queue = studio.training_queue
    blocker = queue.join(60, "someone else")
    try:
        first = runs.run(studio, session, FakeJob(_steps(2)))
        assert isinstance(next(first), runs.Waiting)
        session.stop_requested.set()
        assert isinstance(_until(first, runs.LeftQueue), runs.LeftQueue)
        assert not _admitted(session) and queue.counts() == (1, 0)  # released before the update: Stop answers
        second = runs.run(studio, session, FakeJob(_steps(2)))
        assert isinstance(next(second), runs.Waiting)
        assert list(first) == []  # the first run's generator ends after the second was admitted
        assert _admitted(session) and len(session.released) == 1
        second.close()  # a cancelled waiter
        assert not _admitted(session) and len(session.released) == 2 and queue.counts() == (1, 0)
    finally:
        queue.leave(blocker)


def _crash_after(steps: int, before_raising: Callable[[], None] = lambda: None) -> Callable[[], Iterator]:
    def events() -> Iterator[TrainEvent]:
        for step in range(steps + 1):
            yield _event(step, 50)
        before_raising()
        raise RuntimeError("the training step crashed")
    return events


def _logged_id(caplog: pytest.LogCaptureFixture, where: str) -> str:
    found = [re.search(r"Unexpected error (\w+) in " + where, record.getMessage()) for record in caplog.records]
    ids = [match.group(1) for match in found if match]
    assert len(ids) == 1, caplog.text
    assert any(record.exc_info and "crashed" in str(record.exc_info[1]) for record in caplog.records)
    return ids[0]


def test_a_training_error_is_logged_once_with_the_id_the_visitor_sees_and_releases_once(
        studio: Studio, session: Session, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ui.serving.errors")
    updates = list(runs.run(studio, session, FakeJob(_crash_after(2))))
    (problem,) = [update for update in updates if isinstance(update, runs.Problem)]
    error_id = _logged_id(caplog, "fake_run")
    assert f"error id {error_id}" in problem.error.message
    assert updates[-1].reason == "Stopped by an error" and updates[-1].kept == "kept at step 2"
    assert len(session.released) == 1 and studio.training_queue.counts() == (0, 0)
    as_gr_error(problem.error, problem.where)  # what the tabs' report_error does with it: logs nothing more
    assert sum("Unexpected error" in record.getMessage() for record in caplog.records) == 1


def test_a_training_error_is_logged_when_nobody_listens_any_more(studio: Studio, session: Session,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ui.serving.errors")

    def visitor_leaves() -> None:
        session.closed = True  # the tab closed as the step crashed: no update is shown any more

    updates = list(runs.run(studio, session, FakeJob(_crash_after(1, visitor_leaves))))
    assert not any(isinstance(update, runs.Problem | runs.Finished) for update in updates)
    _logged_id(caplog, "fake_run")
    assert len(session.released) == 1 and studio.training_queue.counts() == (0, 0)


def test_a_gone_listener_frees_the_admission_once_and_its_late_end_frees_no_later_run(
        studio: Studio, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = studio.training_queue
    monkeypatch.setattr(queue, "listener_timeout_s", 0.2)
    first = runs.run(studio, session, FakeJob(_steps(50)))
    _until(first, runs.Progress)  # then nobody takes the next update
    time.sleep(0.3)
    assert queue.counts() == (0, 0)  # the queue gives the slot up (and the admission with it)
    assert not _admitted(session) and len(session.released) == 1
    second = runs.run(studio, session, FakeJob(_steps(50)))
    assert isinstance(next(second), runs.Started)
    assert list(first) == []  # resumed late: it ends at once, keeping nothing
    assert _admitted(session) and len(session.released) == 1
    second.close()
    assert not _admitted(session) and len(session.released) == 2


def test_a_refused_place_in_the_queue_releases_the_admission(studio: Studio, session: Session) -> None:
    queue = studio.training_queue
    holders = [queue.join(60, "10.0.0.7") for _ in range(queue.max_per_client)]
    try:
        with pytest.raises(InputError, match="This network address .* already has"):
            next(runs.run(studio, session, FakeJob(_steps(2)), client="10.0.0.7"))
        assert not _admitted(session) and len(session.released) == 1
    finally:
        for ticket in holders:
            queue.leave(ticket)
