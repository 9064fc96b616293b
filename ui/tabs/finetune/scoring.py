"""What a fine-tune's STS score is shown beside: the paper's row in the run's setting, the model trained at scale,
and the prepared run of the same recipe."""

from __future__ import annotations

from dataclasses import dataclass

from simcse_core.teaching import lessons, paper_rows
from ui.present import text
from ui.serving import runs


@dataclass(frozen=True)
class Scoring:
    """What a run's STS score is shown beside: dashed lines on its chart, and a note for its status."""

    references: tuple[tuple[float, str], ...] = ()  # (value, label) lines on the STS chart
    note: str = ""  # after the score in the status


def scoring(job: runs.FinetuneJob, eval_name: str) -> Scoring:
    """The paper's row in the run's setting (or a line saying no row matches, and how ours differs) and, for a
    run from the raw model, the model trained at scale — when ours is measured on STS-B dev (a sample of it, or
    all of it: the note and the chart say which; the lines are figures on the full dev set)."""
    if not eval_name.startswith("STS-B dev"):
        return Scoring()
    hard_negatives = job.config.mode == "sup" and len(job.data.examples[0]) == 3
    matched = paper_rows.match(job.config, hard_negatives, pooler=job.base_pooler, model=job.base_name,
                               data=job.data.summary())
    figure = matched.figure
    lines = [(figure.value, f"paper {figure.value:.1f}: {figure.table} “{figure.row}”")] if figure else []
    note = matched.said()
    if job.base_name == lessons.START_MODEL:
        scale = lessons.TRAINED_AT_SCALE
        lines.append((scale.stsb_dev, f"{text.SCALE_NAME} {scale.stsb_dev:.1f} (trained at scale)"))
        note += f"; trained at scale: {text.trained_at_scale(short=True)}"
        prepared = lessons.PREPARED
        if lessons.same_recipe(job.config) and prepared.stsb_dev:
            lines.append((prepared.stsb_dev, f"{prepared.recipe().removeprefix('the ')}, "
                                             f"{prepared.train_min:.0f} min: {prepared.stsb_dev:.1f}"))
            note += (f"; {prepared.recipe()} trained {prepared.train_min:.0f} minutes (`{prepared.model}`): "
                     f"{prepared.stsb_dev:.1f} on the full dev set")
    return Scoring(tuple(lines), f"Beside it: {note} (ours on {eval_name}).")
