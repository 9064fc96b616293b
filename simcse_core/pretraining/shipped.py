"""The shipped raw model's recipe: the pretraining runs that made ``models/raw-bert``, as data.

``models/raw-bert/MODEL.md`` prints :func:`commands` (a test checks it does), so the recipe is written once.
Each stage continues the previous stage's weights (``--init-from``) with a fresh optimiser and schedule; the
first starts from random weights. Stage 1 is the model of the project's first pretraining sitting (commit
c6cfaa8, on the first corpus of three Debian packages); stages 2 and 3 read the wider corpus
(:data:`simcse_core.pretraining.corpus.EXTRA_SOURCES` added).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from simcse_core.pretraining.mlm import PretrainConfig

SIZE = dict(layers=4, hidden=128, heads=2, intermediate=512, batch_size=128)


@dataclass(frozen=True)
class Stage:
    """One pretraining run of the shipped model."""

    corpus: str  # the corpus folder it reads (``python -m simcse_core corpus --out ...``)
    out: str  # its run folder
    config: PretrainConfig
    init_from: str | None = None  # the previous stage's model, or None for random weights
    stop_at_step: int | None = None  # stopped there (the schedule still follows config.steps)
    ship_to: str | None = None  # where its model was shipped (bf16 shards), the next stage's start


STAGES: tuple[Stage, ...] = (
    Stage("corpus-v1", "raw-run", PretrainConfig(**SIZE, lr=1e-3, warmup=1000, steps=10_000, seed=0),
          stop_at_step=4729, ship_to="raw-bert-v1"),  # the first shipped raw-bert (bf16, read back in fp32)
    Stage("corpus", "raw-run2", PretrainConfig(**SIZE, lr=8e-4, warmup=300, steps=18_000, seed=0, precision="bf16"),
          init_from="raw-bert-v1", stop_at_step=1076),
    Stage("corpus", "raw-run3", PretrainConfig(**SIZE, lr=8e-4, warmup=100, steps=10_000, seed=1, precision="bf16"),
          init_from="raw-run2/model", ship_to="models/raw-bert"),
)


def command(stage: Stage) -> str:
    """The ``python -m simcse_core pretrain`` command of ``stage`` (options that differ from the defaults)."""
    default = PretrainConfig()
    parts = ["python -m simcse_core pretrain", f"--corpus {stage.corpus}/pretrain.txt",
             f"--heldout {stage.corpus}/heldout.txt", f"--out {stage.out}"]
    if stage.init_from:
        parts.append(f"--init-from {stage.init_from}")
    for f in fields(PretrainConfig):
        value = getattr(stage.config, f.name)
        if value != getattr(default, f.name) or f.name in SIZE:
            parts.append(f"--{f.name.replace('_', '-')} {value}")
    if stage.stop_at_step is not None:
        parts.append(f"--stop-at-step {stage.stop_at_step}")
    if stage.ship_to:
        parts.append(f"--ship-to {stage.ship_to}")
    return " ".join(parts)


def commands() -> list[str]:
    """Every command that remakes ``models/raw-bert``, in order (the corpus builds included)."""
    lines = ["python -m simcse_core corpus --no-extra-sources --out corpus-v1 --stsb-dir ../shared/data/stsb",
             "python -m simcse_core corpus --out corpus --stsb-dir ../shared/data/stsb"]
    return lines + [command(stage) for stage in STAGES]
