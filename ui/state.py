"""Shared and per-visitor state: the read-only base-model cache, each session's data, and error handling.

Gradio shares anything created at build time between all visitors, so only read-only things live there (the
:class:`ModelRegistry` of base models). Everything a visitor makes — their corpus, indexes, fine-tuned model,
files — lives in a :class:`Session` held by a ``gr.State`` whose ``delete_callback`` removes its temp folder.
"""

from __future__ import annotations

import functools
import inspect
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from simcse_core.data import DataError
from simcse_core.evaluation import QUICK_EVAL_PAIRS, EvaluationDataUnavailable
from simcse_core.models import DEFAULT_MODEL, HUB_SUGGESTIONS, ModelNotAvailableError, hub_offline
from ui import text

logger = logging.getLogger(__name__)

FINETUNED_LABEL = "Fine-tuned (this session)"
BUNDLED_LABEL = "Bundled: all-MiniLM-L6-v2"


@dataclass(frozen=True)
class StudioConfig:
    """App-wide settings, fixed at start-up."""

    model: str = DEFAULT_MODEL  # the base model offered first (a short name, folder or hub id)
    device: str = "auto"  # torch device for every encoder
    precision: str = "auto"  # "auto" (bf16 autocast where fast), "fp32" or "bf16"
    default_pooler: str = "mean"  # picker default (all-MiniLM-L6-v2 was trained with mean pooling)
    max_sentence_chars: int = 1_000  # longest sentence a user may type
    max_heatmap_sentences: int = 40  # longest sentence list for the heatmap
    max_map_points: int = 2_000  # the embedding map subsamples bigger corpora
    session_ttl_s: float = 6 * 3600  # a session's models and files are dropped this long after last change
    live_eval_pairs: int = QUICK_EVAL_PAIRS  # STS pairs scored during training (a fixed sample: quick)
    temp_root: str | None = None  # parent of the session folders (None: the system temp dir)

    @property
    def base_label(self) -> str:
        """The picker's label for the base model."""
        if self.model == DEFAULT_MODEL:
            return BUNDLED_LABEL
        return f"Local: {Path(self.model).name or self.model}"

    def model_choices(self, has_finetuned: bool = False) -> list[str]:
        """Picker choices: the base model, the session's fine-tuned model, and hub ids when online."""
        choices = [self.base_label]
        if has_finetuned:
            choices.append(FINETUNED_LABEL)
        if not hub_offline():
            choices.extend(HUB_SUGGESTIONS)
        return choices

    def model_name(self, choice: str) -> str:
        """What :func:`simcse_core.load_encoder` should load for a picker choice (not the fine-tuned one)."""
        choice = (choice or "").strip()
        return self.model if choice in ("", self.base_label) else choice


class ModelRegistry:
    """Base encoders, loaded once and shared read-only by every session, keyed by (model, pooler).

    Poolers of one model share its transformer weights (:meth:`Encoder.with_pooler`), so each model's weights
    are in memory once. Nobody trains these encoders: training works on ``Encoder.copy()``.
    """

    def __init__(self, config: StudioConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._encoders: dict[tuple[str, str], Any] = {}

    def get(self, name: str, pooler: str):
        """The shared encoder for ``name`` with ``pooler`` (raises ModelNotAvailableError, ValueError)."""
        from simcse_core.encoder import load_encoder

        key = (name, pooler)
        with self._lock:
            if key in self._encoders:
                return self._encoders[key]
            sibling = next((enc for (n, _), enc in self._encoders.items() if n == name), None)
            if sibling is not None:
                encoder = sibling.with_pooler(pooler)
            else:
                encoder = load_encoder(name, pooler=pooler, device=self.config.device,
                                       precision=self.config.precision)
            encoder.eval()
            self._encoders[key] = encoder
            return encoder

    def is_loaded(self, name: str) -> bool:
        """Whether some pooler of ``name`` is already in memory."""
        with self._lock:
            return any(n == name for n, _ in self._encoders)


@dataclass
class FineTuneRecord:
    """What one fine-tuning run produced (kept in the session)."""

    run_id: int  # increases with every run in this session
    encoder: Any  # the fine-tuned Encoder (private to the session)
    base_name: str  # the base model it started from (load_encoder name)
    base_pooler: str  # the base pooler to compare against (the test-time equivalent of the trained one)
    summary: str  # one line for tables: data, steps, seconds
    spearman_before: float | None = None
    spearman_after: float | None = None
    eval_name: str = ""
    model_zip: str | None = None  # path of the zip to download
    embeddings_npy: str | None = None  # path of the corpus embeddings to download


@dataclass
class Corpus:
    """A searchable list of sentences with optional topic labels."""

    name: str  # shown to the user, e.g. "Bundled corpus (1,200 sentences)"
    sentences: list[str]
    topics: list[str] | None = None  # one label per sentence, or None
    key: int = 0  # changes whenever the corpus changes (cache key)


@dataclass
class Session:
    """One visitor's data; lives in a ``gr.State`` and is mutated by handlers in place."""

    corpus: Corpus | None = None
    finetuned: FineTuneRecord | None = None
    indexes: dict[tuple, Any] = field(default_factory=dict)  # (model key, corpus key) -> SearchIndex
    projections: dict[tuple, tuple] = field(default_factory=dict)  # map cache: (keys) -> 2-D points
    runs: int = 0  # fine-tuning runs started
    corpus_count: int = 0  # corpora uploaded (each gets a new Corpus.key)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    training_idle: threading.Event = field(default_factory=threading.Event)
    finalize_lock: threading.Lock = field(default_factory=threading.Lock)
    workdir: Path | None = None

    def __post_init__(self) -> None:
        self.training_idle.set()

    def folder(self, root: str | None = None) -> Path:
        """This session's private temp folder (made on first use, removed by :func:`close_session`)."""
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="simcse-studio-", dir=root))
        return self.workdir


