"""One visitor's session: their corpus, indexes, maps, fine-tuned runs, preset runs and files, behind one lock.

A :class:`Session` lives in a ``gr.State`` made by :func:`session_state`: Gradio calls :func:`new_session` for each new
visitor (on page load in a browser, where the browser's person id joins it; on the first request of an API
client), and calls :func:`close_session` when the visitor closes the tab or, for an API client, ``session_ttl_s``
after the last event that wrote the session. Every session of one server shares its :class:`ui.serving.people.People`:
the runs each person has training or waiting, and the runs kept server-wide.

Handlers change a session only through its methods, which hold its lock; a handler that changes it
lists it among its outputs, which keeps it alive and registers it for that cleanup.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from simcse_core.limits import LIMITS
from ui.serving.config import StudioConfig
from ui.serving.errors import InputError
from ui.serving.memory import release_memory_soon
from ui.serving.people import Parked, People, new_person_id, valid_person_id
from ui.serving.server import folder_bytes, remove_cached_copy

logger = logging.getLogger(__name__)

FINETUNED_LABEL = "Fine-tuned (this session)"  # the latest run of the session (kept for API callers)
RUN_LABEL = re.compile(r"^run (\d+) ·")
MAX_PRESETS_KEPT = 12  # preset results kept per visitor (the latest of each preset replaces the older)


@dataclass(frozen=True)
class ModelKey:
    """Which vectors: a base model (``run_id`` None) or a run of this session, and the pooler."""

    source: str  # canonical base model name (see ui.serving.config.canonical_model_name)
    pooler: str
    run_id: int | None = None  # a fine-tuned run of the session; None for the shared base model

    @property
    def is_base(self) -> bool:
        return self.run_id is None


@dataclass(frozen=True)
class IndexKey:
    """A search index: the model's vectors of one corpus (corpus 0 is the bundled one)."""

    model: ModelKey
    corpus: int


@dataclass(eq=False)
class FineTuneRecord:
    """What one fine-tuning run produced (kept in the session until deleted or pushed out by newer runs)."""

    run_id: int  # increases with every run in this session
    encoder: Any  # the fine-tuned Encoder (private to the session)
    base_name: str  # the base model it started from (canonical name)
    base_pooler: str  # the pooler it started from: the base side of every comparison
    summary: str  # one line for tables: data, steps, seconds
    mode: str = "unsup"
    steps: int = 0
    spearman_before: float | None = None
    spearman_after: float | None = None
    eval_name: str = ""
    model_zip: str | None = None  # path of the zip to download
    embeddings_npy: str | None = None  # path of the corpus embeddings to download
    kept_at: float = field(default_factory=time.monotonic)  # when the session kept it (the oldest go first)
    _poolers: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """The run's name in the picker and in comparisons, e.g. ``run 2 · unsup · 39 steps · STS 31.2→52.0``."""
        parts = [f"run {self.run_id}", self.mode, f"{self.steps} steps"]
        if self.spearman_before is not None and self.spearman_after is not None:
            parts.append(f"STS {self.spearman_before:.1f}→{self.spearman_after:.1f}")
        return " · ".join(parts)

    @property
    def model_key(self) -> ModelKey:
        return ModelKey(self.base_name, self.encoder.config.pooler, self.run_id)

    @property
    def base_key(self) -> ModelKey:
        return ModelKey(self.base_name, self.base_pooler)

    def encoder_with(self, pooler: str | None):
        """The run's encoder with ``pooler`` (made once per pooler, never per request)."""
        if not pooler or pooler == self.encoder.config.pooler:
            return self.encoder
        if pooler not in self._poolers:
            self._poolers[pooler] = self.encoder.with_pooler(pooler)
        return self._poolers[pooler]


@dataclass
class Corpus:
    """A searchable list of sentences with optional topic labels."""

    name: str  # shown to the user, e.g. "Bundled corpus (1,200 sentences)"
    sentences: list[str]
    topics: list[str] | None = None  # one label per sentence, or None
    key: int = 0  # changes whenever the corpus changes (cache key)


@dataclass(frozen=True)
class PresetRun:
    """The latest ablation-preset model of a session (what the cone view draws without a fine-tune)."""

    encoder: Any  # the trained (compacted) Encoder
    label: str  # e.g. 'preset “dropout 0”'


