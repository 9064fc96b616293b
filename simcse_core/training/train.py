"""The tiny trainer: unsupervised and supervised SimCSE as one plain loop that yields progress events.

In the spirit of minGPT's ``trainer.py``: build the optimizer, loop (zero-grad, forward, loss, backward,
clip, step), and report by yielding small frozen :class:`TrainEvent` objects. A CLI prints them, the UI
streams them; stopping is the consumer's choice (stop iterating) or ``TrainConfig.time_budget_s``.

Unsupervised SimCSE needs no special model: each batch is tokenized once and goes through the encoder twice in
train mode, so the two "views" of a sentence differ only by their dropout masks (the paper's only
augmentation). Both views are computed in ONE forward call on the batch stacked on itself (2B rows), as the
official SimCSE code does: on this project's 2-core CPU it is faster than two calls (all-MiniLM-L6-v2, batch
64, one step: 0.46 s against 0.49 s in bf16, 0.91 s against 0.94 s in fp32). Supervised SimCSE encodes
anchors, positives and hard negatives in one call too, and uses each anchor's own hard negative weighted by
``hard_negative_weight``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import nn

from simcse_core.model.dropout import set_dropout
from simcse_core.model.pooling import Pooler, PoolerName
from simcse_core.runtime import seed_everything
from simcse_core.training import distributed
from simcse_core.training.cached_loss import cached_backward
from simcse_core.training.config import TrainConfig, TrainMode, paper_mlp_only_train
from simcse_core.training.losses import simcse_loss

if TYPE_CHECKING:
    from simcse_core.evaluation.sets import ScoredPairs
    from simcse_core.model.encoder import Encoder

logger = logging.getLogger(__name__)

__all__ = ["LIVE_RUN", "LIVE_RUN_EVALUATIONS", "EvaluationSchedule", "TrainConfig", "TrainEvent", "TrainMode",
           "TrainState", "inference_pooler", "lr_factor", "paper_mlp_only_train", "train"]

StopReason = Literal["steps", "time_budget"]
# One supervised example: (anchor, positive) or (anchor, positive, hard negative).
Example = str | tuple[str, str] | tuple[str, str, str]


def inference_pooler(config: TrainConfig, trained_pooler: PoolerName) -> PoolerName:
    """The pooler whose vector a model trained with ``config`` is used with at test time.

    A ``cls`` head used in training only leaves the raw [CLS] vector (``cls_before_pooler``) at test time, so
    the base model it is compared with is seen through that pooler; any other pooler is its own equivalent.
    """
    if trained_pooler == "cls" and config.resolved_mlp_only_train:
        return "cls_before_pooler"
    return trained_pooler


@dataclass(frozen=True)
class TrainEvent:
    """Progress of a run, yielded once before training (step 0) and once after each optimizer step."""

    step: int  # optimizer updates done so far; 0 = before training (the baseline)
    total_steps: int  # TrainConfig.steps
    loss: float | None  # loss of this step's batch (before its update); None at step 0
    lr: float  # learning rate of this step's update (at step 0: of the first update)
    elapsed_s: float  # wall-clock seconds since training started, evaluations included
    metrics: dict[str, float] | None  # embedding_report on eval_pairs when evaluated at this step, else None
    done: bool  # True on the last event (all steps made, or the time budget spent)
    train_s: float = 0.0  # seconds spent in training steps only (evaluations excluded)
    remaining_s: float | None = None  # estimated training seconds left; None before the first step
    stop_reason: StopReason | None = None  # on the last event: "steps" or "time_budget"
    # Returns the TrainState to resume from this event (optimizer, step, random state); call it before asking
    # for the next event. Used by simcse_core.training.checkpoint.
    snapshot: Callable[[], TrainState] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class TrainState:
    """Everything besides the weights that a run needs to continue exactly where it stopped."""

    step: int  # optimizer updates made
    optimizer: dict  # optimizer.state_dict(): AdamW moments, learning rates
    schedule: dict  # the learning-rate schedule's state_dict()
    scaler: dict  # the fp16 loss scaler's state_dict() (empty when unused)
    random: dict  # torch (CPU, CUDA), numpy and python random states of this process


def lr_factor(step: int, total_steps: int, warmup: int, decay_fraction: float = 1.0) -> float:
    """Multiplier of the peak learning rate for update number ``step`` (0-based).

    Linear warmup over ``warmup`` updates, then linear decay to 0 at ``total_steps`` over the last
    ``decay_fraction`` of the updates after the warmup, the rate held at its peak before them. With
    ``decay_fraction=1`` this is Hugging Face's ``get_linear_schedule_with_warmup``, which the paper's trainer
    uses: with ``warmup=0`` the first update uses the full learning rate and the last one ``lr / total_steps``.
    """
    if step < warmup:
        return step / max(1, warmup)
    decay_start = total_steps - round(decay_fraction * (total_steps - warmup))  # from warmup to total_steps
    if step < decay_start:
        return 1.0
    return max(0.0, (total_steps - step) / max(1, total_steps - decay_start))


def train(
    encoder: Encoder,
    data: Sequence[Example],
    config: TrainConfig | None = None,
    eval_pairs: ScoredPairs | None = None,
    resume: TrainState | None = None,
    eval_due: Callable[[int, float], bool] | None = None,
) -> Iterator[TrainEvent]:
    """Train ``encoder`` in place with SimCSE, yielding a :class:`TrainEvent` before and after each step.

    The data are checked when ``train`` is called; the encoder is changed only once iteration starts:
    ``config.dropout`` is set on every ``nn.Dropout`` of the transformer, ``config.pooler`` (if given)
    replaces the pooler, and ``encoder.config`` records the pooler, dropout and max_length used, so that
    :meth:`Encoder.save` writes them.

    Batches are drawn from a permutation of the data seeded with ``config.seed``, reshuffled each epoch; the
    short remainder of an epoch is dropped, so every batch has the same number of in-batch negatives (each
    epoch drops different examples). With fewer examples than ``batch_size``, every batch is the whole data.

    With ``eval_pairs``, :func:`simcse_core.evaluation.metrics.embedding_report` (spearman, alignment, uniformity,
    anisotropy) is computed in eval mode at step 0, every ``config.eval_every`` steps and on the last event;
    evaluation never changes the random numbers training draws, so it does not change the losses.

    Training ends after ``config.steps`` steps, when ``config.time_budget_s`` has elapsed (checked after each
    step, so at least one step is made), or when the consumer stops iterating (``break`` or ``close()``).
    Whenever control is with the consumer, and after the end in every case, the encoder is in eval mode.

    Args:
        encoder: the encoder to train (changed in place; use ``encoder.copy()`` to keep the original).
        data: ``mode="unsup"``: sentences (str). ``mode="sup"``: (anchor, positive) tuples, or (anchor,
            positive, hard_negative) tuples (all examples the same kind).
        config: training settings; ``None`` means ``TrainConfig()``.
        eval_pairs: a scored-pair set to evaluate on, or ``None`` for no evaluation.
        resume: continue a run from the state an event's ``snapshot()`` gave (with the encoder holding that
            event's weights, same data and config): the first event is then that step, the batches and
            random numbers continue as if the run had never stopped.
        eval_due: when given, replaces ``config.eval_every``: called after each step with (step, seconds
            elapsed), it says whether to evaluate now (a live display spaces evaluations by this run's measured
            progress: :class:`EvaluationSchedule`).

    Returns:
        An iterator of events; training happens while it is consumed.

    Raises:
        ValueError: the data do not fit the mode, or there are fewer than 2 examples.
    """
    config = config or TrainConfig()
    examples = _check_data(data, config.mode)
    if resume is not None and not 0 <= resume.step <= config.steps:
        raise ValueError(f"Cannot resume at step {resume.step} a run of {config.steps} steps.")
    return _run(encoder, examples, config, eval_pairs, resume, eval_due)


def _run(
    encoder: Encoder, examples: list, config: TrainConfig, eval_pairs: ScoredPairs | None,
    resume: TrainState | None = None, eval_due: Callable[[int, float], bool] | None = None,
) -> Iterator[TrainEvent]:
    start = time.perf_counter()
    seed_everything(config.seed)
    _prepare_encoder(encoder, config)
    batch_size = min(config.batch_size, len(examples))
    if batch_size < config.batch_size:
        logger.info("Only %d examples for batch size %d: every batch is the whole data (%d in-batch "
                    "negatives).", len(examples), config.batch_size, batch_size - 1)
    processes = distributed.current()  # one process, unless started by torchrun / accelerate launch
    logger.info("Global batch %d = %d process(es) x %d examples each%s.", batch_size, processes.world_size,
                processes.shard_size(batch_size),
                f", encoded {config.mini_batch_size} at a time" if config.mini_batch_size else "")
    embedder = processes.wrap(_Embedder(encoder, config))  # DDP copies rank 0's weights to every process
    if processes.is_distributed:  # then each process draws its own dropout masks
        torch.manual_seed(config.seed + processes.rank)
    logger.info("Training %s: %s SimCSE, %d examples, %d steps of batch %d, lr %g, τ %g, dropout %g",
                encoder.description, config.mode, len(examples), config.steps, batch_size, config.lr,
                config.temperature, config.dropout)
    optimizer = _make_optimizer(encoder, config)
    # fp16 autocast (CUDA) needs loss scaling; a disabled scaler passes everything through unchanged.
    scaler = torch.amp.GradScaler(encoder.device.type, enabled=encoder.autocast_dtype == torch.float16)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, config.steps, config.warmup, config.decay_fraction))
    batches = _batch_indices(len(examples), batch_size, config.seed)
    first = 0 if resume is None else _resume(resume, optimizer, schedule, scaler, batches, processes, config)
    snapshot = partial(_snapshot, optimizer=optimizer, schedule=schedule, scaler=scaler)
    train_s = 0.0
    try:
        metrics = _evaluate(encoder, eval_pairs)
        yield TrainEvent(step=first, total_steps=config.steps, loss=None, lr=optimizer.param_groups[0]["lr"],
                         elapsed_s=time.perf_counter() - start, metrics=metrics, done=first == config.steps,
                         snapshot=partial(snapshot, first))
        for step in range(first + 1, config.steps + 1):
            t0 = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            encoder.train()
            batch = processes.shard([examples[i] for i in next(batches)])  # this process's share
            loss = _step(encoder, embedder, batch, config, optimizer, processes, scaler)
            encoder.weights_changed()  # evaluations between steps must read the new weights
            schedule.step()
            encoder.eval()
            train_s += time.perf_counter() - t0
            elapsed = time.perf_counter() - start
            stop_reason: StopReason | None = None
            if step == config.steps:
                stop_reason = "steps"
            elif config.time_budget_s is not None and processes.any(elapsed >= config.time_budget_s):
                stop_reason = "time_budget"
                logger.info("Time budget of %.0f s spent after %d of %d steps.", config.time_budget_s, step,
                            config.steps)
            if eval_due is not None:
                due = stop_reason is not None or eval_due(step, elapsed)
            else:
                due = stop_reason is not None or (config.eval_every > 0 and step % config.eval_every == 0)
            metrics = _evaluate(encoder, eval_pairs) if due else None
            remaining = (config.steps - step) * train_s / (step - first)
            if config.time_budget_s is not None:
                remaining = min(remaining, max(0.0, config.time_budget_s - elapsed))
            yield TrainEvent(step=step, total_steps=config.steps, loss=loss, lr=lr,
                             elapsed_s=time.perf_counter() - start, metrics=metrics,
                             done=stop_reason is not None, train_s=train_s,
                             remaining_s=0.0 if stop_reason else remaining, stop_reason=stop_reason,
                             snapshot=partial(snapshot, step))
            if stop_reason is not None:
                return
    finally:
        encoder.eval()
        encoder.zero_grad(set_to_none=True)


def _snapshot(step: int, optimizer: torch.optim.Optimizer, schedule, scaler: torch.amp.GradScaler) -> TrainState:
    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return TrainState(step=step, optimizer=optimizer.state_dict(), schedule=schedule.state_dict(),
                      scaler=scaler.state_dict(), random=rng)


def _resume(state: TrainState, optimizer: torch.optim.Optimizer, schedule, scaler: torch.amp.GradScaler,
            batches: Iterator[np.ndarray], processes: distributed.Processes, config: TrainConfig) -> int:
    """Load ``state`` into the run's objects and skip the batches already trained on; the first step."""
    optimizer.load_state_dict(state.optimizer)
    schedule.load_state_dict(state.schedule)
    if state.scaler:
        scaler.load_state_dict(state.scaler)
    for _ in range(state.step):  # the same batch order as a run that never stopped
        next(batches)
    if processes.is_distributed:  # a checkpoint holds rank 0's random state: each process draws afresh
        torch.manual_seed(config.seed + processes.rank + processes.world_size * state.step)
    else:
        torch.set_rng_state(state.random["torch"])
        if "cuda" in state.random and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state.random["cuda"])
        np.random.set_state(state.random["numpy"])
        random.setstate(state.random["python"])
    logger.info("Resuming at step %d of %d.", state.step, config.steps)
    return state.step


