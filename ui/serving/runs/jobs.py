"""Jobs: what a run trains (a fine-tune or an ablation preset), and what is kept when it ends."""


from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from simcse_core.training.train import LIVE_RUN_EVALUATIONS, EvaluationSchedule, TrainConfig, TrainEvent
from ui.serving.replays import ReplayKey, data_fingerprint
from ui.serving.runs.updates import RunHistory
from ui.serving.session import FineTuneRecord, PresetRun, Session
from ui.serving.studio import Studio


@dataclass
class Training:
    """A run in progress (its slot held)."""

    title: str
    base: Any  # the shared base Encoder (read-only): compaction keeps only what differs from it
    encoder: Any  # the private copy being trained
    events: Iterator[TrainEvent]
    eval_pairs: Any  # simcse_core.evaluation.sets.ScoredPairs measured during the run
    data: str
    history: RunHistory
    thread_name: str
    run_id: int | None = None
    seen: list[TrainEvent] = field(default_factory=list)  # every event, without its optimizer snapshot
    replay_key: ReplayKey | None = None  # set when a run of every step may be replayed to later requests
    trained: Any = None  # a float32 copy of the trained model, kept before compaction for replays

    @property
    def eval_name(self) -> str:
        return self.eval_pairs.name

    @property
    def last(self) -> TrainEvent | None:
        return self.seen[-1] if self.seen else None

    def record(self, event: TrainEvent) -> None:
        self.seen.append(dataclasses.replace(event, snapshot=None))  # a snapshot holds the optimizer
        self.history.add(event)


class Job(Protocol):
    where: str  # names the run in logs and error messages
    remeasure: bool  # measure a stopped run at its last step
    downloads: bool  # write the trained float32 model as a zip (before compaction) and the corpus embeddings

    @property
    def budget_s(self) -> float: ...

    def expected_s(self, studio: Studio) -> float: ...

    def begin(self, studio: Studio, session: Session) -> Training: ...

    def keep(self, studio: Studio, session: Session, training: Training, model_zip: str | None
             ) -> tuple[Any, tuple[FineTuneRecord, ...]]: ...


@dataclass(frozen=True)
class FinetuneJob:
    """A visitor's fine-tune: ``config`` on ``data``, from ``base_name`` (seen through ``base_pooler``)."""

    data: Any  # simcse_core.data.TrainingData
    config: TrainConfig  # evaluations are spaced by the run's measured progress (EvaluationSchedule)
    base_name: str  # canonical name of the base model
    base_pooler: str  # the pooler the base side of every comparison uses
    where: str = "run_finetune"
    remeasure: bool = True
    downloads: bool = True

    @property
    def budget_s(self) -> float:
        return self.config.time_budget_s

    def expected_s(self, studio: Studio) -> float:
        return expected_seconds(studio, self.config, len(self.data.examples))

    def replay_key(self, studio: Studio) -> ReplayKey | None:
        """The key of this run's settings in the server's replays: only runs from a catalogue model."""
        from simcse_core.model.catalogue import PACKAGED_MODELS, SHIPPED_MODELS

        if self.base_name not in PACKAGED_MODELS and self.base_name not in SHIPPED_MODELS:
            return None
        return ReplayKey(self.base_name, self.base_pooler, self.config, data_fingerprint(self.data.examples),
                         studio.config.live_eval_pairs)

    def begin(self, studio: Studio, session: Session) -> Training:
        from simcse_core.evaluation.sets import default_eval_pairs
        from simcse_core.training.train import train

        eval_pairs = default_eval_pairs().sample(studio.config.live_eval_pairs)
        config = self.config
        # Evaluations at shares of this run's measured progress (steps or seconds), from its first steps on.
        schedule = EvaluationSchedule(config.steps, config.time_budget_s, LIVE_RUN_EVALUATIONS)
        base = studio.registry.get(self.base_name, self.base_pooler)
        encoder = base.copy()  # private: the shared model is never trained
        examples = self.data.examples
        run_id = session.new_run_id()
        return Training(title=f"run {run_id}", base=base, encoder=encoder,
                        events=train(encoder, examples, config, eval_pairs=eval_pairs, eval_due=schedule),
                        eval_pairs=eval_pairs, data=self.data.summary(), history=self.history(eval_pairs.name),
                        thread_name=f"train-run-{run_id}", run_id=run_id)

    def history(self, eval_name: str) -> RunHistory:
        """An empty history of this run, with the loss of random guessing for its batch."""
        from simcse_core.training.losses import chance_loss

        examples = self.data.examples
        triplets = self.config.mode == "sup" and len(examples[0]) == 3
        return RunHistory(eval_name=eval_name, chance=chance_loss(min(self.config.batch_size, len(examples)),
                                                                   hard_negatives=triplets))

    def keep(self, studio: Studio, session: Session, training: Training, model_zip: str | None):
        last, history = training.last, training.history
        if last.train_s > 0:  # learn how long a step takes here, to space the next run's evaluations
            batch = min(self.config.batch_size, len(self.data.examples))
            studio.seconds_per_example = last.train_s / last.step / batch
        record = FineTuneRecord(
            run_id=training.run_id, encoder=training.encoder, base_name=self.base_name, base_pooler=self.base_pooler,
            summary=f"{last.step} steps in {last.elapsed_s:.0f} s on {training.data}", mode=self.config.mode,
            steps=last.step, spearman_before=history.spearman[0] if history.spearman else None,
            spearman_after=history.spearman[-1] if len(history.spearman) > 1 else None,
            eval_name=history.eval_name, model_zip=model_zip,
        )
        return record, tuple(session.add_run(record, studio.config.max_runs))


