"""Shared and per-visitor state: the model catalogue and cache, each visitor's session, the training queue,
and the error flow between handlers and visitors.

Gradio shares anything created at build time between all visitors, so only read-only things (and caches of
them) live there: the :class:`ModelRegistry` of base models, the bundled corpus and its indexes under base
models, and the :class:`TrainingQueue`. Everything a visitor makes — their corpus, indexes, fine-tuned runs,
files — lives in a :class:`Session` held by a ``gr.State``; the session guards its own data with one lock, and
its ``delete_callback`` (:func:`close_session`) removes it when the visitor leaves.

Tabs import this module and never each other.
"""

from __future__ import annotations

import functools
import heapq
import inspect
import itertools
import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from simcse_core.data import DataError, DataLimits
from simcse_core.evaluation.sets import QUICK_EVAL_PAIRS, EvaluationDataUnavailable
from simcse_core.model.catalogue import (
    DEFAULT_MODEL,
    HUB_SUGGESTIONS,
    PACKAGED_MODELS,
    ModelNotAvailableError,
    hub_offline,
)
from ui import text

logger = logging.getLogger(__name__)

FINETUNED_LABEL = "Fine-tuned (this session)"  # the latest run of the session (kept for API callers)
BUNDLED_LABEL = "Bundled: all-MiniLM-L6-v2"
_RUN_LABEL = re.compile(r"^run (\d+) ·")


class InputError(ValueError):
    """Something a visitor typed, chose or uploaded cannot be used; the message says which field and why."""


# The project's own exception types whose message is written for the visitor. Anything else is a bug: it is
# logged with its traceback and the visitor sees a short apology with an id to quote.
USER_ERRORS = (InputError, DataError, ModelNotAvailableError, EvaluationDataUnavailable)


