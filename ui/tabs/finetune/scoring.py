"""What a fine-tune's STS score is shown beside: the paper's row in the run's setting, the model trained at scale,
and the prepared run of the same recipe."""


from __future__ import annotations

import logging
from dataclasses import dataclass

from simcse_core.evaluation import paper
from simcse_core.evaluation.paper import PaperFigure
from simcse_core.teaching import lessons
from simcse_core.training.train import TrainConfig
from ui.present import text
from ui.serving import runs

logger = logging.getLogger(__name__)

# Table 6's rows by our pooler (and, for [CLS], whether its MLP is used in training only).
TABLE6_ROWS = {("cls", True): "[CLS] w/ MLP (train)", ("cls", False): "[CLS] w/ MLP",
               ("cls_before_pooler", True): "[CLS] w/o MLP", ("cls_before_pooler", False): "[CLS] w/o MLP",
               ("avg_first_last", True): "First-last avg.", ("avg_first_last", False): "First-last avg."}


def paper_figure(config: TrainConfig, hard_negatives: bool) -> PaperFigure:
    """The paper's STS-B dev figure in the run's setting: Table 6's row of its pooler (unsupervised, or
    supervised with hard negatives), else the setting's default row (Table 3 p = 0.1; Table 7 α = 1); supervised
    pairs without hard negatives: Table 7's "N/A"."""
    row = TABLE6_ROWS.get((config.pooler, config.resolved_mlp_only_train))
    if config.mode == "unsup":
        return paper.TABLE6[row]["unsup"] if row else paper.TABLE3["p = 0.1"]
    if not hard_negatives:
        return paper.TABLE7["N/A (no hard negative)"]
    return paper.TABLE6[row]["sup"] if row else paper.TABLE7["Contradiction, α = 1.0"]


@dataclass(frozen=True)
class Scoring:
    """What a run's STS score is shown beside: dashed lines on its chart, and a note for its status."""

    references: tuple[tuple[float, str], ...] = ()  # (value, label) lines on the STS chart
    note: str = ""  # after the score in the status


def scoring(job: runs.FinetuneJob, eval_name: str) -> Scoring:
    """The paper's figure in the run's setting and, for a run from the raw model, the model trained at scale —
    when ours is measured on STS-B dev (a sample of it, or all of it: the note and the chart say which; the lines
    are figures on the full dev set)."""
    if not eval_name.startswith("STS-B dev"):
        return Scoring()
    examples = job.data.examples
    figure = paper_figure(job.config, job.config.mode == "sup" and len(examples[0]) == 3)
    setting = "unsupervised" if figure.setting == "unsup" else "supervised"
    lines = [(figure.value, f"paper {figure.value:.1f}: {figure.table} “{figure.row}”")]
    note = (f"paper, BERT-base in the same setting ({setting}; {figure.table}, row “{figure.row}”): "
            f"{figure.value:.1f} on the full dev set")
    if job.base_name == lessons.START_MODEL:
        scale = lessons.TRAINED_AT_SCALE
        lines.append((scale.stsb_dev, f"{text.SCALE_NAME} {scale.stsb_dev:.1f} (trained at scale)"))
        note += f"; trained at scale: {text.trained_at_scale(short=True)}"
        prepared = lessons.PREPARED
        if lessons.same_recipe(job.config) and prepared.stsb_dev:
            lines.append((prepared.stsb_dev, f"same recipe, {prepared.train_min:.0f} min: {prepared.stsb_dev:.1f}"))
            note += (f"; the same recipe trained {prepared.train_min:.0f} minutes (`{prepared.model}`): "
                     f"{prepared.stsb_dev:.1f} on the full dev set")
    return Scoring(tuple(lines), f"Beside it: {note} (ours on {eval_name}).")


