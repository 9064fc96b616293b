"""The app-wide settings (:class:`StudioConfig`) and the :class:`Studio` every handler is given: settings,
shared base models, the bundled corpus and its indexes, the training queue.

Gradio shares anything made at build time between all visitors, so only read-only things (and caches of
them) live here; everything a visitor makes lives in their :class:`ui.session.Session`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from simcse_core.data import DataLimits, load_labelled_sentences
from simcse_core.evaluation.sets import QUICK_EVAL_PAIRS
from simcse_core.limits import LIMITS, InputLimits
from simcse_core.model.catalogue import (
    DEFAULT_MODEL,
    HUB_SUGGESTIONS,
    PACKAGED_MODELS,
    PREPARED_MODEL,
    RAW_MODEL,
    SHIPPED_MODELS,
    ModelNotAvailableError,
    hub_offline,
)
from simcse_core.paths import ASSETS_DIR
from simcse_core.teaching import lessons
from ui.errors import InputError, check_choice, shorten
from ui.people import People
from ui.registry import ModelRegistry, canonical_model_name, looks_like_path
from ui.replays import ReplayCache
from ui.session import FINETUNED_LABEL, RUN_LABEL, Corpus, FineTuneRecord, IndexKey, ModelKey, Session
from ui.training_queue import QueueGroups, TrainingQueue

logger = logging.getLogger(__name__)

BUNDLED_LABEL = "Bundled: all-MiniLM-L6-v2"
RAW_LABEL = f"Raw: {RAW_MODEL} (masked LM only, where the lessons start)"
PREPARED_LABEL = f"Prepared: {PREPARED_MODEL} (the lesson's recipe from {RAW_MODEL}, trained longer)"
# Where a lesson panel (Inside SimCSE) or a fine-tune starts: the raw model, or the model picked at the top.
START_RAW, START_PICKED = "raw", "picked"
START_CHOICES = [(f"{RAW_MODEL}, a raw language model (where the lessons start)", START_RAW),
                 ("the model picked at the top", START_PICKED)]
BUNDLED_CORPUS_PATH = ASSETS_DIR / "corpus.csv"


@dataclass(frozen=True)
class StudioConfig:
    """App-wide settings and limits, fixed at start-up (the README's "Limits" table lists them)."""

    model: str = DEFAULT_MODEL  # the base model offered first (a short name, or a folder/hub id the operator gave)
    device: str = "auto"  # torch device for every encoder
    precision: str = "auto"  # "auto" (bf16 where fast: see simcse_core.model.encoder.EncoderConfig), "fp32" or "bf16"
    default_pooler: str = "mean"  # picker default (all-MiniLM-L6-v2 was trained with mean pooling)
    limits: InputLimits = LIMITS  # what a visitor may send: text, files, request bodies, disk (one table)
    max_map_points: int = 2_000  # the embedding map subsamples bigger corpora
    session_ttl_s: float = 3600  # an API session's data are dropped this long after its last request
    live_eval_pairs: int = QUICK_EVAL_PAIRS  # STS pairs scored during training (a fixed sample: quick)
    temp_root: str | None = None  # parent of the session folders (None: the system temp dir)
    allow_local_models: bool = False  # operator flag --allow-local-models: the picker may load server folders
    hub_models: tuple[str, ...] = HUB_SUGGESTIONS  # hub ids the picker may load when online (an allow-list)
    max_models: int = 3  # base models kept in memory at once (least recently used dropped first)
    max_runs: int = 3  # fine-tuned runs kept per session (the oldest is dropped, with a notice)
    max_steps: int = 2_000  # fine-tuning steps per run
    max_time_budget_s: float = 300.0  # wall-clock seconds per run (the queue's estimates rely on it)
    # Runs training at once, server-wide: one, because on 2 cores two runs each get half the machine and a
    # time-budgeted run then makes half its steps (README, "Training queue").
    training_slots: int = 1
    max_training_queue: int = 10  # runs waiting for a slot, server-wide; more are refused with a message
    # Runs training or waiting per person (a browser: all its tabs together; ui.people). One per session too.
    max_runs_per_person: int = 2
    # Runs training or waiting from one network address (all its people together): a backstop against a script
    # that makes new people, large enough for a class behind one NAT (--runs-per-address).
    max_runs_per_address: int = 10
    # Reverse proxies in front of the server that append to X-Forwarded-For (--trusted-proxy [N]): the address is
    # the N-th entry from the right. 0: no proxy header is believed (ui.server.client_address).
    trusted_proxy: int = 0
    # Fine-tuned runs kept in memory by all sessions together (about 50-150 MB each); beyond it the oldest run of
    # an idle session is dropped, and its owner told (ui.people).
    max_kept_runs: int = 40
    # Uploads (gradio's /upload: no session, no person yet) count against their address: at most this many bytes in
    # any upload_window_s (HTTP 429 beyond, naming the limit); enough for a class's training files behind one NAT,
    # not for a script filling the disk (ui.server.UploadQuota).
    upload_bytes_per_address: int = 100_000_000
    upload_window_s: float = 600.0
    # An upload is deleted this long after it arrived (gradio's own cache age is session_ttl_s); upload it again
    # to use it later (ui.server.upload_sweeper).
    upload_ttl_s: float = 900.0
    # A /call event whose results (GET /call/<api>/<event_id>) nobody opens this soon after its POST is cancelled:
    # its queue place or training slot goes to the next in line (ui.server.UnreadCallGuard).
    call_read_within_s: float = 5.0

    @property
    def base_label(self) -> str:
        """The picker's label for the base model."""
        if self.model == DEFAULT_MODEL:
            return BUNDLED_LABEL
        if self.model == RAW_MODEL:
            return RAW_LABEL
        return f"Local: {Path(self.model).name or self.model}"

    @property
    def max_sentence_chars(self) -> int:
        """Longest sentence a visitor may type or upload (browser and server)."""
        return self.limits.sentence_chars

    @property
    def max_heatmap_sentences(self) -> int:
        return self.limits.list_sentences

    @property
    def max_list_chars(self) -> int:
        """Longest heatmap list (characters): every sentence at its limit, one per line."""
        return self.limits.list_sentences * (self.limits.sentence_chars + 1)

    @property
    def upload_limits(self) -> DataLimits:
        """The file readers' caps on an upload (the same bytes gradio's max_file_size refuses above)."""
        return DataLimits(max_rows=self.limits.file_rows, max_chars=self.limits.sentence_chars,
                          max_bytes=self.limits.file_bytes)

    def hub_choices(self) -> list[str]:
        """Hub ids the picker offers: the allow-list online, none offline (they could not load)."""
        return [] if hub_offline() else list(self.hub_models)

    def picker_note(self) -> str:
        """Why the picker lists what it lists (shown under it)."""
        if hub_offline():
            return " Hub models are not listed: this server is offline, so they cannot load."
        return ""

    def model_choices(self, runs: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Picker choices: the base model, the raw model the lessons start from, the prepared run (the lesson's recipe
        trained longer), the session's runs, and hub ids when online."""
        return list(dict.fromkeys([self.base_label, RAW_LABEL, PREPARED_LABEL, *runs, *self.hub_choices()]))

    def check_model_text(self, choice: object) -> str:
        """The picker's value as stripped text (InputError naming the Model field if it is not text)."""
        if choice is not None and not isinstance(choice, str):
            raise InputError(f"Model: '{shorten(choice)}' is not one of this app's models. Choose one from the list.")
        choice = (choice or "").strip()
        if len(choice) > self.limits.name_chars:
            raise InputError(f"Model: '{shorten(choice)}' is not one of this app's models (a name has at most "
                             f"{self.limits.name_chars} characters). Choose one from the list.")
        return choice

    def model_name(self, choice: str | None) -> str:
        """The canonical name of a base model the picker may load (InputError for anything else).

        Only the operator's base model, packaged short names and (online) allow-listed hub ids load; a server
        folder loads only with ``allow_local_models``. The message never says whether a folder exists.
        """
        choice = self.check_model_text(choice)
        if choice in ("", self.base_label):
            return canonical_model_name(self.model)
        if choice == RAW_LABEL:
            return RAW_MODEL
        if choice == PREPARED_LABEL:
            return PREPARED_MODEL
        if choice in PACKAGED_MODELS or choice in SHIPPED_MODELS:
            return choice
        if choice in self.hub_models:
            if hub_offline():
                raise ModelNotAvailableError(
                    f"'{choice}' is a Hugging Face hub model, and this server works offline: it cannot load. "
                    "Use the bundled model.")
            return choice
        if self.allow_local_models and looks_like_path(choice):
            return canonical_model_name(choice)
        raise InputError(f"Model: '{shorten(choice)}' is not one of this app's models. Choose one from the list.")


class Studio:
    """What every handler needs: the settings, the shared base models, the bundled corpus, the training queue, and
    what all visitors together hold (:class:`ui.people.People`).

    One instance per app, shared by all visitors; everything in it is read-only after it is first filled, or
    guarded by its own lock.
    """

    def __init__(self, config: StudioConfig, registry: ModelRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or ModelRegistry(config)
        self.training_queue = TrainingQueue(config.training_slots, config.max_training_queue,
                                            config.max_runs_per_address)
        self.queues = QueueGroups.of(config.training_slots, config.max_training_queue)
        self.people = People(config.max_runs_per_person, config.max_kept_runs)  # every session counts in it
        self.replays = ReplayCache()  # finished runs served again to identical requests (ui.replays)
        self._lock = threading.Lock()
        self._bundled: Corpus | None = None
        self._baselines: dict[ModelKey, float] = {}
        self._indexes: dict[IndexKey, Any] = {}  # bundled corpus x base models: identical for every visitor
        self._index_locks: dict[IndexKey, threading.Lock] = {}
        # Training time per example per step, for spacing a run's evaluations (ui.runs.expected_steps); updated
        # after every run. Start: the bundled model's on 2 idle cores (bench/live_finetune: 166 steps of 64 in
        # 57 s).
        self.seconds_per_example = 0.0055

    # --- models ---
    def encoder_for(self, choice: str, pooler: str, session: Session):
        """The encoder the picker names: one of the session's runs or a shared base model."""
        pooler = self.check_pooler(pooler)
        record = self.run_for(choice, session)
        if record is not None:
            return record.encoder_with(pooler)
        return self.registry.get(self.config.model_name(choice), pooler)

    def run_for(self, choice: str | None, session: Session) -> FineTuneRecord | None:
        """The run a picker choice names; InputError if it names a run this session does not have."""
        choice = self.config.check_model_text(choice)
        if choice != FINETUNED_LABEL and not RUN_LABEL.match(choice):
            return None
        record = session.run_for(choice)
        if record is None:
            raise InputError("Model: this session has no such fine-tuned run (none yet, or it was deleted). Run "
                             "one in the Fine-tune tab, or pick the bundled model.")
        return record

    def model_key(self, choice: str, pooler: str, session: Session) -> ModelKey:
        """The cache key of the picked model's vectors."""
        pooler = pooler or self.config.default_pooler
        record = self.run_for(choice, session)
        if record is not None:
            return ModelKey(record.base_name, pooler, record.run_id)
        return ModelKey(self.config.model_name(choice), pooler)

    def base_encoder(self, pooler: str | None = None):
        """The operator's base model (shared, read-only) with ``pooler`` (default: the picker's default)."""
        return self.registry.get(self.config.model_name(self.config.base_label), pooler or self.config.default_pooler)

    def raw_encoder(self, pooler: str = lessons.START_POOLER):
        """The raw model the lessons start from (shared, read-only), by default through its raw [CLS] vector."""
        return self.registry.get(lessons.START_MODEL, pooler)

    def start_encoder(self, start: str | None, choice: str, pooler: str, session: Session):
        """The encoder a lesson panel starts from: the raw model (``start`` "raw", the default) through
        :data:`simcse_core.teaching.lessons.START_POOLER`, or the model and pooler picked at the top."""
        if check_start(start) == START_RAW:
            return self.raw_encoder()
        return self.encoder_for(choice, pooler, session)

    def check_pooler(self, pooler: str | None) -> str:
        from simcse_core.model.pooling import POOLERS

        return check_choice(pooler or self.config.default_pooler, "Pooler", tuple(POOLERS))

    def picker_update(self, session: Session, value: str | None = None) -> dict:
        return gr.update(choices=self.config.model_choices(session.run_labels()),
                         value=value or self.config.base_label)

    # --- corpus and indexes ---
    def bundled_corpus(self) -> Corpus:
        """``assets/corpus.csv`` (text, topic), read once."""
        with self._lock:
            if self._bundled is None:
                sentences, topics = load_labelled_sentences(BUNDLED_CORPUS_PATH, DataLimits())
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


def check_start(start: str | None) -> str:
    """A "Start from" choice (None: the raw model, for API calls made before the choice existed)."""
    return check_choice(start or START_RAW, "Start from", [value for _, value in START_CHOICES])


@dataclass(frozen=True)
class Comparison:
    """Base vs fine-tuned, each side named (the base side is the model and pooler the run started from)."""

    run: FineTuneRecord
    base: Any  # Encoder
    base_label: str
    tuned_label: str


def comparison_for(studio: Studio, choice: str, session: Session) -> Comparison | None:
    """What to compare: the picked run (or the latest run when a base model is picked) against its start."""
    record = studio.run_for(choice, session) or session.finetuned
    if record is None:
        return None
    base = studio.registry.get(record.base_name, record.base_pooler)
    return Comparison(run=record, base=base, base_label=f"base: {base.description}",
                      tuned_label=f"{record.label} [{record.encoder.config.pooler}]")
