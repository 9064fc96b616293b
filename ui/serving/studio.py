"""The :class:`Studio` every handler is given: the app-wide settings (:class:`ui.serving.config.StudioConfig`),
shared base models, the bundled corpus and its indexes, the training queue.

Gradio shares anything made at build time between all visitors, so only read-only things (and caches of
them) live here; everything a visitor makes lives in their :class:`ui.serving.session.Session`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from simcse_core.data import DataLimits, load_labelled_sentences
from simcse_core.teaching import lessons, projection
from simcse_core.worker import Worker
from ui.serving.config import (
    BUNDLED_CORPUS_PATH,
    START_CHOICES,
    START_RAW,
    StudioConfig,
)
from ui.serving.errors import InputError, check_choice
from ui.serving.people import People
from ui.serving.registry import ModelRegistry
from ui.serving.replays import ReplayCache
from ui.serving.session import FINETUNED_LABEL, RUN_LABEL, Corpus, FineTuneRecord, IndexKey, ModelKey, Session
from ui.serving.training_queue import QueueGroups, TrainingQueue

logger = logging.getLogger(__name__)

# The map worker's CPU priority below the server's: its seconds of UMAP go after every visitor's request.
MAP_NICENESS = 10

class Studio:
    """What every handler needs: the settings, the shared base models, the bundled corpus, the training queue, and
    what all visitors together hold (:class:`ui.serving.people.People`).

    One instance per app, shared by all visitors; everything in it is read-only after it is first filled, or
    guarded by its own lock.
    """

    def __init__(self, config: StudioConfig, registry: ModelRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or ModelRegistry(config)
        self.training_queue = TrainingQueue(config.training_slots, config.max_training_queue,
                                            config.max_runs_per_address)
        self.queues = QueueGroups.of(config.training_slots, config.max_training_queue)
        # every session counts in it
        self.people = People(config.max_runs_per_person, config.max_kept_runs, config.park_runs_s)
        self.replays = ReplayCache()  # finished runs served again to identical requests (ui.serving.replays)
        self.map_worker = Worker(MAP_NICENESS, warm_up=projection.warm_up) if config.map_worker else None
        self._lock = threading.Lock()
        self._bundled: Corpus | None = None
        self._baselines: dict[ModelKey, float] = {}
        # indexes and maps of the bundled corpus under base models: identical for every visitor
        self._indexes: dict[Any, Any] = {}
        self._index_locks: dict[Any, threading.Lock] = {}
        # Training time per example per step, for spacing a run's evaluations (ui.serving.runs.expected_steps); updated
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

                index = self._shared(key, build) if shared else build()
                session.indexes[key] = index
            return corpus, index

    def _shared(self, key: tuple, build: Callable[[], Any]):
        """The thing made by ``build`` under ``key`` (a base model's index or map of the bundled corpus: the same
        for every visitor), made once server-wide; kept while its model stays loaded."""
        with self._lock:
            if key in self._indexes:
                return self._indexes[key]
            lock = self._index_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._indexes:
                    return self._indexes[key]
            made = build()
            with self._lock:
                loaded = set(self.registry.loaded())
                self._indexes = {k: v for k, v in self._indexes.items() if _model_of(k).source in loaded}
                self._indexes[key] = made
            return made

    def projection(self, session: Session, key: tuple, make: Callable[[], Any]) -> Any:
        """The map drawing under ``key`` (model keys..., corpus key), made once by ``make`` (UMAP: seconds): once
        server-wide for base models on the bundled corpus, else once per session."""
        if key[-1] == 0 and all(isinstance(part, ModelKey) and part.is_base for part in key[:-1]):
            return self._shared(("map", *key), make)
        return session.projection(key, make)

    def project(self, *vectors: np.ndarray) -> tuple[np.ndarray, ...]:
        """UMAP points of one set of vectors, or of before and after in one shared space (in the map worker)."""
        fn = projection.project if len(vectors) == 1 else projection.project_pair
        points = self.map_worker.call(fn, *vectors) if self.map_worker is not None else fn(*vectors)
        return (points,) if len(vectors) == 1 else tuple(points)

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


def _model_of(key) -> ModelKey:
    """The (first) model of a shared cache's key: an IndexKey's, or a map key's ("map", ModelKey, ..., corpus)."""
    return key.model if isinstance(key, IndexKey) else key[1]
