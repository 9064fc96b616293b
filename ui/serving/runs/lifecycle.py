"""The life of a training run, for every tab that trains: admit, wait in the queue, train, re-measure, package,
compact, keep.

:func:`run` takes a job — a fine-tune (:class:`FinetuneJob`) or an ablation preset (:class:`PresetJob`) — and
yields small typed updates (:data:`RunUpdate`) that the tab renders; nothing here knows about Gradio. A run is
admitted once per visitor, waits in the server's :class:`ui.serving.training_queue.TrainingQueue`, trains a private
copy of a shared base model in a background thread at a lower CPU priority, and ends when its steps or time
budget are spent, when the visitor presses Stop (``Session.stop_requested``), or when they leave.

Stop (and a Gradio cancellation) may end the consumer at any update, so everything a stopped run needs —
re-measuring, compacting, keeping, giving the slot back — happens before the next update is yielded. The run's
place in the queue and its admission in the session (:class:`Admission`) are held by :func:`run` alone and
given up exactly once on every path (finish, Stop, error, gone listener); an error is logged, with the id the
visitor is shown, when it happens, whether or not anyone still listens.
"""


from __future__ import annotations

import logging
import math
import shutil
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from simcse_core.runtime import background_iter
from ui.serving.errors import InputError, as_gr_error
from ui.serving.replays import REPLAY_S, Replay, ReplayKey, now_label
from ui.serving.runs.jobs import FinetuneJob, Job, Training
from ui.serving.runs.updates import (
    Finished,
    LeftQueue,
    Packaging,
    Problem,
    Progress,
    Remeasured,
    RunUpdate,
    Started,
    Waiting,
)
from ui.serving.session import FineTuneRecord, Session
from ui.serving.studio import Studio
from ui.serving.training_queue import TRAIN_NICENESS

logger = logging.getLogger(__name__)

QUEUE_POLL_S = 1.0  # how often a waiting run reports its place in line
# Steps take about 0.4-0.7 s here; a tab gets at most one progress update per this many seconds (plus every
# evaluation and the end), so drawing progress never competes with training and other visitors for the CPU.
STREAM_EVERY_S = 1.0
STOP_ANSWER_S = 1.5  # Stop answers within this; the run ends after its current step and packaging


class Admission:
    """One run's admission in its session (one run per visitor): :meth:`Session.begin_training` on entry, and
    :meth:`Session.end_training` exactly once, by whichever comes first: the run's end (finish, Stop, error), the
    queue giving up on a gone listener, or leaving the ``with`` block. A late release (a second path, long after)
    frees nothing, so never a later run's admission.

    Only :func:`run` admits and releases; Stop and the tabs ask it (``Session.stop_requested``).
    """

    def __init__(self, session: Session) -> None:
        session.begin_training()  # InputError when the visitor has a run already
        self._session = session
        self._lock = threading.Lock()
        self.released = False

    def release(self) -> None:
        """Let the visitor's next run in and Stop answer (idempotent: only the first call does)."""
        with self._lock:
            if self.released:
                return
            self.released = True
        self._session.end_training()

    def __enter__(self) -> Admission:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def run(studio: Studio, session: Session, job: Job, client: str = "local") -> Iterator[RunUpdate]:
    """Admit ``job`` (one run per session, ``studio.config.max_runs_per_address`` per ``client`` address), wait for
    a slot, train, then keep what it trained; yield updates.

    A run whose listener stops taking updates (a closed tab, a killed API client) loses its place or slot after
    ``TrainingQueue.listener_timeout_s`` and ends, keeping nothing, if it is ever resumed.
    """
    key = job.replay_key(studio) if isinstance(job, FinetuneJob) else None  # hashes the data: once a run
    replay = studio.replays.get(key)
    if replay is not None:  # these exact settings trained here already: the same weights, without the queue
        with Admission(session) as admission:
            yield from _replay(studio, session, job, replay, admission)
        return
    queue = studio.training_queue
    with Admission(session) as admission, queue.place(job.budget_s, client=client, expected_s=job.expected_s(studio),
                                                      on_gone=admission.release) as ticket:
        while not queue.wait(ticket, timeout=QUEUE_POLL_S):
            if ticket.gone:
                return
            if session.leaving:  # the place and the admission go before the update: Stop answers at once
                queue.leave(ticket)
                admission.release()
                yield LeftQueue(tuple(session.run_labels()))
                return
            training, waiting = queue.counts()
            yield from _handed(queue, ticket, Waiting(queue.position(ticket), queue.estimated_wait(ticket),
                                                      training, waiting))
        if not ticket.gone:
            yield from _train(studio, session, job, queue, ticket, admission, key)


