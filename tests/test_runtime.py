"""runtime: seeds, devices, and the background iterator the app trains in."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest
import torch

from simcse_core.runtime import background_iter, lower_thread_priority, resolve_device, seed_everything


def test_seed_everything_repeats_random_numpy_and_torch_draws() -> None:
    import random

    seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_resolve_device_passes_explicit_devices_through() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")


def _recording(log: list, n: int):
    try:
        for k in range(n):
            log.append(("made", k, threading.get_ident()))
            yield k
    finally:
        log.append(("closed",))


def test_background_iter_yields_in_order_from_another_thread() -> None:
    log: list = []
    assert list(background_iter(_recording(log, 5))) == [0, 1, 2, 3, 4]
    threads = {entry[2] for entry in log if entry[0] == "made"}
    assert threads and threading.get_ident() not in threads
    assert log[-1] == ("closed",)


def test_background_iter_computes_nothing_ahead_and_closes_the_source_when_closed() -> None:
    log: list = []
    stream = background_iter(_recording(log, 100))
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert [entry[1] for entry in log if entry[0] == "made"] == [0, 1, 2]  # item 3 was never asked for
    assert log[-1] == ("closed",)


def test_background_iter_raises_the_sources_error_after_its_items() -> None:
    def failing():
        yield 1
        raise ValueError("bad data on line 3")

    got = []
    with pytest.raises(ValueError, match="line 3"):
        for item in background_iter(failing()):
            got.append(item)
    assert got == [1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux-only")
def test_background_iter_runs_at_lower_priority_and_leaves_the_caller_alone() -> None:
    def priorities():
        me = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        child: list[int] = []
        t = threading.Thread(target=lambda: child.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        t.start()
        t.join()
        yield me, child[0]

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    (worker, worker_child), = list(background_iter(priorities(), niceness=5))
    assert worker == min(before + 5, 19)
    assert worker_child == worker  # threads started by the worker (torch's OpenMP pool) inherit it
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def test_lower_thread_priority_ignores_non_positive_values() -> None:
    assert lower_thread_priority(0) is False
