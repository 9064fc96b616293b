"""Who may use the CPU when: Gradio's concurrency groups, and the server's own training queue with tickets.

The machine has 2 CPU cores. Gradio runs at most ``concurrency_limit`` events of one ``concurrency_id`` at once
and queues the rest. Torch releases the GIL, so the groups run in parallel threads and share the cores.

- ``train``: fine-tuning handlers. They wait in the app's own :class:`TrainingQueue` (at most
  ``training_slots`` train at once), which shows each visitor their place and an estimated start, and lets
  them leave (Stop).
- ``preset``: the Inside tab's ablation presets. They wait in the same TrainingQueue as fine-tunes (so the
  slots are shared server-wide); the group only bounds how many preset handlers may wait in it.
- ``heavy``: index building, UMAP maps and STS evaluations (seconds to tens of seconds): two at a time.
- ``encode``: similarity and search (well under a second each): four at a time, so the Similarity and
  Retrieval tabs stay responsive for everyone, even while someone trains.

Cheap UI-only events (show/hide a component) use ``queue=False``. A run trains in a thread of its own at a
lower CPU priority (:data:`TRAIN_NICENESS`, ``simcse_core.runtime.background_iter``), so while it runs the
cores go first to the short interactive requests of other visitors.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ui.serving.errors import InputError

TRAIN_NICENESS = 10
PACKAGING_S = 15.0  # least time a run holds its slot beyond its estimate (measuring before and after)
# A run whose consumer has not taken an update for this long loses its place or slot (a waiting run hands one
# every second, a training run one per step). Under gradio the consumer is gradio itself, which pulls a generator's
# updates as fast as they come and buffers them for a reader who may never come: a closed tab is noticed by gradio
# (its stream's disconnect cancels the event, closing the run at its next update), and a /call nobody reads by
# ui.serving.calls.UnreadCallGuard, which cancels it the same way. This catches a consumer that stopped pulling.
LISTENER_TIMEOUT_S = 8.0


@dataclass(frozen=True)
class QueueGroups:
    """The ``concurrency_id``/``concurrency_limit`` keyword arguments of each kind of event."""

    train: dict
    preset: dict
    heavy: dict
    encode: dict

    @classmethod
    def of(cls, training_slots: int, max_training_queue: int) -> QueueGroups:
        """The groups of a server with these training limits (its running StudioConfig's)."""
        # Every run the TrainingQueue admits (training or waiting) has a handler, plus one more that is
        # refused with the queue's own message instead of waiting silently in Gradio's queue.
        runs = max(1, training_slots) + max_training_queue + 1
        return cls(train={"concurrency_id": "train", "concurrency_limit": runs},
                   preset={"concurrency_id": "preset", "concurrency_limit": runs},
                   heavy={"concurrency_id": "heavy", "concurrency_limit": 2},
                   encode={"concurrency_id": "encode", "concurrency_limit": 4})


@dataclass(eq=False)
class Ticket:
    """A place in the training queue."""

    budget_s: float  # the run's time budget: the longest it holds a slot (plus PACKAGING_S)
    number: int
    client: str = "local"  # the address the run counts against (ui.serving.server.client_address)
    expected_s: float | None = None  # how long it is expected to hold the slot, from measured step times
    started_at: float | None = None  # monotonic time the run got its slot
    handed_at: float | None = None  # monotonic time of an update its listener has not taken yet (None: taken)
    on_gone: Callable[[], None] | None = None  # called (under the queue's lock) when the listener is gone
    gone: bool = False  # the listener stopped taking updates: the place or slot was given up for it

    @property
    def holds_for_s(self) -> float:
        """The estimate of the time it holds its slot: measured steps, at most the budget."""
        return min(self.budget_s, self.expected_s) if self.expected_s is not None else self.budget_s


class TrainingQueue:
    """First come, first served: at most ``slots`` runs train at once, at most ``max_waiting`` wait, at most
    ``max_per_client`` of them (training or waiting) from one address.

    A run hands its consumer an update at least every ``QUEUE_POLL_S`` while it waits and at every step while it
    trains (:meth:`handed`, :meth:`taken`); a run whose consumer has not taken an update for ``listener_timeout_s``
    loses its place or slot (see :data:`LISTENER_TIMEOUT_S`: under gradio, a gone reader is noticed by gradio and
    ui.serving.server instead, and the run is closed). Estimated start times assume every run ahead
    holds its slot for its measured steps (at most its budget) plus the longest time recent runs held their
    slot beyond that (measuring before and after, packaging).
    """

    def __init__(self, slots: int, max_waiting: int, max_per_client: int = 2,
                 listener_timeout_s: float = LISTENER_TIMEOUT_S) -> None:
        self.slots = max(1, slots)
        self.max_waiting = max_waiting
        self.max_per_client = max(1, max_per_client)
        self.listener_timeout_s = listener_timeout_s
        self._cond = threading.Condition()
        self._running: list[Ticket] = []
        self._waiting: list[Ticket] = []
        self._numbers = itertools.count(1)
        self._overheads: list[float] = []  # seconds recent runs held their slot beyond their estimate

    def join(self, budget_s: float, client: str = "local", expected_s: float | None = None,
             on_gone: Callable[[], None] | None = None) -> Ticket:
        """A ticket at the end of the line (InputError when the line or the client's share of it is full)."""
        with self._cond:
            self._reap()
            mine = sum(t.client == client for t in (*self._running, *self._waiting))
            if mine >= self.max_per_client:
                minutes = max(1, math.ceil(self._first_end_s(client) / 60))
                raise InputError(f"This network address (shared by everyone on it, e.g. a school) already has {mine} "
                                 f"run{'s' if mine != 1 else ''} training or waiting, the most one address may have "
                                 f"({self.max_per_client}). Try again in about {minutes} min, when one of them ends.")
            if len(self._waiting) >= self.max_waiting and len(self._running) >= self.slots:
                raise InputError(f"The training queue is full ({self.max_waiting} runs waiting, the limit). Try "
                                 "again in a few minutes; similarity, search and maps work meanwhile.")
            ticket = Ticket(budget_s=float(budget_s), number=next(self._numbers), client=client,
                            expected_s=expected_s, on_gone=on_gone)
            self._waiting.append(ticket)
            self._promote()
            return ticket

    @contextmanager
    def place(self, budget_s: float, client: str = "local", expected_s: float | None = None,
              on_gone: Callable[[], None] | None = None) -> Iterator[Ticket]:
        """A ticket (:meth:`join`) for the ``with`` block; its place or slot is given up when the block ends."""
        ticket = self.join(budget_s, client=client, expected_s=expected_s, on_gone=on_gone)
        try:
            yield ticket
        finally:
            self.leave(ticket)

    def wait(self, ticket: Ticket, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True once the ticket holds a slot."""
        with self._cond:
            self._reap()
            self._cond.wait_for(lambda: ticket.started_at is not None or ticket.gone, timeout=timeout)
            return ticket.started_at is not None and not ticket.gone

    def handed(self, ticket: Ticket) -> None:
        """The run hands its listener an update (the listener has ``listener_timeout_s`` to take it)."""
        with self._cond:
            ticket.handed_at = time.monotonic()

    def taken(self, ticket: Ticket) -> None:
        """The listener took the update: it is still there."""
        with self._cond:
            ticket.handed_at = None

    def leave(self, ticket: Ticket) -> None:
        """Give up the place or the slot (idempotent)."""
        with self._cond:
            self._remove(ticket)
            self._promote()

    def _remove(self, ticket: Ticket) -> None:
        if ticket in self._running:
            self._running.remove(ticket)
            held = time.monotonic() - ticket.started_at
            if held > ticket.holds_for_s and not ticket.gone:  # learn what comes on top of the estimate
                self._overheads = [*self._overheads[-4:], held - ticket.holds_for_s]
        if ticket in self._waiting:
            self._waiting.remove(ticket)

    def _reap(self) -> None:
        """Give up the places and slots of runs whose listeners are gone."""
        now = time.monotonic()
        for ticket in [*self._running, *self._waiting]:
            if ticket.handed_at is not None and now - ticket.handed_at > self.listener_timeout_s:
                ticket.gone = True
                self._remove(ticket)
                if ticket.on_gone is not None:
                    ticket.on_gone()
        self._promote()

    @property
    def overhead_s(self) -> float:
        """Seconds a run holds its slot beyond its estimate: the longest of the last five, at least PACKAGING_S."""
        with self._cond:
            return max([PACKAGING_S, *self._overheads])

    def position(self, ticket: Ticket) -> int:
        """1 for the next to start, 0 when training."""
        with self._cond:
            return 0 if ticket.started_at is not None else self._waiting.index(ticket) + 1

    def estimated_wait(self, ticket: Ticket) -> float:
        """Seconds until ``ticket`` starts, if every run ahead holds its slot as long as estimated (0 when
        started)."""
        with self._cond:
            if ticket.started_at is not None:
                return 0.0
            now, extra = time.monotonic(), max([PACKAGING_S, *self._overheads])
            free_at = [max(0.0, t.started_at + t.holds_for_s + extra - now) for t in self._running]
            free_at += [0.0] * (self.slots - len(free_at))
            heapq.heapify(free_at)
            for ahead in self._waiting[: self._waiting.index(ticket)]:
                heapq.heappush(free_at, heapq.heappop(free_at) + ahead.holds_for_s + extra)
            return free_at[0]

    def _first_end_s(self, client: str) -> float:
        """Seconds until the first of ``client``'s runs is expected to end (under the lock)."""
        now = time.monotonic()
        running = [max(0.0, t.started_at + t.holds_for_s - now) for t in self._running if t.client == client]
        if running:
            return min(running)
        waiting = [t for t in self._waiting if t.client == client]
        free_at = [max(0.0, t.started_at + t.holds_for_s - now) for t in self._running] or [0.0]
        return min(free_at) + sum(t.holds_for_s for t in self._waiting[: self._waiting.index(waiting[0]) + 1])

    def counts(self) -> tuple[int, int]:
        """(training, waiting)."""
        with self._cond:
            self._reap()
            return len(self._running), len(self._waiting)

    def _promote(self) -> None:
        while self._waiting and len(self._running) < self.slots:
            ticket = self._waiting.pop(0)
            ticket.started_at = time.monotonic()
            self._running.append(ticket)
        self._cond.notify_all()
