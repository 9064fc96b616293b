"""The app-wide settings and limits (:class:`StudioConfig`), fixed at start-up, and the names of the models a visitor
can pick: what every part of the server reads, so this module imports no other part of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from simcse_core.data import DataLimits
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
from ui.serving.errors import InputError, shorten

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
    map_worker: bool = True  # project maps in a child process (simcse_core.worker), away from requests' GIL
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
    # Runs training or waiting per person (a browser: all its tabs together; ui.serving.people). One per session too.
    max_runs_per_person: int = 2
    # Runs training or waiting from one network address (all its people together): a backstop against a script
    # that makes new people, large enough for a class behind one NAT (--runs-per-address).
    max_runs_per_address: int = 10
    # Reverse proxies in front of the server that append to X-Forwarded-For (--trusted-proxy [N]): the address is
    # the N-th entry from the right. 0: no proxy header is believed (ui.serving.server.client_address).
    trusted_proxy: int = 0
    # Fine-tuned runs kept in memory by all sessions together (about 50-150 MB each); beyond it the oldest run of
    # an idle session is dropped, and its owner told (ui.serving.people).
    max_kept_runs: int = 40
    # A closed or reloaded tab's kept runs wait this long for the same browser to open the page again (they come
    # back in its new tab), then go (ui.serving.people.People.park).
    park_runs_s: float = 600.0
    # Uploads (gradio's /upload: no session, no person yet) count against their address: at most this many bytes in
    # any upload_window_s (HTTP 429 beyond, naming the limit); enough for a class's training files behind one NAT,
    # not for a script filling the disk (ui.serving.uploads.UploadQuota).
    upload_bytes_per_address: int = 100_000_000
    upload_window_s: float = 600.0
    # An upload is deleted this long after it arrived (gradio's own cache age is session_ttl_s); upload it again
    # to use it later (ui.serving.uploads.upload_sweeper).
    upload_ttl_s: float = 900.0
    # A /call event whose results (GET /call/<api>/<event_id>) nobody opens this soon after its POST is cancelled:
    # its queue place or training slot goes to the next in line (ui.serving.calls.UnreadCallGuard).
    call_read_within_s: float = 5.0
    # Training settings this app narrows from the core's ranges (simcse_core.training.config.setting_spec) to what
    # a shared 2-core server trains in minutes: (low, high), None keeping the core's. max_steps and
    # max_time_budget_s above cap steps and time_budget_s.
    setting_caps: tuple[tuple[str, float | None, float | None], ...] = (
        ("batch_size", None, 256), ("max_length", 8, 128), ("time_budget_s", 10.0, None))

    def setting_range(self, name: str) -> tuple[float, float]:
        """The values a visitor may give the training setting ``name``: the core's range, narrowed by this app."""
        from simcse_core.training.config import setting_spec

        spec = setting_spec(name)
        caps = {setting: (low, high) for setting, low, high in self.setting_caps}
        caps["steps"] = (None, self.max_steps)
        caps["time_budget_s"] = (caps.get("time_budget_s", (None, None))[0], self.max_time_budget_s)
        low_cap, high_cap = caps.get(name, (None, None))
        low = spec.low if low_cap is None else max(spec.low, low_cap)
        high = spec.high if high_cap is None else min(spec.high, high_cap)
        return low, high

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


def looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().is_dir()


def canonical_model_name(name: str) -> str:
    """One spelling per model: a packaged or shipped short name, a resolved folder, or a hub id (the cache key)."""
    name = name.strip()
    if name in PACKAGED_MODELS or name in SHIPPED_MODELS:
        return name
    if looks_like_path(name):
        return str(Path(name).expanduser().resolve())
    return name