@dataclass(frozen=True)
class StudioConfig:
    """App-wide settings and limits, fixed at start-up (the README's "Limits" table lists them)."""

    model: str = DEFAULT_MODEL  # the base model offered first (a short name, or a folder/hub id the operator gave)
    device: str = "auto"  # torch device for every encoder
    precision: str = "auto"  # "auto" (bf16 where fast: see simcse_core.model.encoder.EncoderConfig), "fp32" or "bf16"
    default_pooler: str = "mean"  # picker default (all-MiniLM-L6-v2 was trained with mean pooling)
    max_sentence_chars: int = 1_000  # longest sentence a visitor may type (browser and server)
    max_heatmap_sentences: int = 40  # longest sentence list for the heatmap
    max_map_points: int = 2_000  # the embedding map subsamples bigger corpora
    max_upload_mb: int = 20  # largest file gradio accepts (max_file_size); same as DataLimits.max_bytes
    session_ttl_s: float = 3600  # an API session's data are dropped this long after its last request
    live_eval_pairs: int = QUICK_EVAL_PAIRS  # STS pairs scored during training (a fixed sample: quick)
    temp_root: str | None = None  # parent of the session folders (None: the system temp dir)
    allow_local_models: bool = False  # operator flag --allow-local-models: the picker may load server folders
    hub_models: tuple[str, ...] = HUB_SUGGESTIONS  # hub ids the picker may load when online (an allow-list)
    max_models: int = 3  # base models kept in memory at once (least recently used dropped first)
    max_runs: int = 3  # fine-tuned runs kept per session (the oldest is dropped, with a notice)
    max_steps: int = 2_000  # fine-tuning steps per run
    max_time_budget_s: float = 300.0  # wall-clock seconds per run (the queue's estimates rely on it)
    training_slots: int = 1  # runs training at once, server-wide (bench: two at once are slower in total)
    max_training_queue: int = 10  # runs waiting for a slot, server-wide; more are refused with a message

    @property
    def base_label(self) -> str:
        """The picker's label for the base model."""
        if self.model == DEFAULT_MODEL:
            return BUNDLED_LABEL
        return f"Local: {Path(self.model).name or self.model}"

    @property
    def max_list_chars(self) -> int:
        """Longest heatmap list (characters): every sentence at its limit, one per line."""
        return self.max_heatmap_sentences * (self.max_sentence_chars + 1)

    @property
    def upload_limits(self) -> DataLimits:
        return DataLimits(max_chars=self.max_sentence_chars, max_bytes=self.max_upload_mb * 1_000_000)

    def hub_choices(self) -> list[str]:
        """Hub ids the picker offers: the allow-list online, none offline (they could not load)."""
        return [] if hub_offline() else list(self.hub_models)

    def picker_note(self) -> str:
        """Why the picker lists what it lists (shown under it)."""
        if hub_offline():
            return " Hub models are not listed: this server is offline, so they cannot load."
        return ""

    def model_choices(self, runs: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Picker choices: the base model, the session's runs, and hub ids when online."""
        return [self.base_label, *runs, *self.hub_choices()]

    def model_name(self, choice: str | None) -> str:
        """The canonical name of a base model the picker may load (InputError for anything else).

        Only the operator's base model, packaged short names and (online) allow-listed hub ids load; a server
        folder loads only with ``allow_local_models``. The message never says whether a folder exists.
        """
        choice = (choice or "").strip()
        if choice in ("", self.base_label):
            return canonical_model_name(self.model)
        if choice in PACKAGED_MODELS:
            return choice
        if choice in self.hub_models:
            if hub_offline():
                raise ModelNotAvailableError(
                    f"'{choice}' is a Hugging Face hub model, and this server works offline: it cannot load. "
                    "Use the bundled model.")
            return choice
        if self.allow_local_models and _looks_like_path(choice):
            return canonical_model_name(choice)
        raise InputError(f"Model: '{shorten(choice)}' is not one of this app's models. Choose one from the list.")


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().is_dir()


def canonical_model_name(name: str) -> str:
    """One spelling per model: a packaged short name, a resolved folder, or a hub id (the cache key)."""
    name = name.strip()
    if name in PACKAGED_MODELS:
        return name
    if _looks_like_path(name):
        return str(Path(name).expanduser().resolve())
    return name


def shorten(value: object, limit: int = 60) -> str:
    """A visitor's string, safe to echo in a message: short, printable, valid UTF-8."""
    shown = str(value).encode("utf-8", "replace").decode("utf-8", "replace")
    shown = "".join(ch if ch.isprintable() else "?" for ch in shown)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


@dataclass(frozen=True)
class ModelKey:
    """Which vectors: a base model (``run_id`` None) or a run of this session, and the pooler."""

    source: str  # canonical base model name (see canonical_model_name)
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


class ModelRegistry:
    """Base encoders shared read-only by every session: an LRU of at most ``config.max_models`` models.

    Keys are canonical names, so eight spellings of one folder are one entry. Poolers of one model share its
    transformer weights (:meth:`Encoder.with_pooler`). The registry lock is never held while a model loads:
    each model has its own loading lock, so a slow download blocks only those who asked for that model.
    Nobody trains these encoders: training works on ``Encoder.copy()``.
    """

    def __init__(self, config: StudioConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._models: OrderedDict[str, dict[str, Any]] = OrderedDict()  # name -> {pooler: Encoder}
        self._loading: dict[str, threading.Lock] = {}
        self._pinned = canonical_model_name(config.model)  # the base model is never evicted

    def get(self, name: str, pooler: str):
        """The shared encoder for ``name`` with ``pooler`` (ModelNotAvailableError if it cannot load)."""
        name = canonical_model_name(name)
        with self._lock:
            found = self._lookup(name, pooler)
            if found is not None:
                return found
            loading = self._loading.setdefault(name, threading.Lock())
        with loading:  # one load per model; other models and loaded ones are not blocked
            with self._lock:
                found = self._lookup(name, pooler)
                sibling = next(iter(self._models[name].values())) if name in self._models else None
            if found is not None:
                return found
            encoder = sibling.with_pooler(pooler) if sibling is not None else self._load(name, pooler)
            encoder.eval()
            with self._lock:
                self._models.setdefault(name, {})[pooler] = encoder
                self._models.move_to_end(name)
                self._evict()
            return encoder

    def _lookup(self, name: str, pooler: str):
        poolers = self._models.get(name)
        if poolers is None or pooler not in poolers:
            return None
        self._models.move_to_end(name)
        return poolers[pooler]

    def _evict(self) -> None:
        while len(self._models) > max(1, self.config.max_models):
            victim = next((n for n in self._models if n != self._pinned), None)
            if victim is None:
                return
            del self._models[victim]
            logger.info("Dropped model %s from memory (at most %d kept)", victim, self.config.max_models)

    def _load(self, name: str, pooler: str):
        from simcse_core.model.encoder import load_encoder

        folder = Path(name)
        if name != self._pinned and folder.is_absolute() and not any(folder.glob("*.safetensors")):
            # A visitor's folder (--allow-local-models) loads from safetensors only: a pickled checkpoint
            # (pytorch_model.bin) can run code when it is read.
            raise ModelNotAvailableError(f"The model '{shorten(name)}' has no .safetensors weights; only "
                                         "safetensors files are loaded from folders visitors choose.")
        try:
            return load_encoder(name, pooler=pooler, device=self.config.device, precision=self.config.precision)
        except (ModelNotAvailableError, InputError):
            raise
        except Exception as err:  # damaged weights, unsupported architecture: the visitor's choice, not a bug
            logger.exception("Model %s failed to load", name)
            raise ModelNotAvailableError(f"The model '{shorten(name)}' could not be loaded: its files are damaged "
                                         "or it is not a supported model.") from err

    def is_loaded(self, name: str) -> bool:
        """Whether some pooler of ``name`` is in memory."""
        with self._lock:
            return canonical_model_name(name) in self._models

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._models)


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
    _poolers: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """The run's name in the picker and in comparisons, e.g. ``run 2 · unsup · 39 steps · STS 80.6→84.4``."""
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


@dataclass(eq=False)
class Session:
    """One visitor's data. Lives in a ``gr.State``; handlers change it only through its methods (one lock)."""

    corpus: Corpus | None = None
    runs: dict[int, FineTuneRecord] = field(default_factory=dict)  # run id -> record, oldest first
    indexes: dict[IndexKey, Any] = field(default_factory=dict)  # -> SearchIndex
    projections: dict[tuple, tuple] = field(default_factory=dict)  # map cache: (keys) -> 2-D points
    run_count: int = 0  # fine-tuning runs started
    corpus_count: int = 0  # corpora uploaded (each gets a new Corpus.key)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    training_idle: threading.Event = field(default_factory=threading.Event)
    finalize_lock: threading.Lock = field(default_factory=threading.Lock)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    workdir: Path | None = None
    closed: bool = False  # set when the visitor left: nothing new is written for it

    def __post_init__(self) -> None:
        self.training_idle.set()

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
        match = _RUN_LABEL.match(choice)
        if match is None:
            return None
        with self.lock:
            return self.runs.get(int(match.group(1)))

    def new_run_id(self) -> int:
        with self.lock:
            self.run_count += 1
            return self.run_count

    def add_run(self, record: FineTuneRecord, keep: int) -> list[FineTuneRecord]:
        """Keep ``record``; drop (and return) the oldest runs beyond ``keep``."""
        with self.lock:
            self.runs[record.run_id] = record
            dropped = []
            while len(self.runs) > max(1, keep):
                dropped.append(self._forget(next(iter(self.runs))))
            return dropped

    def delete_run(self, run_id: int) -> FineTuneRecord | None:
        with self.lock:
            return self._forget(run_id) if run_id in self.runs else None

    def _forget(self, run_id: int) -> FineTuneRecord:
        record = self.runs.pop(run_id)
        self.indexes = {k: v for k, v in self.indexes.items() if k.model.run_id != run_id}
        self.projections = {k: v for k, v in self.projections.items() if not _mentions_run(k, run_id)}
        for path in (record.model_zip, record.embeddings_npy):
            if path:
                Path(path).unlink(missing_ok=True)
        return record

    # --- corpus and indexes ---
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

    def folder(self, root: str | None = None) -> Path:
        """This session's private temp folder (made on first use, removed by :func:`close_session`)."""
        with self.lock:
            if self.closed:
                raise InputError("This session has ended (the page was closed). Reload the page.")
            if self.workdir is None:
                self.workdir = Path(tempfile.mkdtemp(prefix="simcse-studio-", dir=root))
            return self.workdir


def _mentions_run(key: tuple, run_id: int) -> bool:
    return any(isinstance(part, ModelKey) and part.run_id == run_id for part in key)


def ensure_session(session: Session | None) -> Session:
    """The visitor's session, made on first use."""
    return session if isinstance(session, Session) else Session()


def close_session(session: Session | None) -> None:
    """``gr.State`` delete_callback: stop training, drop models and indexes, remove the session's files."""
    if not isinstance(session, Session):
        return
    session.stop_requested.set()
    with session.lock:
        session.closed = True
        workdir, session.workdir = session.workdir, None
        session.indexes.clear()
        session.projections.clear()
        session.runs.clear()
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)
        logger.info("Removed session folder %s", workdir)
    release_memory()


