"""Everyone on this server at once: how many runs each person has training or waiting, and how many runs all the
sessions keep.

A person is a browser: the random id it keeps (``gr.BrowserState``, see :func:`ui.serving.session.session_state`) is the
same in all its tabs and across reloads, and different for each student behind a school's shared address. So the
run limit counts per person, and the per-address limit (``ui.serving.training_queue``) is only a larger
backstop against a script that forgets its id on purpose. An API client without a browser is a person per session.

Kept runs hold memory (a model each) for as long as their tab stays open; the server keeps at most
``max_kept_runs`` of them, all sessions together, and drops the oldest run of an idle session first, with a
message its owner sees at their next event.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ui.serving.errors import InputError


class Keeper(Protocol):
    """What the cap on kept runs reads of a session (ui.serving.session.Session): its runs, and whether it trains."""

    lock: Any
    training_idle: threading.Event
    runs: dict[int, Any]  # run id -> a kept run (its label, run_id and kept_at)

    def delete_run(self, run_id: int) -> Any: ...

    def notify(self, message: str) -> None: ...

logger = logging.getLogger(__name__)

PERSON_ID_CHARS = 32  # a person id: 128 random bits, as hex


def new_person_id() -> str:
    """A fresh person id (unguessable: nobody can take another student's place)."""
    return secrets.token_hex(PERSON_ID_CHARS // 2)


def valid_person_id(value: object) -> str | None:
    """``value`` if it is a person id this server could have made, else None (a browser's stored value is the
    client's to change)."""
    if isinstance(value, str) and len(value) == PERSON_ID_CHARS and all(c in "0123456789abcdef" for c in value):
        return value
    return None


@dataclass
class Parked:
    """A closed tab's kept runs, held for its person while they reload (``People.park``)."""

    runs: dict[int, Any]  # run id -> FineTuneRecord
    run_count: int  # the session's run counter (new runs get later ids)
    workdir: Path | None  # the session's folder: the runs' downloads
    release: Callable[[Parked], None]  # what frees it if nobody claims it (its folder and memory)
    until: float  # time.monotonic() after which it is released


class People:
    """Server-wide counts shared by every session, behind one lock of their own.

    ``max_runs_per_person``: runs one person may have training or waiting at once (all their tabs together).
    ``max_kept_runs``: fine-tuned runs kept by all sessions together.
    """

    def __init__(self, max_runs_per_person: int = 2, max_kept_runs: int = 40, park_s: float = 600.0) -> None:
        self.max_runs_per_person = max(1, max_runs_per_person)
        self.max_kept_runs = max(1, max_kept_runs)
        self.park_s = park_s  # how long a closed tab's runs wait for its person to come back (a reload)
        self._parked: dict[str, Parked] = {}  # person -> their closed tab's runs
        self._lock = threading.Lock()
        self._active: Counter[str] = Counter()  # person -> runs training or waiting
        self._keepers: weakref.WeakSet[Keeper] = weakref.WeakSet()  # sessions that kept a run

    def __deepcopy__(self, memo: dict) -> People:
        # One per server: gradio deep-copies a gr.State's initial value (a function that knows this object).
        return self

    # --- runs training or waiting, per person ---
    def admit(self, person: str) -> None:
        """Count one more run of ``person`` (InputError when they already have their share)."""
        with self._lock:
            mine = self._active[person]
            if mine >= self.max_runs_per_person:
                raise InputError(
                    f"You already have {mine} run{'s' if mine != 1 else ''} training or waiting in another tab of "
                    f"this browser (the limit per person is {self.max_runs_per_person}, so that everyone gets a "
                    "turn). This one can start when one of them ends: wait for it, or press Stop in its tab.")
            self._active[person] += 1

    def release(self, person: str) -> None:
        """One run of ``person`` ended (call once per :meth:`admit`)."""
        with self._lock:
            self._active[person] -= 1
            if self._active[person] <= 0:
                del self._active[person]

    def active(self, person: str) -> int:
        """Runs ``person`` has training or waiting."""
        with self._lock:
            return self._active[person]

    # --- runs kept, server-wide ---
    def kept(self, session: Keeper, record: Any) -> list[tuple[Keeper, Any]]:
        """``session`` keeps ``record``: drop the oldest runs of idle sessions (then of any other) beyond
        ``max_kept_runs``, each with a notice to its owner; the (session, run) pairs dropped."""
        with self._lock:
            self._keepers.add(session)
            sessions = list(self._keepers)
        kept = []
        for owner in sessions:  # one session's lock at a time, never under this one's
            with owner.lock:
                busy = not owner.training_idle.is_set()
                kept += [(busy, run.kept_at, owner, run) for run in owner.runs.values() if run is not record]
        dropped = []
        excess = len(kept) + 1 - self.max_kept_runs
        for busy, _, owner, run in sorted(kept, key=lambda k: (k[0], k[1]))[:max(0, excess)]:
            if owner.delete_run(run.run_id) is None:
                continue  # deleted meanwhile
            minutes = (time.monotonic() - run.kept_at) / 60
            owner.notify(f"Your {run.label} (kept {minutes:.0f} min) was removed to make room: the server keeps "
                         f"at most {self.max_kept_runs} runs for all visitors together, the oldest of idle visitors "
                         "first. Download a run (Fine-tune tab) to keep it longer.")
            logger.info("Dropped a kept run (%s) to stay within %d runs server-wide", run.label, self.max_kept_runs)
            dropped.append((owner, run))
        return dropped

    # --- a reload: a closed tab's runs wait for their person ---
    def park(self, person: str, runs: dict[int, Any], run_count: int, workdir: Path | None,
             release: Callable[[Parked], None]) -> Parked:
        """Hold a closed tab's ``runs`` (and its folder) for ``person`` for ``park_s`` seconds: a reload claims
        them (:meth:`claim`); else ``release`` frees them. A person's earlier parked runs are released (their
        latest tab's runs are the ones a reload brings back)."""
        parked = Parked(dict(runs), run_count, workdir, release, time.monotonic() + self.park_s)
        with self._lock:
            earlier = self._parked.pop(person, None)
            self._parked[person] = parked
        if earlier is not None:
            earlier.release(earlier)
        timer = threading.Timer(self.park_s, self._expire, (person, parked))
        timer.daemon = True
        timer.start()
        logger.info("Holding %d run(s) of a closed tab for %.0f s (a reload brings them back)", len(runs),
                    self.park_s)
        return parked

    def claim(self, person: str) -> Parked | None:
        """The runs ``person``'s closed tab left, if they are still held (a reload's new session takes them)."""
        with self._lock:
            parked = self._parked.pop(person, None)
        if parked is not None and time.monotonic() > parked.until:
            parked.release(parked)
            return None
        return parked

    def _expire(self, person: str, parked: Parked) -> None:
        with self._lock:
            if self._parked.get(person) is not parked:
                return  # claimed, or replaced by a later tab's runs (released then)
            del self._parked[person]
        parked.release(parked)

    def adopted(self, session: Keeper) -> None:
        """``session`` took over kept runs (a reload): it counts among the sessions that keep runs."""
        with self._lock:
            self._keepers.add(session)

    def kept_count(self) -> int:
        """Runs kept by all sessions, and those held for a reload."""
        with self._lock:
            sessions = list(self._keepers)
            parked = sum(len(p.runs) for p in self._parked.values())
        return sum(len(s.runs) for s in sessions) + parked
