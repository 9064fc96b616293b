"""Training in several processes: DistributedDataParallel, with in-batch negatives gathered across processes.

``python -m simcse_core train ...`` started by ``torchrun --nproc_per_node N`` or ``accelerate launch`` (both
set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``) trains with N processes:

- ``TrainConfig.batch_size`` is the GLOBAL batch; each process encodes its own contiguous shard of
  ``batch_size / N`` examples (every process draws the same seeded batch order, so no sampler is needed).
- Every process gathers all N shards' sentence vectors before the loss, so each anchor is contrasted with all
  ``batch_size - 1`` in-batch negatives, as the official SimCSE code does: ``all_gather``, then the process's
  own tensor is put back in its slot so that gradients flow through it (:func:`gather_keep_local`).
- The encoder is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`, which averages gradients.

Every process computes the same full-batch loss, but its gradient only reaches its own rows; DDP's average
would therefore give 1/N of the single-process gradient (the official code has this factor: harmless for
AdamW without clipping, not with it). :func:`gather_keep_local` multiplies the local gradient by N, so one
update equals one process's update on the whole global batch (tested to 1e-5 on 2 gloo processes).

Without those environment variables (the app, the tests, a plain ``python -m simcse_core``) nothing here
changes anything: :func:`current` is the single process, and its ``gather`` / ``wrap`` are the identity.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import distributed as dist
from torch import nn

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Environment variables set by torchrun and accelerate launch for every process they start.
_LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes (rank 0 of 1 when not launched distributed)."""

    rank: int = 0  # 0 .. world_size - 1; rank 0 prints and saves
    world_size: int = 1  # number of processes; the global batch is split into this many shards
    local_rank: int = 0  # rank on this machine: the GPU index this process uses

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True for the one process that prints, evaluates into logs and saves."""
        return self.rank == 0

    def shard_size(self, batch_size: int) -> int:
        """Examples each process encodes per step; the global batch must split evenly.

        Raises:
            ValueError: ``batch_size`` is not a multiple of the number of processes.
        """
        if batch_size % self.world_size:
            raise ValueError(
                f"batch_size {batch_size} (the global batch) must be a multiple of the number of processes "
                f"({self.world_size}), so that every process encodes the same number of examples.")
        return batch_size // self.world_size

    def shard(self, batch: Sequence[T]) -> list[T]:
        """This process's contiguous slice of the global batch (the whole batch in one process)."""
        size = self.shard_size(len(batch))
        return list(batch[self.rank * size : (self.rank + 1) * size])

    def gather(self, z: torch.Tensor) -> torch.Tensor:
        """All processes' rows of ``z`` in rank order, the local ones kept in the graph (see module doc)."""
        return gather_keep_local(z) if self.is_distributed else z

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` in DistributedDataParallel when distributed, else ``module`` itself."""
        if not self.is_distributed:
            return module
        device = next(module.parameters()).device
        device_ids = [device] if device.type == "cuda" else None
        # find_unused_parameters: a checkpoint may hold layers the chosen pooler never reads.
        return nn.parallel.DistributedDataParallel(
            module, device_ids=device_ids, find_unused_parameters=True)

    def no_sync(self, module: nn.Module) -> contextlib.AbstractContextManager:
        """Skip DDP's gradient all-reduce for backward passes inside (gradient accumulation), when wrapped."""
        if isinstance(module, nn.parallel.DistributedDataParallel):
            return module.no_sync()
        return contextlib.nullcontext()

    def any(self, flag: bool) -> bool:
        """True when ``flag`` is True in at least one process (so that every process stops at the same step)."""
        if not self.is_distributed:
            return flag
        value = torch.tensor([int(flag)], device=_collective_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


class _GatherKeepLocal(torch.autograd.Function):
    """all_gather whose backward keeps only the local rows' gradient, times the number of processes."""

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
        world, rank = dist.get_world_size(), dist.get_rank()
        parts = [torch.empty_like(z) for _ in range(world)]
        dist.all_gather(parts, z.contiguous())
        parts[rank] = z  # the official code's `z1_list[dist.get_rank()] = z1`
        ctx.rows, ctx.rank, ctx.world = z.shape[0], rank, world
        return torch.cat(parts)  # (world * b, D)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        local = grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]  # (b, D)
        return local * ctx.world  # DDP divides by world when it averages


def gather_keep_local(z: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's ``z`` (b, D) in rank order -> (world * b, D), differentiable in the local rows.

    Every process must call it with the same shape. The gradient of the local rows is scaled by the number of
    processes, so that after DistributedDataParallel's gradient average a step equals a single process's step
    on the concatenated batch (all processes compute the same loss from the same gathered tensors).
    """
    return _GatherKeepLocal.apply(z)


def launched_distributed() -> bool:
    """True when torchrun / accelerate launch started this process as one of several."""
    return all(name in os.environ for name in _LAUNCH_VARIABLES) and int(os.environ["WORLD_SIZE"]) > 1


def current() -> Processes:
    """The process group this process trains in: from ``torch.distributed`` once initialised, else one."""
    if not (dist.is_available() and dist.is_initialized()):
        return Processes()
    local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return Processes(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)


def start(device: str = "auto") -> Processes:
    """Join the process group when launched by torchrun / accelerate launch; else one process, nothing done.

    The backend is nccl when this process trains on a GPU, gloo on CPUs. On a GPU the process uses
    ``cuda:LOCAL_RANK`` (see :func:`process_device`).
    """
    if not launched_distributed():
        return current()
    if not dist.is_initialized():
        on_gpu = process_device(device).startswith("cuda")
        if on_gpu:
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group(backend="nccl" if on_gpu else "gloo")
    processes = current()
    logger.info("Process %d of %d (local rank %d) joined the process group (%s).", processes.rank,
                processes.world_size, processes.local_rank, dist.get_backend())
    return processes


def stop() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def process_device(device: str) -> str:
    """The device this process should train on: ``auto`` / ``cuda`` become ``cuda:LOCAL_RANK`` when launched
    distributed on a machine with GPUs; anything else is returned unchanged."""
    if not launched_distributed() or not torch.cuda.is_available():
        return device
    if device in ("auto", "cuda"):
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return device


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