def release_memory() -> None:
    """Give freed memory back to the operating system (glibc keeps it otherwise; no-op elsewhere)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def session_state(config: StudioConfig) -> gr.State:
    """The per-visitor ``gr.State`` (starts empty; handlers create the :class:`Session`)."""
    return gr.State(None, time_to_live=config.session_ttl_s, delete_callback=close_session)


# --- queues ---------------------------------------------------------------------------------------------
# The machine has 2 CPU cores. Gradio runs at most `concurrency_limit` events of one concurrency_id at once
# and queues the rest. Torch releases the GIL, so the groups run in parallel threads and share the cores.
# - "train": fine-tuning handlers. They wait in the app's own TrainingQueue (at most `training_slots` train at
#   once), which shows each visitor their place and an estimated start, and lets them leave (Stop).
# - "heavy": index building, UMAP maps and STS evaluations (seconds to tens of seconds): two at a time.
# - "encode": similarity and search (well under a second each): four at a time, so the Similarity and
#   Retrieval tabs stay responsive for everyone, even while someone trains.
# Cheap UI-only events (show/hide a component) use queue=False.
# A run trains in a thread of its own at a lower CPU priority (nice 10, simcse_core.runtime.background_iter),
# so while it runs the cores go first to the short interactive requests of other visitors.
TRAIN_NICENESS = 10
TRAIN_QUEUE = {"concurrency_id": "train", "concurrency_limit": StudioConfig.max_training_queue + 2}
HEAVY_QUEUE = {"concurrency_id": "heavy", "concurrency_limit": 2}
# The Inside tab's preset runs wait in the same TrainingQueue as fine-tunes (so one run trains at a time,
# server-wide); this concurrency group only bounds how many preset handlers may wait in it.
PRESET_QUEUE = {"concurrency_id": "preset", "concurrency_limit": StudioConfig.max_training_queue + 2}
ENCODE_QUEUE = {"concurrency_id": "encode", "concurrency_limit": 4}
PACKAGING_S = 15.0  # least time a run holds its slot beyond its budget (measuring, zip, embeddings)


@dataclass(eq=False)
class Ticket:
    """A place in the training queue."""

    budget_s: float  # the run's time budget: the longest it holds a slot (plus PACKAGING_S)
    number: int
    started_at: float | None = None  # monotonic time the run got its slot


class TrainingQueue:
    """First come, first served: at most ``slots`` runs train at once, at most ``max_waiting`` wait.

    Estimated start times assume every run ahead uses its whole time budget plus the longest time recent runs
    held their slot beyond their budget (measuring before and after, packaging), so on a steady server they
    are upper bounds.
    """

    def __init__(self, slots: int, max_waiting: int) -> None:
        self.slots = max(1, slots)
        self.max_waiting = max_waiting
        self._cond = threading.Condition()
        self._running: list[Ticket] = []
        self._waiting: list[Ticket] = []
        self._numbers = itertools.count(1)
        self._overheads: list[float] = []  # seconds recent runs held their slot beyond their budget

    def join(self, budget_s: float) -> Ticket:
        """A ticket at the end of the line (InputError when the line is full)."""
        with self._cond:
            if len(self._waiting) >= self.max_waiting and len(self._running) >= self.slots:
                raise InputError(f"The training queue is full ({self.max_waiting} runs waiting, the limit). Try "
                                 "again in a few minutes; similarity, search and maps work meanwhile.")
            ticket = Ticket(budget_s=float(budget_s), number=next(self._numbers))
            self._waiting.append(ticket)
            self._promote()
            return ticket

    def wait(self, ticket: Ticket, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True once the ticket holds a slot."""
        with self._cond:
            self._cond.wait_for(lambda: ticket.started_at is not None, timeout=timeout)
            return ticket.started_at is not None

    def leave(self, ticket: Ticket) -> None:
        """Give up the place or the slot (idempotent)."""
        with self._cond:
            if ticket in self._running:
                self._running.remove(ticket)
                held = time.monotonic() - ticket.started_at
                if held > ticket.budget_s:  # a run that used its budget: learn what comes on top of it
                    self._overheads = [*self._overheads[-4:], held - ticket.budget_s]
            if ticket in self._waiting:
                self._waiting.remove(ticket)
            self._promote()

    @property
    def overhead_s(self) -> float:
        """Seconds a run holds its slot beyond its budget: the longest of the last five, at least PACKAGING_S."""
        return max([PACKAGING_S, *self._overheads])

    def position(self, ticket: Ticket) -> int:
        """1 for the next to start, 0 when training."""
        with self._cond:
            return 0 if ticket.started_at is not None else self._waiting.index(ticket) + 1

    def estimated_wait(self, ticket: Ticket) -> float:
        """Seconds until ``ticket`` starts, if every run ahead uses its whole budget (0 when started)."""
        with self._cond:
            if ticket.started_at is not None:
                return 0.0
            now, extra = time.monotonic(), self.overhead_s
            free_at = [max(0.0, t.started_at + t.budget_s + extra - now) for t in self._running]
            free_at += [0.0] * (self.slots - len(free_at))
            heapq.heapify(free_at)
            for ahead in self._waiting[: self._waiting.index(ticket)]:
                heapq.heappush(free_at, heapq.heappop(free_at) + ahead.budget_s + extra)
            return free_at[0]

    def counts(self) -> tuple[int, int]:
        """(training, waiting)."""
        with self._cond:
            return len(self._running), len(self._waiting)

    def _promote(self) -> None:
        while self._waiting and len(self._running) < self.slots:
            ticket = self._waiting.pop(0)
            ticket.started_at = time.monotonic()
            self._running.append(ticket)
        self._cond.notify_all()


