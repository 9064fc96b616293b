"""The worker process (simcse_core.worker): calls, errors, a dead child, and what it imports."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from simcse_core.teaching import projection
from simcse_core.worker import Worker


@pytest.fixture()
def worker():
    made = Worker(niceness=5)
    yield made
    made.close()


def test_a_call_runs_in_another_process_and_returns_its_value(worker: Worker) -> None:
    x = np.arange(12.0).reshape(3, 4)
    assert worker.call(np.linalg.norm, x, None, 1).tolist() == np.linalg.norm(x, axis=1).tolist()
    assert worker.call(os.getpid) == worker.pid != os.getpid()
    assert worker.call(os.getpriority, os.PRIO_PROCESS, 0) == os.getpriority(os.PRIO_PROCESS, 0) + 5


def test_the_functions_error_is_raised_here_and_the_worker_goes_on(worker: Worker) -> None:
    with pytest.raises(ValueError, match="before and after"):
        worker.call(projection.project_pair, np.ones((20, 4)), np.ones((20, 5)))
    assert worker.call(int, "7") == 7


def test_the_worker_never_imports_torch(worker: Worker) -> None:
    """The map worker imports simcse_core.teaching.projection: the package's short imports are lazy, so torch
    (about 180 MB of a worker's resident memory) stays out."""
    worker.call(projection.pca_2d, np.eye(3))
    assert worker.call(eval, "'torch' in __import__('sys').modules") is False


def test_a_dead_child_is_replaced_and_the_call_still_answers(worker: Worker) -> None:
    first = worker.call(os.getpid)
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    assert worker.call(int, "3") == 3  # here, or in a new child
    second = worker.call(os.getpid)
    assert second not in (first, os.getpid())


def test_closing_ends_the_child(worker: Worker) -> None:
    pid = worker.call(os.getpid)
    worker.close()
    assert worker.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.slow  # numba compiles UMAP in the new process: about 25 s on 2 cores
def test_the_map_in_the_worker_is_the_map_made_here() -> None:
    """Seeded UMAP gives the same points in the worker as in this process (same machine and libraries)."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 16))[rng.integers(0, 3, 90)] + 0.3 * rng.standard_normal((90, 16))).astype(np.float32)
    with_worker = Worker(niceness=0, warm_up=projection.warm_up)
    try:
        np.testing.assert_array_equal(with_worker.call(projection.project, x, 1), projection.project(x, seed=1))
    finally:
        with_worker.close()


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_the_worker_hands_a_calls_memory_back_between_calls(worker: Worker) -> None:
    """A map's arrays are freed when its call ends; glibc would keep them in the worker's heap, so the worker
    trims after every call."""
    worker.call(eval, "__import__('numpy').ones(1).sum()")
    before = _rss_mib(worker.pid)
    # 3,000 arrays of 100 KB each (under glibc's mmap threshold: from the heap), freed when the call returns
    assert worker.call(eval, "len([__import__('numpy').ones(12_800) for _ in range(3_000)])") == 3_000
    worker.call(int, "2")  # answered once the worker is done with the call before (and its trim)
    assert _rss_mib(worker.pid) - before < 100
