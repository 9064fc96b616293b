"""Replays of finished runs: thirty students pressing Start on the lesson's default settings share one training.

Training is deterministic: the same base model, data, settings and seed give the same weights (tested in
``tests/test_train.py``). So once a run of some settings has trained to its last step on this server, another
request with exactly those settings is not queued again: it is served from this cache — the kept model (shared,
read-only, like a base model) and the run's real measured curve, replayed in a few seconds and labelled as a
replay on screen — and the training slot stays free for students who change a setting. Only runs that made
every step are stored (a time-budgeted or stopped run depends on the machine's speed), and only runs that start
from a catalogue model (a visitor's own run is private to them).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from simcse_core.training.config import TrainConfig

MAX_REPLAYS = 2  # settings kept server-wide (each holds a raw-bert copy of about 20 MB, or a MiniLM one)
REPLAY_S = 6.0  # a replayed curve is drawn over about this many seconds


@dataclass(frozen=True)
class ReplayKey:
    """Everything a run's weights and measured curve depend on."""

    base_name: str  # a catalogue model (never a visitor's run)
    base_pooler: str
    config: TrainConfig
    data_sha256: str  # the training examples, in order
    eval_pairs: int  # the size of the live STS sample the curve was measured on


@dataclass(frozen=True)
class Replay:
    """A finished run, as a later request of the same settings receives it."""

    encoder: Any  # the kept (compacted) Encoder: read-only, shared by every session that replays it
    trained: Any  # a float32 copy, written into each replaying session's download
    events: tuple  # its TrainEvents (without optimizer snapshots), in order
    eval_name: str
    data: str
    trained_at: str  # wall-clock time on the server, for the label


def data_fingerprint(examples) -> str:
    """SHA-256 of the training examples in order (sentences, pairs or triplets)."""
    return hashlib.sha256(json.dumps(list(examples), ensure_ascii=False).encode("utf-8")).hexdigest()


class ReplayCache:
    """The last :data:`MAX_REPLAYS` finished runs by :class:`ReplayKey` (least recently used dropped first)."""

    def __init__(self, size: int = MAX_REPLAYS) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[ReplayKey, Replay] = OrderedDict()

    def get(self, key: ReplayKey | None) -> Replay | None:
        if key is None:
            return None
        with self._lock:
            replay = self._entries.get(key)
            if replay is not None:
                self._entries.move_to_end(key)
            return replay

    def put(self, key: ReplayKey, replay: Replay) -> None:
        with self._lock:
            self._entries[key] = replay
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def now_label() -> str:
    return time.strftime("%H:%M")