@dataclass(eq=False)
class Session:
    """One visitor's data. Lives in a ``gr.State``; handlers change it only through its methods (one lock)."""

    corpus: Corpus | None = None
    runs: dict[int, FineTuneRecord] = field(default_factory=dict)  # run id -> record, oldest first
    indexes: dict[IndexKey, Any] = field(default_factory=dict)  # -> SearchIndex
    projections: dict[tuple, Any] = field(default_factory=dict)  # map cache: (keys..., corpus key) -> its drawing
    loss_views: Any = None  # simcse_core.teaching.mechanisms.LossViews of the Inside tab's loss panel
    preset_results: list = field(default_factory=list)  # AblationResult of each preset run, latest last
    preset_events: dict[str, list] = field(default_factory=dict)  # preset key -> its TrainEvents (no snapshots)
    preset_run: PresetRun | None = None
    run_count: int = 0  # fine-tuning runs started
    corpus_count: int = 0  # corpora uploaded (each gets a new Corpus.key)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    training_idle: threading.Event = field(default_factory=threading.Event)  # clear while a run is admitted
    finalize_lock: threading.Lock = field(default_factory=threading.Lock)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    workdir: Path | None = None
    closed: bool = False  # set when the visitor left: nothing new is written for it
    person: str = field(default_factory=new_person_id)  # the browser's id (its tabs share it); else this session's
    browser: bool = False  # a browser's page (made on page load): its runs can come back after a reload
    people: People | None = None  # the server's shared counts (None: this session is not counted, e.g. in tests)
    notices: list[str] = field(default_factory=list)  # for the visitor's next event (errors.guarded)
    _admission: threading.Lock = field(default_factory=threading.Lock, repr=False)  # begin/end of a run

    def __post_init__(self) -> None:
        self.training_idle.set()

    def __deepcopy__(self, memo: dict) -> Session:
        # Gradio deep-copies a gr.State's initial value; a session made for a new visitor is already its own.
        return self

    # --- training ---
    def begin_training(self) -> None:
        """Admit one run of this visitor: InputError if one is already admitted (one run per session) or their
        person already has ``People.max_runs_per_person`` runs training or waiting (in other tabs)."""
        with self.lock, self._admission:
            if self.closed:
                raise InputError("This session has ended (the page was closed). Reload the page.")
            if not self.training_idle.is_set():
                raise InputError("You already have a run training (a fine-tune or an ablation preset): wait for "
                                 "it to finish, or press Stop in the Fine-tune tab.")
            if self.people is not None:
                self.people.admit(self.person)
            self.training_idle.clear()
            self.stop_requested.clear()

    def end_training(self) -> None:
        """The admitted run is over (kept or not, finished, stopped, failed or gone): Stop may answer, another run
        may start, and the memory the run freed goes back to the system. Once per run; later calls do nothing.

        Never waits for the session's lock (the training queue calls it under its own lock for a gone run).
        """
        with self._admission:
            if self.training_idle.is_set():
                return
            if self.people is not None:
                self.people.release(self.person)
            self.training_idle.set()
        release_memory_soon()

    @property
    def leaving(self) -> bool:
        """The visitor pressed Stop or closed the tab."""
        return self.stop_requested.is_set() or self.closed

    # --- runs ---
    @property
    def finetuned(self) -> FineTuneRecord | None:
        """The latest run, or None."""
        with self.lock:
            return next(reversed(self.runs.values()), None)

    def run_labels(self) -> list[str]:
        with self.lock:
            return [record.label for record in self.runs.values()]

    def run_for(self, choice: str | None) -> FineTuneRecord | None:
        """The run a picker choice names (its label, or FINETUNED_LABEL for the latest); None for base models."""
        choice = (choice or "").strip()
        if choice == FINETUNED_LABEL:
            return self.finetuned
        match = RUN_LABEL.match(choice)
        if match is None:
            return None
        with self.lock:
            return self.runs.get(int(match.group(1)))

    def new_run_id(self) -> int:
        with self.lock:
            self.run_count += 1
            return self.run_count

    def add_run(self, record: FineTuneRecord, keep: int) -> list[FineTuneRecord]:
        """Keep ``record``; drop (and return) the oldest runs beyond ``keep``. Beyond the server's cap of kept
        runs, the oldest runs of idle sessions go (``People.kept``: each owner, this one too, gets a notice)."""
        with self.lock:
            self.runs[record.run_id] = record
            dropped = []
            while len(self.runs) > max(1, keep):
                dropped.append(self._forget(next(iter(self.runs))))
        # The server's cap, outside this session's lock: it takes other sessions' locks, one at a time.
        server_dropped = self.people.kept(self, record) if self.people is not None else []
        if dropped or server_dropped:
            release_memory_soon()
        return dropped

    def delete_run(self, run_id: int) -> FineTuneRecord | None:
        with self.lock:
            return self._forget(run_id) if run_id in self.runs else None

    def _forget(self, run_id: int) -> FineTuneRecord:
        record = self.runs.pop(run_id)
        self.indexes = {k: v for k, v in self.indexes.items() if k.model.run_id != run_id}
        self.projections = {k: v for k, v in self.projections.items() if not _mentions_run(k, run_id)}
        for path in (record.model_zip, record.embeddings_npy):
            if path:  # gradio's cached copy (made when it served the download) goes too
                remove_cached_copy(path)
        return record

    # --- preset runs (Inside tab) ---
    def keep_preset(self, result, events: list, run: PresetRun) -> None:
        """Keep a preset's result (replacing an older run of the same preset), its events and its model."""
        with self.lock:
            older = [r for r in self.preset_results if r.key != result.key]
            self.preset_results = [*older[-(MAX_PRESETS_KEPT - 1):], result]
            self.preset_events = {key: self.preset_events[key] for key in
                                  (r.key for r in self.preset_results) if key in self.preset_events}
            self.preset_events[result.key] = events
            self.preset_run = run

    def clear_presets(self) -> None:
        """Forget the preset results (the latest preset model stays for the cone view)."""
        with self.lock:
            self.preset_results, self.preset_events = [], {}

    def presets(self) -> tuple[list, dict[str, list]]:
        """(results, events by preset key), copied under the lock."""
        with self.lock:
            return list(self.preset_results), dict(self.preset_events)

    # --- messages for the visitor's next event ---
    def adopt(self, parked: Parked) -> None:
        """Take the runs a closed tab of this person left (a reload), with the folder of their downloads."""
        with self.lock:
            self.runs = {**parked.runs, **self.runs}
            self.run_count = max(self.run_count, parked.run_count)
            if self.workdir is None:
                self.workdir = parked.workdir
            elif parked.workdir is not None:
                remove_folder(parked.workdir)
        if self.people is not None:
            self.people.adopted(self)
        labels = ", ".join(f"**{run.label}**" for run in parked.runs.values())
        self.notify(f"Your runs from before the reload are back: {labels}. They are in the model picker.")

    def notify(self, message: str) -> None:
        """Leave ``message`` for the visitor (shown as a warning at their next event: ``ui.serving.errors.guarded``)."""
        with self._admission:  # a short lock: the server's cap notifies while other sessions hold theirs
            self.notices = [*self.notices[-4:], message]

    def take_notices(self) -> list[str]:
        """The messages left for the visitor (each shown once)."""
        with self._admission:
            notices, self.notices = self.notices, []
            return notices

    def set_loss_views(self, views) -> None:
        with self.lock:
            self.loss_views = views

    # --- corpus, indexes and maps ---
    def set_corpus(self, corpus: Corpus) -> Corpus:
        """Make ``corpus`` the session's corpus; indexes and maps of earlier uploads are dropped."""
        with self.lock:
            self.corpus = corpus
            self.indexes = {k: v for k, v in self.indexes.items() if k.corpus in (0, corpus.key)}
            self.projections = {k: v for k, v in self.projections.items() if k[-1] in (0, corpus.key)}
            return corpus

    def new_corpus_key(self) -> int:
        with self.lock:
            self.corpus_count += 1
            return self.corpus_count

    def projection(self, key: tuple, make: Callable[[], Any]) -> Any:
        """The map drawing cached under ``key`` (its last part is the corpus key), made once by ``make``.

        ``make`` (UMAP: seconds) runs outside the lock, so the visitor's other requests are not held up.
        """
        with self.lock:
            found = self.projections.get(key)
        if found is None:
            found = make()
            with self.lock:
                if not self.closed and (self.corpus is None or key[-1] in (0, self.corpus.key)):
                    self.projections[key] = found
        return found

    def folder(self, root: str | None = None, quota_bytes: int = LIMITS.session_disk_bytes) -> Path:
        """This session's private temp folder (made on first use, removed by :func:`close_session`), for a new
        file: InputError when the session's files already take ``quota_bytes``."""
        with self.lock:
            if self.closed:
                raise InputError("This session has ended (the page was closed). Reload the page.")
            if self.workdir is None:
                self.workdir = Path(tempfile.mkdtemp(prefix="simcse-studio-", dir=root))
            used = folder_bytes(self.workdir)
            if used >= quota_bytes:
                raise InputError(f"Your session's files take {used / 1e6:,.0f} MB, the limit per visitor "
                                 f"({quota_bytes / 1e6:,.0f} MB): delete runs you no longer need (Delete run) "
                                 "and try again.")
            return self.workdir