# --- errors -----------------------------------------------------------------------------------------------
def as_gr_error(err: BaseException, where: str = "a handler") -> gr.Error:
    """The ``gr.Error`` a visitor (browser or API client) sees for ``err``.

    A user error keeps its own message. Anything else is logged with its traceback under a short id, and the
    visitor gets an apology quoting that id.
    """
    if isinstance(err, gr.Error):
        return err
    if isinstance(err, USER_ERRORS):
        logger.info("User error in %s: %s", where, err)
        return gr.Error(str(err), print_exception=False)
    error_id = uuid.uuid4().hex[:8]
    logger.error("Unexpected error %s in %s", error_id, where, exc_info=err)
    return gr.Error(text.APOLOGY + f" (error id {error_id})", print_exception=False)


def report_error(err: BaseException, where: str = "a handler") -> None:
    """Show ``err`` as a warning toast without ending the event (for errors in the middle of a stream)."""
    gr.Warning(as_gr_error(err, where).message)


def guarded(fn: Callable) -> Callable:
    """Wrap a handler (function or generator): every error reaches the visitor as a ``gr.Error``.

    Browser visitors see a toast; API clients (gradio_client) get an exception with the same message.
    """
    where = getattr(fn, "__name__", "a handler")
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs) -> Iterator:
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - the boundary between the app and the visitor
                raise as_gr_error(err, where) from err
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - the boundary between the app and the visitor
            raise as_gr_error(err, where) from err
    return wrapper


