"""Device, precision, seeds and threads, resolved in one place."""

from __future__ import annotations

import logging
import os
import random
from functools import lru_cache
from typing import Literal

import numpy as np
import torch

logger = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda", "mps"] | str
Precision = Literal["auto", "fp32", "bf16"]


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
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
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