def _mentions_run(key: tuple, run_id: int) -> bool:
    return any(isinstance(part, ModelKey) and part.run_id == run_id for part in key)


def close_session(session: Session) -> None:
    """``gr.State`` delete_callback: stop training, drop models, indexes and maps; the kept runs (and the folder with
    their downloads) wait ``People.park_s`` for the person to reload the page, else they go too."""
    session.stop_requested.set()
    with session.lock:
        session.closed = True
        workdir, session.workdir = session.workdir, None
        runs, session.runs = dict(session.runs), {}
        session.indexes.clear()
        session.projections.clear()
        session.loss_views, session.preset_run = None, None
        session.preset_results, session.preset_events = [], {}
    if runs and session.browser and session.people is not None:  # an API client cannot reload: nothing to wait for
        session.people.park(session.person, runs, session.run_count, workdir, release_parked)
    else:
        remove_folder(workdir)
    release_memory_soon()


def end_session(state_holder, session_hash: str | None, attempts: int = 5) -> None:
    """The visitor closed or reloaded the tab: drop their session's state now (runs the delete_callback).

    gradio's ``StateHolder.delete_state`` walks the session's state while a request of the same session may still
    be writing it (its last event finishing as the tab closes): the walk then raises "dictionary changed size
    during iteration" and the state would stay for gradio's hour. It is tried again; :func:`close_session` is
    safe to run twice."""
    if not session_hash:
        return
    for attempt in range(attempts):
        try:
            state_holder.delete_state(session_hash)
            return
        except RuntimeError as err:  # the session's state changed during the walk
            logger.info("Ending session %s: %s (attempt %d of %d)", session_hash, err, attempt + 1, attempts)
            time.sleep(0.05 * (attempt + 1))
    logger.warning("Session %s could not be ended now; gradio drops its state later", session_hash)