# --- validation -------------------------------------------------------------------------------------------
def check_sentence(value: str | None, what: str, max_chars: int) -> str:
    """A stripped, non-empty sentence of at most ``max_chars`` characters, else InputError naming ``what``."""
    if value is not None and not isinstance(value, str):
        raise InputError(f"The {what} must be text.")
    sentence = (value or "").strip()
    if not sentence:
        raise InputError(f"The {what} is empty. Type a sentence first.")
    if len(sentence) > max_chars:
        raise InputError(f"The {what} has {len(sentence):,} characters; the limit is {max_chars:,}. "
                         "Shorten it to a sentence or two.")
    return clean_text(sentence)


def clean_text(value: str) -> str:
    """``value`` with invalid UTF-8 (lone surrogates) replaced, so tokenizers and JSON never choke on it."""
    return value.encode("utf-8", "replace").decode("utf-8")


def check_number(value: object, field_name: str, low: float, high: float, *, whole: bool = False) -> float:
    """A finite number in [low, high] (InputError naming the field otherwise)."""
    import math

    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{field_name}: enter a number between {low:g} and {high:g}.") from None
    if not math.isfinite(number):
        raise InputError(f"{field_name}: {shorten(value)} is not a number; enter one between {low:g} and "
                         f"{high:g}.")
    if not low <= number <= high:
        raise InputError(f"{field_name}: {number:g} is outside the allowed range {low:g} to {high:g}.")
    if whole and number != int(number):
        raise InputError(f"{field_name}: {number:g} is not a whole number.")
    return number