def _step(encoder: Encoder, embedder: nn.Module, batch: list, config: TrainConfig,
          optimizer: torch.optim.Optimizer, processes: distributed.Processes,
          scaler: torch.amp.GradScaler | None = None) -> float:
    """One update; ``embedder`` is ``_Embedder(encoder)``, in DistributedDataParallel when distributed."""
    optimizer.zero_grad(set_to_none=True)
    scaler = scaler or torch.amp.GradScaler(enabled=False)

    def loss_of(columns: list[torch.Tensor]) -> torch.Tensor:
        return _contrast([processes.gather(z) for z in columns], config)  # all processes' rows

    if config.mini_batch_size:
        loss = cached_backward(embedder, batch, config.mini_batch_size, loss_of,
                               no_sync=lambda: processes.no_sync(embedder), scale=scaler.scale)
    else:
        loss = loss_of(embedder(batch))
        scaler.scale(loss).backward()
    if config.max_grad_norm > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(encoder.parameters(), config.max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


def _loss(encoder: Encoder, batch: list, config: TrainConfig) -> torch.Tensor:
    """The SimCSE loss of one batch (encoder in train mode)."""
    return _contrast(_embed(encoder, batch, config), config)


def _embed(encoder: Encoder, batch: list, config: TrainConfig) -> list[torch.Tensor]:
    """The vectors of one batch as columns, (B, D) each: [view 1, view 2] or [anchors, positives(, hard)]."""
    if config.mode == "unsup":
        tokens = encoder.tokenize(batch, token_limit=config.max_length)  # each (B, T), tokenized once
        if config.fixed_dropout_mask:  # one mask for both views: two identical vectors, no augmentation left
            z = encoder(tokens)  # (B, D)
            return [z, z]
        z1, z2 = _encode_views(encoder, tokens)  # (B, D) each, different dropout masks
        return [z1, z2]
    columns = list(zip(*batch))  # 2 or 3 tuples of B sentences: anchors, positives[, hard negatives]
    sentences = [s for column in columns for s in column]  # kB sentences, column after column
    tokens = encoder.tokenize(sentences, token_limit=config.max_length)  # each (kB, T)
    z = encoder(tokens)  # (kB, D)
    return list(z.chunk(len(columns)))  # anchors, positives[, hard negatives]: (B, D) each


def _contrast(columns: list[torch.Tensor], config: TrainConfig) -> torch.Tensor:
    """simcse_loss of the columns made by ``_embed``."""
    first, second, *hard = columns
    return simcse_loss(first, second, hard[0] if hard else None, temperature=config.temperature,
                       hard_negative_weight=config.hard_negative_weight)


class _Embedder(nn.Module):
    """``_embed`` as a module, so that DistributedDataParallel can wrap it (its parameters: the encoder's)."""

    def __init__(self, encoder: Encoder, config: TrainConfig) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = config

    def forward(self, batch: list) -> list[torch.Tensor]:
        return _embed(self.encoder, batch, self.config)


def _encode_views(encoder: Encoder, tokens: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two dropout views of one tokenized batch.

    One call on the batch stacked on itself draws independent dropout masks for the two copies of each row,
    exactly like two calls, and is faster than two (see the module's docstring).
    """
    stacked = {key: torch.cat([value, value]) for key, value in tokens.items()}  # each (2B, T)
    z = encoder(stacked)  # (2B, D)
    z1, z2 = z.chunk(2)  # (B, D) each
    return z1, z2


def _prepare_encoder(encoder: Encoder, config: TrainConfig) -> None:
    """Set dropout, switch the pooler if asked, and record the training settings in ``encoder.config``."""
    from simcse_core.model.encoder import make_pooler

    set_dropout(encoder.model, config.dropout)  # also in its config: a saved config.json carries the rate
    head = encoder.config.head
    name = config.pooler or encoder.pooler.name
    if name == "cls":
        # A head trained by SimCSE here is trained further; any other starts fresh (seeded), as in the official
        # code: a checkpoint's own pooler layer (BERT's next-sentence head) is for inference, not a start.
        keep = encoder.pooler.mlp is not None and encoder.config.head == "trained"
        state = encoder.pooler.state_dict() if keep else None
        pooler, _ = make_pooler("cls", encoder.dim, config.resolved_mlp_only_train, state)
        encoder.pooler = pooler.to(encoder.device)
        head = "trained"  # from here on, whatever its start
    elif config.pooler is not None:
        encoder.pooler = Pooler(config.pooler, encoder.dim).to(encoder.device)
        head = "none"
    encoder.reset_views()
    # The inference limit (encoder.config.max_length) is not the training length and is left as it is.
    encoder.config = replace(encoder.config, pooler=encoder.pooler.name,
                             mlp_only_train=encoder.pooler.mlp_only_train, dropout=config.dropout, head=head)


def _make_optimizer(encoder: Encoder, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW; like Hugging Face's Trainer, biases and LayerNorm weights (1-D tensors) get no weight decay.

    torch's fused AdamW on CPU and CUDA (the same update in one kernel): measured on 2 cores with
    all-MiniLM-L6-v2, update + clipping 81 ms instead of 444 ms for the per-tensor loop, a quarter of a step.
    """
    params = [p for p in encoder.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = encoder.device.type in ("cpu", "cuda")
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr, betas=(0.9, config.adam_beta2),
                             eps=1e-8, fused=fused)


def _batch_indices(n: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Endless batches of ``batch_size`` indices: a seeded permutation per epoch, its remainder dropped."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for first in range(0, n - batch_size + 1, batch_size):
            yield order[first : first + batch_size]


def _evaluate(encoder: Encoder, eval_pairs: ScoredPairs | None) -> dict[str, float] | None:
    """The embedding report in eval mode, without touching the random numbers training uses."""
    if eval_pairs is None:
        return None
    from simcse_core.evaluation.metrics import embedding_report

    encoder.eval()
    with torch.random.fork_rng(devices=[]):
        states = random.getstate(), np.random.get_state()
        try:
            report = embedding_report(encoder, eval_pairs)
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
    return {name: float(value) for name, value in report.items()}


def _check_data(data: Sequence[Example], mode: TrainMode) -> list:
    """The examples as a list, or a ValueError that says what is wrong."""
    if isinstance(data, str) or not isinstance(data, Sequence):
        raise ValueError(f"Training data must be a list of examples, got {type(data).__name__}.")
    examples = list(data)
    if mode == "unsup":
        for k, item in enumerate(examples):
            if not isinstance(item, str):
                hint = " (pairs and triplets are for mode 'sup')" if isinstance(item, (tuple, list)) else ""
                raise ValueError(f"Unsupervised SimCSE trains on sentences: example {k} is a "
                                 f"{type(item).__name__}, not a str{hint}.")
        if len(examples) < 2:
            raise ValueError(f"Unsupervised SimCSE needs at least 2 sentences (the other sentences of a "
                             f"batch are the negatives); got {len(examples)}.")
        return examples
    sizes = set()
    for k, item in enumerate(examples):
        if isinstance(item, str):
            raise ValueError(f"Supervised SimCSE trains on (anchor, positive[, hard_negative]) tuples: "
                             f"example {k} is a single sentence (use mode 'unsup' for plain sentences).")
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3) or not all(
                isinstance(s, str) for s in item):
            raise ValueError(f"Example {k} must be (anchor, positive) or (anchor, positive, hard_negative) "
                             f"strings, got {item!r:.120}.")
        sizes.add(len(item))
    if len(sizes) > 1:
        raise ValueError("The examples mix pairs and triplets; give every example a hard negative or none.")
    if len(examples) < 2:
        raise ValueError(f"Supervised SimCSE needs at least 2 examples (the other examples of a batch are "
                         f"the negatives); got {len(examples)}.")
    return [tuple(item) for item in examples]


# The app's one-minute live fine-tune (and bench/live_finetune.py): the paper's unsupervised settings, except its
# length (a time budget of a minute on a 2-core CPU, evaluations included) and its starting vector (the bundled
# model's raw [CLS], anisotropic before training, so the gain shows). The app and the bench read it from here.
LIVE_RUN = TrainConfig(steps=250, pooler="cls_before_pooler", time_budget_s=60.0)
LIVE_RUN_EVALUATIONS = 6  # STS evaluations in a live run, including before and after


@dataclass
class EvaluationSchedule:
    """When a live run evaluates: at fixed fractions of its progress, measured on this run as it goes.

    Progress after a step is the larger of steps done / steps and seconds elapsed / time budget, so the marks
    fall at the same share of the run whether a step takes 0.3 s on idle cores or 3 s under load (a schedule
    from an estimated step time evaluated only at step 0 on a loaded server). Pass it as ``eval_due``.
    """

    steps: int
    time_budget_s: float | None
    evaluations: int = LIVE_RUN_EVALUATIONS  # including before (step 0) and after (the last step)
    first: float = 0.08  # the first evaluation after the start, as a share of the run
    _next: int = 0  # index of the next mark

    @property
    def marks(self) -> list[float]:
        between = max(0, self.evaluations - 2)
        if between == 0:
            return []
        if between == 1:
            return [0.5]
        return [self.first + (0.9 - self.first) * k / (between - 1) for k in range(between)]

    def __call__(self, step: int, elapsed_s: float) -> bool:
        progress = step / max(1, self.steps)
        if self.time_budget_s:
            progress = max(progress, elapsed_s / self.time_budget_s)
        marks, due = self.marks, False
        while self._next < len(marks) and progress >= marks[self._next]:
            self._next, due = self._next + 1, True
        return due