def close_session(session: Session | None) -> None:
    """``gr.State`` delete_callback: stop training and remove the session's files."""
    if session is None:
        return
    session.stop_requested.set()
    if session.workdir is not None:
        shutil.rmtree(session.workdir, ignore_errors=True)
        logger.info("Removed session folder %s", session.workdir)
    session.indexes.clear()
    session.projections.clear()
    session.finetuned = None


def session_state(config: StudioConfig) -> gr.State:
    """The per-visitor ``gr.State`` (starts empty; handlers create the :class:`Session`)."""
    return gr.State(None, time_to_live=config.session_ttl_s, delete_callback=close_session)


# --- queues ---------------------------------------------------------------------------------------------
# The machine has 2 CPU cores. Gradio runs at most `concurrency_limit` events of one concurrency_id at once
# and queues the rest (each visitor sees their place in line). Torch releases the GIL, so the groups run in
# parallel threads and share the cores: a training run slows other work down a little but never blocks it.
# - "train": a fine-tuning run keeps both cores busy for about a minute. One run at a time, server-wide: two
#   would each take twice as long and both miss their time budget. Others wait in line.
# - "heavy": index building, UMAP maps and STS evaluations (seconds to tens of seconds): two at a time.
# - "encode": similarity and search (well under a second each): four at a time, so the Similarity and
#   Retrieval tabs stay responsive for everyone, even while someone trains.
# Cheap UI-only events (show/hide a component) use queue=False.
# A run trains in a thread of its own at a lower CPU priority (nice 10, simcse_core.runtime.background_iter),
# so while it runs the cores go first to the short interactive requests of other visitors.
TRAIN_NICENESS = 10
TRAIN_QUEUE = {"concurrency_id": "train", "concurrency_limit": 1}
HEAVY_QUEUE = {"concurrency_id": "heavy", "concurrency_limit": 2}
ENCODE_QUEUE = {"concurrency_id": "encode", "concurrency_limit": 4}


# --- errors -----------------------------------------------------------------------------------------------
# Errors whose message is written for the user: shown as a warning toast, never as a traceback.
USER_ERRORS = (DataError, ModelNotAvailableError, EvaluationDataUnavailable, ValueError)


def report_error(err: BaseException) -> None:
    """Show ``err`` as a toast: its own message if it is a known user error, else a short apology."""
    if isinstance(err, USER_ERRORS):
        logger.info("User error: %s", err)
        gr.Warning(str(err))
    else:
        logger.exception("Unexpected error in a handler")
        gr.Warning(text.APOLOGY)


def guarded(fn: Callable) -> Callable:
    """Wrap a handler (function or generator) so that it never raises to the user.

    On an error it shows a toast (:func:`report_error`) and leaves every output unchanged (``gr.skip()``).
    """
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs) -> Iterator:
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - the boundary between the app and the user
                report_error(err)
                yield gr.skip()
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - the boundary between the app and the user
            report_error(err)
            return gr.skip()
    return wrapper


