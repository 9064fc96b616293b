"""A run's history and the small typed updates a tab renders (no Gradio here)."""


from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simcse_core.training.train import TrainEvent
from ui.serving.session import FineTuneRecord


@dataclass
class RunHistory:
    """What a run's plots show: the loss of every step, and the metrics of every evaluation."""

    eval_name: str
    chance: float | None = None  # ln(candidates per anchor): the loss of random guessing
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    spearman: list[float] = field(default_factory=list)
    alignment: list[float] = field(default_factory=list)
    uniformity: list[float] = field(default_factory=list)

    def add(self, event) -> None:
        if event.loss is not None:
            self.steps.append(event.step)
            self.losses.append(event.loss)
        if event.metrics:
            self.eval_steps.append(event.step)
            self.spearman.append(event.metrics["spearman"])
            self.alignment.append(event.metrics["alignment"])
            self.uniformity.append(event.metrics["uniformity"])


# --- the updates a tab renders --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Waiting:
    """The run waits for a training slot."""

    position: int  # 1 = next to start
    eta_s: float  # upper bound of the wait (every run ahead uses its whole budget)
    training: int  # runs training server-wide
    waiting: int  # runs waiting server-wide


@dataclass(frozen=True)
class LeftQueue:
    """The visitor left the queue (Stop, or the tab closed) before the run started; nothing was trained."""

    kept: tuple[str, ...]  # labels of the session's earlier runs, still kept


@dataclass(frozen=True)
class Started:
    """The run holds a slot; the model is measured before its first step."""

    title: str  # "run 2", or the preset's label
    eval_name: str  # the STS pairs measured during the run
    data: str  # what it trains on
    replay_of: str | None = None  # a replay (ui.serving.replays): when this server trained the run it replays


@dataclass(frozen=True)
class Progress:
    """A training step (or an evaluation, or the last event)."""

    event: TrainEvent
    history: RunHistory
    new_evaluation: bool  # an evaluation came since the previous Progress
    replayed: bool = False  # an event of a replayed run (ui.serving.replays), drawn at its measured values


@dataclass(frozen=True)
class Problem:
    """Something went wrong, and the run goes on (or is kept as it is): the visitor is told."""

    error: BaseException  # as the visitor sees it (a gr.Error, logged when it happened, with the id it quotes)
    where: str


@dataclass(frozen=True)
class Remeasured:
    """A stopped run was measured at the step it stopped."""

    step: int
    history: RunHistory


@dataclass(frozen=True)
class Packaging:
    """The kept run's downloads are being written."""

    record: FineTuneRecord


@dataclass(frozen=True)
class Finished:
    """The run is over: ``kept`` is what the session keeps (None if nothing was trained)."""

    reason: str  # "Done", "Time budget reached", "Stopped", "Stopped by an error"
    kept: Any  # FineTuneRecord (fine-tune), AblationResult (preset) or None
    dropped: tuple[FineTuneRecord, ...]  # the session's oldest runs, dropped to stay within its cap
    history: RunHistory


RunUpdate = Waiting | LeftQueue | Started | Progress | Problem | Remeasured | Packaging | Finished