def _handed(queue, ticket, update: RunUpdate) -> Iterator[RunUpdate]:
    """Yield ``update``, noting for the queue that the listener has it to take (and then that it took it)."""
    queue.handed(ticket)
    yield update
    queue.taken(ticket)


def _problem(err: BaseException, where: str) -> Problem:
    """The :class:`Problem` of ``err``, logged now (unexpected errors with their traceback, under the id the
    visitor is shown), whether or not anyone still listens."""
    return Problem(as_gr_error(err, where), where)


def _train(studio: Studio, session: Session, job: Job, queue, ticket, admission: Admission,
           replay_key: ReplayKey | None = None) -> Iterator[RunUpdate]:
    training = job.begin(studio, session)
    training.replay_key = replay_key
    deadline = ticket.started_at + job.budget_s  # the budget counts from the slot: measuring included
    yield from _handed(queue, ticket, Started(training.title, training.eval_name, training.data))
    reason, problems, kept, dropped, remeasured = "Stopped", [], None, (), False
    stream = background_iter(training.events, niceness=TRAIN_NICENESS, name=training.thread_name)
    try:
        shown_evaluations, shown_at = 0, 0.0
        for event in stream:
            training.record(event)
            if event.done:
                reason = "Done" if event.stop_reason == "steps" else "Time budget reached"
            if event.done or event.metrics or event.elapsed_s - shown_at >= STREAM_EVERY_S:
                evaluations = len(training.history.eval_steps)
                yield from _handed(queue, ticket, Progress(event, training.history,
                                                           new_evaluation=evaluations != shown_evaluations))
                shown_evaluations, shown_at = evaluations, event.elapsed_s
            if session.stop_requested.is_set() or ticket.gone:
                break
            if time.monotonic() > deadline:  # a busy server: the slot is given back one step after the budget
                reason = "Time budget reached"
                break
    except Exception as err:  # noqa: BLE001 - keep what was trained and tell the visitor
        problems.append(_problem(err, job.where))
        reason = "Stopped by an error"
    finally:  # also when the consumer stops at a yield: what was trained is measured and kept
        stream.close()  # closes the events in the training thread after its step: never mid-update
        queue.leave(ticket)  # the next in line trains while this run is measured and kept
        try:
            if not session.closed and not ticket.gone:  # a visitor who left keeps nothing
                remeasured = job.remeasure and remeasure(training)
                if reason != "Done":  # only a run of every step is the same on any machine: replayable
                    training.replay_key = None
                kept, dropped = _keep(studio, session, job, training, problems)
                if kept is not None and training.replay_key is not None and training.trained is not None:
                    studio.replays.put(training.replay_key, Replay(
                        kept.encoder, training.trained, tuple(training.seen), training.eval_name, training.data,
                        now_label()))
        finally:
            admission.release()  # kept: Stop answers, and the visitor may start another run while this packages
    if session.closed or ticket.gone:
        return
    yield from problems
    if remeasured and kept is not None:
        yield Remeasured(training.last.step, training.history)
    if kept is not None and job.downloads:
        yield Packaging(kept)
        try:
            package(studio, session, kept)
        except (OSError, InputError) as err:
            yield _problem(err, "package")
    yield Finished(reason, kept, dropped, training.history)