def check_sentence(value: str | None, what: str, max_chars: int) -> str:
    """A stripped, non-empty sentence of at most ``max_chars`` characters, else ValueError for the user."""
    sentence = (value or "").strip()
    if not sentence:
        raise ValueError(f"The {what} is empty. Type a sentence first.")
    if len(sentence) > max_chars:
        raise ValueError(f"The {what} has {len(sentence):,} characters; the limit is {max_chars:,}. "
                         "Shorten it to a sentence or two.")
    return sentence


class Studio:
    """What every handler needs: the app settings, the shared base models and the bundled corpus.

    One instance per app, shared by all visitors; everything in it is read-only after it is first filled.
    """

    def __init__(self, config: StudioConfig, registry: ModelRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or ModelRegistry(config)
        self._lock = threading.Lock()
        self._bundled: Corpus | None = None
        self._baselines: dict[tuple, float] = {}
        self._indexes: dict[tuple, Any] = {}  # base model x bundled corpus: identical for every visitor
        self.seconds_per_example = 0.02  # training time per example per step, updated after every run

    def shared_index(self, key: tuple):
        """An index of the bundled corpus under a base model, if one was built by any visitor."""
        with self._lock:
            return self._indexes.get(key)

    def share_index(self, key: tuple, index) -> None:
        """Keep an index for every visitor when it is of the bundled corpus under a base model."""
        model_key, corpus_key = key
        if model_key[0] == "base" and corpus_key == 0:
            with self._lock:
                self._indexes.setdefault(key, index)

    def encoder_for(self, choice: str, pooler: str, session: Session | None):
        """The encoder the picker names: the session's fine-tuned model or a shared base model."""
        if choice == FINETUNED_LABEL:
            if session is None or session.finetuned is None:
                raise ValueError("There is no fine-tuned model in this session yet. Run one in the Fine-tune "
                                 "tab, or pick the bundled model.")
            encoder = session.finetuned.encoder
            return encoder if not pooler or pooler == encoder.config.pooler else encoder.with_pooler(pooler)
        return self.registry.get(self.config.model_name(choice), pooler or self.config.default_pooler)

    def model_key(self, choice: str, pooler: str, session: Session | None) -> tuple:
        """A cache key for vectors and indexes of the picked model."""
        if choice == FINETUNED_LABEL and session is not None and session.finetuned is not None:
            return ("finetuned", session.finetuned.run_id, pooler)
        return ("base", self.config.model_name(choice), pooler or self.config.default_pooler)

    def bundled_corpus(self) -> Corpus:
        """``assets/corpus.csv`` (text, topic), read once."""
        with self._lock:
            if self._bundled is None:
                sentences, topics = read_labelled_corpus(BUNDLED_CORPUS_PATH)
                n_topics = len(set(topics or ()))
                self._bundled = Corpus(f"Bundled corpus ({len(sentences):,} sentences, {n_topics} topics)",
                                       sentences, topics, key=0)
            return self._bundled

    def baseline(self, key: tuple, encoder) -> float | None:
        """Mean cosine of random bundled-corpus sentences under ``encoder`` (its "unrelated" level)."""
        with self._lock:
            if key in self._baselines:
                return self._baselines[key]
        try:
            sentences = self.bundled_corpus().sentences
        except (OSError, ValueError) as err:
            logger.info("No baseline without the bundled corpus: %s", err)
            return None
        from simcse_core.metrics import anisotropy

        rng = np.random.default_rng(0)
        picks = rng.choice(len(sentences), size=min(80, len(sentences)), replace=False)
        sample = [sentences[i] for i in picks]
        if len(sample) < 2:
            return None
        value = anisotropy(encoder.encode(sample))
        if key[0] == "base":  # fine-tuned models change between runs; only base models are cached
            with self._lock:
                self._baselines[key] = value
        return value


BUNDLED_CORPUS_PATH = Path(__file__).resolve().parents[1] / "assets" / "corpus.csv"


def read_labelled_corpus(path: Path) -> tuple[list[str], list[str] | None]:
    """Sentences and, if the file has a ``topic`` column, their topics.

    The sentences are validated by :func:`simcse_core.data.load_sentences` (DataError on a bad file); topics
    are read from the same CSV/TSV header when present.
    """
    import csv

    from simcse_core.data import load_sentences

    sentences = load_sentences(path)
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
