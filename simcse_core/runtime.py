"""Device, precision, seeds and threads, resolved in one place."""

from __future__ import annotations

import logging
import os
import queue
import random
import sys
import threading
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Literal, TypeVar

import numpy as np
import torch

logger = logging.getLogger(__name__)

T = TypeVar("T")

Device = Literal["auto", "cpu", "cuda", "mps"] | str
Precision = Literal["auto", "fp32", "bf16", "fp16"]


def resolve_device(device: Device = "auto") -> torch.device:
    """Return the torch device for ``device``; ``"auto"`` picks CUDA, then MPS, then the CPU."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul instructions (AVX512-BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: Precision, device: torch.device) -> torch.dtype | None:
    """The autocast dtype to run matmuls in, or ``None`` for plain fp32.

    ``"auto"`` means bf16 autocast on a GPU with bf16 support and on a CPU with native bf16 instructions
    (measured in ``bench/encode_speed.py``: faster end to end, STS-B Spearman within 0.2), else fp32.
    ``"fp16"`` (CUDA only) is for GPUs without bf16; training then scales the loss (``torch.amp.GradScaler``).
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise ValueError(f"fp16 autocast is for CUDA GPUs; on {device.type} use bf16 or fp32.")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and cpu_supports_bf16() and os.environ.get("SIMCSE_PRECISION", "") != "fp32":
        return torch.bfloat16
    return None


def seed_everything(seed: int) -> None:
    """One seed for ``random``, numpy and torch (CPU and all GPUs)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def machine_facts() -> dict[str, object]:
    """Facts to store beside a measurement: CPU, cores, torch threads, versions."""
    import platform

    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_bf16": cpu_supports_bf16(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
    }


def lower_thread_priority(niceness: int) -> bool:
    """Lower the calling thread's CPU priority by ``niceness`` (and that of threads it starts later), up to the
    lowest, 19; True if it worked.

    On Linux a nice value belongs to one thread, and threads inherit it when they are created, so torch's
    OpenMP workers started by this thread run at the same priority. The step is relative, so a server started
    under ``nice`` still puts training below its own request threads. Elsewhere this does nothing.
    """
    if not sys.platform.startswith("linux") or niceness <= 0:
        return False
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(os.getpriority(os.PRIO_PROCESS, thread) + niceness, 19))
    except OSError as err:
        logger.info("Could not lower the priority of thread %s: %s", threading.current_thread().name, err)
        return False
    return True


def background_iter(items: Iterable[T], niceness: int = 0, name: str = "background-iter") -> Iterator[T]:
    """Compute ``items`` in a thread of its own (at ``niceness``) and yield them, one per request, in order.

    Used for training in the app: a run keeps both cores busy, and at niceness 10 it yields the CPU to
    interactive requests (similarity, search) of other visitors, which then answer about as fast as on an idle
    server, while training slows by a few per cent (measured with all-MiniLM-L6-v2 on 2 cores: similarity
    p95 41 -> 19 ms during a run, 22 ms idle; 2.01 -> 1.89 steps/s). The worker computes the next item only
    when the consumer asks for it, so nothing runs ahead of what was yielded; closing this generator closes
    ``items`` in its thread. An exception raised by ``items`` is raised here.
    """
    source = iter(items)
    done = object()
    out: queue.SimpleQueue = queue.SimpleQueue()
    wanted = threading.Semaphore(0)
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        lower_thread_priority(niceness)
        try:
            while True:
                wanted.acquire()
                if stop.is_set():
                    break
                try:
                    item = next(source)
                except StopIteration:
                    break
                out.put(item)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, who re-raises it
            failure.append(err)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
            out.put(done)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            wanted.release()
            item = out.get()
            if item is done:
                break
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()
        wanted.release()
        worker.join()