def check_choice(value: object, field_name: str, allowed: list[str] | tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else InputError naming the field."""
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"{field_name}: '{shorten(value)}' is not one of the choices ({', '.join(allowed)}).")
    return value


class Studio:
    """What every handler needs: the settings, the shared base models, the bundled corpus, the training queue.

    One instance per app, shared by all visitors; everything in it is read-only after it is first filled, or
    guarded by its own lock.
    """

    def __init__(self, config: StudioConfig, registry: ModelRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or ModelRegistry(config)
        self.training_queue = TrainingQueue(config.training_slots, config.max_training_queue)
        self._lock = threading.Lock()
        self._bundled: Corpus | None = None
        self._baselines: dict[ModelKey, float] = {}
        self._indexes: dict[IndexKey, Any] = {}  # bundled corpus x base models: identical for every visitor
        self._index_locks: dict[IndexKey, threading.Lock] = {}
        # Training time per example per step, for spacing a run's evaluations (ui.finetune.estimate_steps); updated
        # after every run. Start: the bundled model's on 2 idle cores (bench/live_finetune: 166 steps of 64 in
        # 57 s). The old 0.02 was a loaded machine's: the first run then evaluated 10 times instead of 4.
        self.seconds_per_example = 0.0055

    # --- models ---
    def encoder_for(self, choice: str, pooler: str, session: Session | None):
        """The encoder the picker names: one of the session's runs or a shared base model."""
        pooler = self.check_pooler(pooler)
        record = self.run_for(choice, session)
        if record is not None:
            return record.encoder_with(pooler)
        return self.registry.get(self.config.model_name(choice), pooler)

    def run_for(self, choice: str | None, session: Session | None) -> FineTuneRecord | None:
        """The run a picker choice names; InputError if it names a run this session does not have."""
        if choice != FINETUNED_LABEL and not _RUN_LABEL.match((choice or "").strip()):
            return None
        record = session.run_for(choice) if isinstance(session, Session) else None
        if record is None:
            raise InputError("Model: this session has no such fine-tuned run (none yet, or it was deleted). Run "
                             "one in the Fine-tune tab, or pick the bundled model.")
        return record

    def model_key(self, choice: str, pooler: str, session: Session | None) -> ModelKey:
        """The cache key of the picked model's vectors."""
        pooler = pooler or self.config.default_pooler
        record = self.run_for(choice, session)
        if record is not None:
            return ModelKey(record.base_name, pooler, record.run_id)
        return ModelKey(self.config.model_name(choice), pooler)

    def check_pooler(self, pooler: str | None) -> str:
        from simcse_core.model.pooling import POOLERS

        return check_choice(pooler or self.config.default_pooler, "Pooler", tuple(POOLERS))

    def picker_update(self, session: Session | None, value: str | None = None) -> dict:
        runs = session.run_labels() if isinstance(session, Session) else []
        return gr.update(choices=self.config.model_choices(runs), value=value or self.config.base_label)

    # --- corpus and indexes ---
    def bundled_corpus(self) -> Corpus:
        """``assets/corpus.csv`` (text, topic), read once."""
        with self._lock:
            if self._bundled is None:
                sentences, topics = read_labelled_corpus(BUNDLED_CORPUS_PATH)
                n_topics = len(set(topics or ()))
                self._bundled = Corpus(f"Bundled corpus ({len(sentences):,} sentences, {n_topics} topics)",
                                       sentences, topics, key=0)
            return self._bundled

    def corpus_of(self, session: Session) -> Corpus:
        """The session's corpus; the bundled one until the visitor uploads another."""
        with session.lock:
            if session.corpus is None:
                session.corpus = self.bundled_corpus()
            return session.corpus

    def searchable(self, session: Session, encoder, model_key: ModelKey, progress=None) -> tuple[Corpus, Any]:
        """The session's corpus and its index under ``encoder``, consistent with each other (built once)."""
        from simcse_core.retrieval import SearchIndex

        with session.lock:  # one visitor's requests wait for each other here; other visitors do not
            corpus = self.corpus_of(session)
            key = IndexKey(model_key, corpus.key)
            index = session.indexes.get(key)
            if index is None:
                shared = key.model.is_base and key.corpus == 0

                def build():
                    def report(done: int, total: int) -> None:
                        if progress is not None:
                            progress((done, total), desc=f"Encoding {corpus.name}", unit="sentences")

                    return SearchIndex.build(encoder, corpus.sentences, progress=report)

                index = self._shared_index(key, build) if shared else build()
                session.indexes[key] = index
            return corpus, index

    def _shared_index(self, key: IndexKey, build: Callable[[], Any]):
        with self._lock:
            if key in self._indexes:
                return self._indexes[key]
            lock = self._index_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._indexes:
                    return self._indexes[key]
            index = build()
            with self._lock:
                loaded = set(self.registry.loaded())
                self._indexes = {k: v for k, v in self._indexes.items() if k.model.source in loaded}
                self._indexes[key] = index
            return index

    def get_index(self, session: Session, encoder, model_key: ModelKey, progress=None):
        """The index of the session's corpus under ``encoder``."""
        return self.searchable(session, encoder, model_key, progress)[1]

    def baseline(self, key: ModelKey, encoder) -> float | None:
        """Mean cosine of random bundled-corpus sentences under ``encoder`` (its "unrelated" level)."""
        with self._lock:
            if key in self._baselines:
                return self._baselines[key]
        try:
            sentences = self.bundled_corpus().sentences
        except (OSError, ValueError) as err:
            logger.info("No baseline without the bundled corpus: %s", err)
            return None
        from simcse_core.evaluation.metrics import anisotropy

        rng = np.random.default_rng(0)
        picks = rng.choice(len(sentences), size=min(80, len(sentences)), replace=False)
        sample = [sentences[i] for i in picks]
        if len(sample) < 2:
            return None
        value = anisotropy(encoder.encode(sample))
        if key.is_base:  # runs change and belong to one session; only base models are cached
            with self._lock:
                self._baselines[key] = value
        return value


@dataclass(frozen=True)
class Comparison:
    """Base vs fine-tuned, each side named (the base side is the model and pooler the run started from)."""

    run: FineTuneRecord
    base: Any  # Encoder
    base_label: str
    tuned_label: str


def comparison_for(studio: Studio, choice: str, session: Session | None) -> Comparison | None:
    """What to compare: the picked run (or the latest run when a base model is picked) against its start."""
    if not isinstance(session, Session):
        return None
    record = studio.run_for(choice, session) or session.finetuned
    if record is None:
        return None
    base = studio.registry.get(record.base_name, record.base_pooler)
    return Comparison(run=record, base=base, base_label=f"base: {base.description}",
                      tuned_label=f"{record.label} [{record.encoder.config.pooler}]")


BUNDLED_CORPUS_PATH = Path(__file__).resolve().parents[1] / "assets" / "corpus.csv"


def read_labelled_corpus(path: Path, limits: DataLimits | None = None) -> tuple[list[str], list[str] | None]:
    """Sentences and, if the file has a ``topic`` column, their topics.

    The sentences are validated by :func:`simcse_core.data.load_sentences` (DataError on a bad file); topics
    are read from the same CSV/TSV header when present.
    """
    import csv

    from simcse_core.data import load_sentences

    sentences = load_sentences(path, limits or DataLimits())
    if path.suffix.lower() not in (".csv", ".tsv"):
        return sentences, None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    if "topic" not in header or not ({"text", "sentence"} & set(header)):
        return sentences, None
    text_col = header.index("text") if "text" in header else header.index("sentence")
    topic_of: dict[str, str] = {}
    for row in rows[1:]:
        if len(row) == len(header) and row[text_col].strip():
            topic_of.setdefault(row[text_col].strip(), row[header.index("topic")].strip() or "(none)")
    return sentences, [topic_of.get(s, "(none)") for s in sentences]
