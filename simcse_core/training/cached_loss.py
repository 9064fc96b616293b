"""Large batches in small memory: the contrastive loss with cached sentence vectors (GradCache).

The in-batch negatives of SimCSE make the batch size part of the loss, so it cannot be reached by plain
gradient accumulation. GradCache (Gao et al., 2021, "Scaling Deep Contrastive Learning Batch Size under Memory
Limited Setup"; sentence-transformers' ``CachedMultipleNegativesRankingLoss``) gets the exact full-batch
gradient with the activations of one mini-batch in memory at a time:

1. encode the batch mini-batch by mini-batch WITHOUT a graph, remembering the random state before each one;
2. compute the full-batch loss on those vectors and back-propagate it to the vectors only (cheap);
3. encode each mini-batch again WITH a graph, from its remembered random state so that dropout draws the same
   masks, and back-propagate the cached vector gradients through it; parameter gradients accumulate.

The second forward costs about one extra forward pass per step (~1/3 more compute).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class _RandomState:
    """The random state dropout draws from: the CPU generator and, once CUDA is in use, the current GPU's."""

    cpu: torch.Tensor
    cuda: torch.Tensor | None

    @classmethod
    def capture(cls) -> _RandomState:
        cuda = torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        return cls(torch.get_rng_state(), cuda)

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda)


def cached_backward(
    embed: Callable[[list], Sequence[torch.Tensor]],
    batch: Sequence,
    mini_batch_size: int,
    loss_of: Callable[[list[torch.Tensor]], torch.Tensor],
    no_sync: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    scale: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Back-propagate ``loss_of`` the whole batch's vectors, encoding ``mini_batch_size`` examples at a time.

    Parameter gradients accumulate (call ``optimizer.zero_grad()`` before); they equal those of
    ``loss_of(embed(batch)).backward()`` up to floating-point rounding, dropout included.

    Args:
        embed: examples -> their vectors as a list of columns, each (b, D) (e.g. the two dropout views, or
            anchors, positives and hard negatives), computed with a graph in the current grad mode.
        batch: the examples of one step.
        mini_batch_size: examples encoded at once (>= 1).
        loss_of: the columns of the whole batch, each (B, D) -> a scalar loss.
        no_sync: a context manager factory under which all but the last mini-batch's backward run (DDP's
            ``no_sync``: gradients are all-reduced once, after the last one).
        scale: applied to the loss before it is back-propagated (fp16 training: ``GradScaler.scale``).

    Returns:
        The loss, detached.
    """
    if mini_batch_size < 1:
        raise ValueError(f"mini_batch_size must be at least 1, got {mini_batch_size}.")
    batch = list(batch)
    chunks = [batch[i : i + mini_batch_size] for i in range(0, len(batch), mini_batch_size)]
    states, cached = [], []
    with torch.no_grad():
        for chunk in chunks:
            states.append(_RandomState.capture())
            cached.append([z.detach() for z in embed(chunk)])  # one (b, D) tensor per column
    columns = [torch.cat(parts).requires_grad_() for parts in zip(*cached)]  # each (B, D), leaves
    loss = loss_of(columns)
    (scale(loss) if scale else loss).backward()  # gradients of the vectors only: columns[k].grad (B, D)
    final_state = _RandomState.capture()
    starts = [sum(len(c) for c in chunks[:i]) for i in range(len(chunks))]
    for k, (chunk, state, first) in enumerate(zip(chunks, states, starts)):
        state.restore()  # the same dropout masks as in the cached pass
        context = no_sync() if k < len(chunks) - 1 else contextlib.nullcontext()
        with context:
            vectors = embed(chunk)
            grads = [column.grad[first : first + len(chunk)] for column in columns]  # (b, D) each
            torch.autograd.backward(list(vectors), grad_tensors=grads)
    final_state.restore()
    return loss.detach()
