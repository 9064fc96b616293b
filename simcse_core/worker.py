"""A child process for CPU-bound work that would otherwise hold the calling process's interpreter lock.

The app's UMAP maps are the case: umap-learn's numba epochs hold the GIL for milliseconds at a time, and in a
server every other request thread (a similarity score, a search) waits on it each time torch hands the GIL
back; in a 30-visitor soak UMAP held it a quarter of the time the GIL was held at all. In a child process of
lower CPU priority the map costs only CPU, which the operating system gives to interactive requests first,
and its allocations (a 4,000 × 4,000 distance matrix) never stay in the server's heap.

:class:`Worker` runs one function call at a time in ``python -m simcse_core.worker``, a process of its own (not
multiprocessing's spawn, which re-imports the server's main module: gradio and all) that ends when its parent
closes the pipe or ends. Calls and results travel pickled over the child's stdin and stdout; the function is
pickled by name, so it must be importable (a module-level function). If the child dies, the call runs here
instead and the next one starts a new child.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from simcse_core.memory import return_freed_memory

logger = logging.getLogger(__name__)

T = TypeVar("T")
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # where ``-m simcse_core.worker`` is found


class Worker:
    """One child process that runs functions for this one (one call at a time, in arrival order)."""

    def __init__(self, niceness: int = 10, warm_up: Callable[[], Any] | None = None) -> None:
        """``niceness``: the child's CPU priority below this process's (Linux nice). ``warm_up``: a
        module-level function the child runs first on every start (to pay one-off compilation there)."""
        self._niceness = niceness
        self._warm_up = warm_up
        self._lock = threading.Lock()
        self._child: subprocess.Popen | None = None
        self._warm_up_pending = False  # the child has a warm-up answer not read yet

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        child = self._child
        return child.pid if child is not None and child.poll() is None else None

    def start(self) -> None:
        """Start the child now (and its warm-up) rather than at the first call; does not wait for them."""
        with self._lock:
            self._ensure_started()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` computed in the child; its exception is raised here. Runs here if the child failed."""
        with self._lock:
            try:
                child = self._ensure_started()
                _send(child.stdin, (fn, args))
                if self._warm_up_pending:  # the warm-up's answer comes first on the pipe
                    self._warm_up_pending = False
                    ok, value = pickle.load(child.stdout)
                    if not ok:
                        logger.warning("The worker's warm-up failed: %s", value)
                ok, value = pickle.load(child.stdout)
            except (OSError, EOFError, pickle.UnpicklingError) as err:
                logger.warning("The worker process failed (%s): running %s here; a new one starts next time.",
                               err, getattr(fn, "__name__", fn))
                self._stop()
                return fn(*args)
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """End the child (it also ends by itself when this process does)."""
        with self._lock:
            self._stop()

    def _ensure_started(self) -> subprocess.Popen:
        if self._child is None or self._child.poll() is not None:
            self._child = subprocess.Popen([sys.executable, "-m", "simcse_core.worker", str(self._niceness)],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=_PACKAGE_ROOT)
            self._warm_up_pending = self._warm_up is not None
            if self._warm_up is not None:
                _send(self._child.stdin, (self._warm_up, ()))
        return self._child

    def _stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        try:
            child.stdin.close()
            child.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()


def _send(pipe, message: tuple) -> None:
    """Write ``message`` pickled, whole or not at all (a value that cannot be pickled raises before any byte)."""
    pipe.write(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
    pipe.flush()


def _serve(niceness: int) -> None:
    """The child's loop: read a pickled ``(fn, args)``, write ``(True, result)`` or ``(False, exception)``."""
    if niceness > 0 and hasattr(os, "nice"):
        os.nice(niceness)
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything printed goes to the log, never into the replies
    while True:
        try:
            fn, args = pickle.load(requests)
        except EOFError:  # the parent closed the pipe or ended
            return
        try:
            reply = (True, fn(*args))
        except Exception as err:  # noqa: BLE001 - handed to the caller, who raises it
            reply = (False, err)
        try:
            _send(replies, reply)
        except (pickle.PicklingError, TypeError, AttributeError) as err:  # an exception or result pickle refuses
            _send(replies, (False, RuntimeError(f"{type(reply[1]).__name__}: {reply[1]} (not picklable: {err})")))
        del reply
        gc.collect()
        return_freed_memory()  # idle between calls: a map's distance matrix goes back to the system


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(name)s: %(message)s")
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