@dataclass(frozen=True)
class PresetJob:
    """One ablation preset of the paper, in miniature, always from the raw model the lessons start from
    (:data:`simcse_core.teaching.ablations.START_MODEL`), whatever model is picked."""

    preset: Any  # simcse_core.teaching.ablations.AblationPreset
    where: str = "run_preset"
    remeasure: bool = False  # a preset that does not finish is not compared with the paper
    downloads: bool = False

    @property
    def budget_s(self) -> float:
        from simcse_core.teaching import ablations

        return ablations.TIME_BUDGET_S

    def expected_s(self, studio: Studio) -> float:
        return self.budget_s  # a preset trains until its budget

    def begin(self, studio: Studio, session: Session) -> Training:
        from simcse_core.evaluation.sets import default_eval_pairs
        from simcse_core.teaching import ablations

        base = studio.registry.get(ablations.START_MODEL, ablations.START_POOLER)
        eval_pairs = ablations.eval_sample(default_eval_pairs())
        encoder, events = ablations.start(self.preset, base, eval_pairs, time_budget_s=self.budget_s)
        return Training(title=self.preset.label, base=base, encoder=encoder, events=events,
                        eval_pairs=eval_pairs, data=self.preset.paper_source,
                        history=RunHistory(eval_name=eval_pairs.name), thread_name=f"preset-{self.preset.key}")

    def keep(self, studio: Studio, session: Session, training: Training, model_zip: str | None):
        from simcse_core.teaching import ablations

        if not training.last.done:
            return None, ()
        result = ablations.summarize(self.preset, training.seen, training.eval_name)
        session.keep_preset(result, training.seen, PresetRun(training.encoder, f"preset “{self.preset.label}”"))
        return result, ()


def expected_seconds(studio: Studio, config: TrainConfig, examples: int) -> float:
    """How long a run of ``config`` holds its slot, from this server's measured seconds per step (at most its
    budget): what the queue's estimates add up."""
    per_step = studio.seconds_per_example * min(config.batch_size, max(1, examples))
    return min(config.time_budget_s, config.steps * per_step)


def expected_steps(studio: Studio, config: TrainConfig) -> int:
    """Roughly how many steps fit in the time budget (for spacing the evaluations)."""
    per_step = studio.seconds_per_example * config.batch_size
    return max(1, min(config.steps, int(config.time_budget_s / max(per_step, 1e-3))))