def _replay(studio: Studio, session: Session, job: FinetuneJob, replay: Replay, admission: Admission
            ) -> Iterator[RunUpdate]:
    """Serve a run of settings this server already trained to the end: its measured curve over about
    :data:`ui.serving.replays.REPLAY_S` seconds, then the same model kept in the session (shared, read-only)."""
    run_id = session.new_run_id()
    history = job.history(replay.eval_name)
    yield Started(f"run {run_id}", replay.eval_name, replay.data, replay_of=replay.trained_at)
    scale = REPLAY_S / max(replay.events[-1].elapsed_s, 1e-9)
    start, shown_at, shown_evaluations = time.monotonic(), -math.inf, 0
    for event in replay.events:
        history.add(event)
        if not (event.done or event.metrics or event.elapsed_s - shown_at >= STREAM_EVERY_S):
            continue
        if session.stop_requested.wait(max(0.0, start + event.elapsed_s * scale - time.monotonic())) or \
                session.closed:
            admission.release()
            yield Finished("Stopped", None, (), history)  # a replay has only its last step's weights
            return
        evaluations = len(history.eval_steps)
        yield Progress(event, history, new_evaluation=evaluations != shown_evaluations, replayed=True)
        shown_at, shown_evaluations = event.elapsed_s, evaluations
    last, problems, model_zip = replay.events[-1], [], None
    try:
        model_zip = write_model_zip(studio, session, replay.trained, run_id)
    except (OSError, InputError) as err:
        problems.append(_problem(err, job.where))
    record = FineTuneRecord(
        run_id=run_id, encoder=replay.encoder, base_name=job.base_name, base_pooler=job.base_pooler,
        summary=f"{last.step} steps on {replay.data}, replayed from this server's run of the same settings at "
                f"{replay.trained_at} (same settings and seed: the same weights)", mode=job.config.mode,
        steps=last.step, spearman_before=history.spearman[0] if history.spearman else None,
        spearman_after=history.spearman[-1] if len(history.spearman) > 1 else None,
        eval_name=history.eval_name, model_zip=model_zip)
    dropped = tuple(session.add_run(record, studio.config.max_runs))
    admission.release()
    yield from problems
    yield Packaging(record)
    try:
        package(studio, session, record)
    except (OSError, InputError) as err:
        yield _problem(err, "package")
    yield Finished("Done (replayed)", record, dropped, history)


def request_stop(session: Session, answer_within_s: float = STOP_ANSWER_S) -> bool:
    """Ask the session's run to stop after its current step (a waiting run leaves the line); True if it is over
    within ``answer_within_s`` (Stop answers by then either way: the run's own updates show how it ended)."""
    session.stop_requested.set()
    return session.training_idle.wait(timeout=answer_within_s)


def remeasure(training: Training) -> bool:
    """Measure a stopped run's model at its last step, unless the last evaluation already did (True if so)."""
    from types import SimpleNamespace

    from simcse_core.evaluation.metrics import embedding_report

    last, history = training.last, training.history
    if last is None or last.step == 0 or (history.eval_steps and history.eval_steps[-1] == last.step):
        return False
    training.encoder.eval()
    history.add(SimpleNamespace(step=last.step, loss=None, metrics=embedding_report(training.encoder,
                                                                                     training.eval_pairs)))
    return True


def _keep(studio: Studio, session: Session, job: Job, training: Training, problems: list[Problem]):
    """Package the download, compact the model, keep the run in the session: (kept, dropped)."""
    training.encoder.eval()
    last = training.last
    if last is None or last.step == 0:
        return None, ()
    model_zip = None
    if job.downloads:
        try:  # the download keeps the trained float32 weights
            model_zip = write_model_zip(studio, session, training.encoder, training.run_id)
        except (OSError, InputError) as err:  # kept as trained (float32); packaging tries the zip again
            problems.append(_problem(err, job.where))
    if training.replay_key is not None:  # a replay's download needs the float32 weights compaction drops
        training.trained = training.encoder.copy()
    if model_zip is not None or not job.downloads:  # from now on the model is only read: keep what inference reads
        try:
            training.encoder.compact(base=training.base)
        except Exception as err:  # noqa: BLE001 - a run kept as trained is still a good run
            logger.warning("%s kept uncompacted", training.title)
            problems.append(_problem(err, job.where))
    try:
        return job.keep(studio, session, training, model_zip)
    except ValueError as err:  # e.g. a preset stopped before it measured anything: nothing to keep
        problems.append(_problem(err, job.where))
        return None, ()


def write_model_zip(studio: Studio, session: Session, encoder, run_id: int) -> str:
    """Save a run's trained (float32) model as a zip in the session's folder; its path."""
    folder = session.folder(studio.config.temp_root) / f"simcse-finetuned-run{run_id}"
    encoder.save(folder)
    zip_path = folder.with_suffix(".zip")
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, Path(folder.name) / path.relative_to(folder))
    shutil.rmtree(folder, ignore_errors=True)
    return str(zip_path)


def package(studio: Studio, session: Session, record: FineTuneRecord, progress=None) -> FineTuneRecord:
    """Write the run's zip (unless keeping it did) and the corpus embeddings (.npy), once."""
    with session.finalize_lock:
        if record.model_zip and record.embeddings_npy:
            return record
        if not record.model_zip:
            record.model_zip = write_model_zip(studio, session, record.encoder, record.run_id)
        index = studio.get_index(session, record.encoder, record.model_key, progress)
        npy_path = session.folder(studio.config.temp_root) / f"corpus-embeddings-run{record.run_id}.npy"
        np.save(npy_path, np.asarray(index.vectors, dtype=np.float32))
        record.embeddings_npy = str(npy_path)
        return record