def release_parked(parked: Parked) -> None:
    """Runs nobody came back for: their models, and the folder of their downloads."""
    parked.runs.clear()
    remove_folder(parked.workdir)
    release_memory_soon()


def remove_folder(workdir: Path | None) -> None:
    """Remove a session's folder, and gradio's cached copies of the downloads in it."""
    if workdir is None:
        return
    for path in [p for p in workdir.rglob("*") if p.is_file()]:  # downloads gradio copied into its cache
        remove_cached_copy(path)
    shutil.rmtree(workdir, ignore_errors=True)
    logger.info("Removed session folder %s", workdir)


PERSON_KEY = "simcse-studio-person"  # the browser's localStorage key of its person id


def new_session(people: People | None = None, person: str | None = None) -> Session:
    """A new visitor's session, counted in ``people``: the person ``person`` (a browser's stored id) if it is a
    valid one, else a new person (an API client, or a browser's first visit)."""
    return Session(person=valid_person_id(person) or new_person_id(), people=people)


def start_browser_session(people: People | None, stored: object) -> tuple[Session, str]:
    """Page load: the browser's session, as the person its stored id names (a new id if it has none or a
    forged one); the id goes back to the browser to keep."""
    session = new_session(people, stored if isinstance(stored, str) else None)
    session.browser = True
    parked = None if people is None else people.claim(session.person)
    if parked is not None:
        session.adopt(parked)
    return session, session.person


def session_state(config: StudioConfig, demo: gr.Blocks, people: People | None = None) -> gr.State:
    """The per-visitor ``gr.State`` of ``demo``: a new :class:`Session` for each visitor, closed when they leave,
    counted in the server's ``people``.

    A browser visitor's session is made on page load, which registers it for cleanup from the start and makes it
    the browser's person: a random id kept in the browser (``gr.BrowserState``, encrypted with a secret of this
    server's run), the same in all its tabs. An API client's session is made on its first request, a person of
    its own.
    """
    state = gr.State(functools.partial(new_session, people), time_to_live=config.session_ttl_s,
                     delete_callback=close_session)
    state.load_event_to_attach = None  # gradio's own load event would be a public API endpoint: ours is private
    browser = gr.BrowserState(None, storage_key=PERSON_KEY)
    # the event's dependency, for what follows a page load (the picker lists runs a reload brought back)
    state.loaded = demo.load(functools.partial(start_browser_session, people), browser, [state, browser],
                             api_visibility="private")
    return state
