"""Giving memory back to the system when a run ends, a run is deleted or a visitor leaves.

glibc's malloc keeps the memory a process frees (a run's optimizer state, activations, a dropped model) for its
own later use, so the server's resident size only grows: 1.0 -> 9.6 GiB over a 30-visitor soak, and one
``malloc_trim`` then took it from 9.26 to 1.81 GiB (issue 26). :func:`release_memory` collects Python's
garbage and trims; :func:`release_memory_soon` does it in a thread of its own, after the caller's frames (the
run's state) are gone, so no request and no lock waits for the trim (seconds on a large heap).
"""

from __future__ import annotations

import gc
import logging
import threading
import time

from simcse_core.memory import return_freed_memory

logger = logging.getLogger(__name__)

RELEASE_DELAY_S = 2.0  # after a run ends: its generator, frames and updates are gone by then
_TRIM = threading.Lock()  # one trim at a time: a second would only wait for the arenas' locks


def release_memory() -> bool:
    """Collect garbage and give the freed memory back to the system (glibc; elsewhere only the collection).

    True if memory was trimmed.
    """
    with _TRIM:
        start = time.perf_counter()
        gc.collect()
        collected = time.perf_counter()
        trimmed = return_freed_memory()
        logger.info("Memory released: garbage collected in %.2f s, trimmed in %.2f s", collected - start,
                    time.perf_counter() - collected)
        return trimmed


def keep_for_life() -> None:
    """Leave every object alive now out of all later garbage collections (``gc.freeze``).

    Called once the server holds what it keeps for its life (the page, the base model, the corpus index): a full
    collection then looks only at what visitors made since, and its pause, during which no other request thread
    runs Python, is that much shorter.
    """
    gc.collect()
    gc.freeze()
    logger.info("%d objects kept out of later garbage collections", gc.get_freeze_count())


def release_memory_soon(delay_s: float = RELEASE_DELAY_S) -> threading.Timer:
    """:func:`release_memory` in a daemon thread ``delay_s`` from now (the caller goes on at once)."""
    timer = threading.Timer(delay_s, _release_logged)
    timer.daemon = True
    timer.name = "release-memory"
    timer.start()
    return timer


def _release_logged() -> None:
    try:
        release_memory()
    except Exception:  # noqa: BLE001 - a failed trim costs memory, never a visitor's request
        logger.exception("Could not release memory")
