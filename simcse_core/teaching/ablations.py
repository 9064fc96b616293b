"""The paper's ablations in miniature: presets that each train for about two minutes on a 2-core CPU.

Each :class:`AblationPreset` is one row of an ablation table in Gao, Yao & Chen (2021), with the paper's
STS-B development figure stored beside it:

- dropout (Table 3, unsupervised BERT-base): p = 0 / 0.1 / 0.5, and "fixed 0.1" where both views share one
  dropout mask (:attr:`simcse_core.training.train.TrainConfig.fixed_dropout_mask`);
- temperature τ (Appendix D, Table D.1): 0.001 / 0.01 / 0.05 / 0.1 / 1. The paper does not name the setting;
  its τ = 0.05 figure (86.2) is the supervised default of Table 7, so the table is supervised BERT-base. The
  miniature runs it unsupervised, where there are enough sentences for a two-minute run;
- hard negatives (Table 7, supervised BERT-base): none, and α = 0.5 / 1 (α is ``hard_negative_weight``).

The miniature differs from the paper in its starting point: the bundled all-MiniLM-L6-v2 read through its raw
[CLS] vector (pooler ``cls_before_pooler``) already scores about 80 on STS-B dev, because the model was trained
for sentence similarity; the paper starts from a raw BERT. So the miniature shows the
paper's *direction* for some settings and not others, and never its size: :data:`MINIATURE_CAVEAT` says this
where the figures are shown. With a raw BERT (online: ``bert-base-uncased``) the paper's effect should appear
(not measured here: offline).

A run is: :func:`start` (a private copy of the base encoder, the preset's data and settings, a
:func:`simcse_core.training.train.train` iterator), then :func:`summarize` on the events.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from simcse_core.paths import ASSETS_DIR
from simcse_core.training.train import TrainConfig, TrainEvent, train

if TYPE_CHECKING:
    from simcse_core.evaluation.sets import ScoredPairs
    from simcse_core.model.encoder import Encoder

logger = logging.getLogger(__name__)

AblationGroup = Literal["dropout", "temperature", "hard_negatives"]
GROUPS: tuple[AblationGroup, ...] = ("dropout", "temperature", "hard_negatives")
GROUP_TITLES = {
    "dropout": "Dropout (paper Table 3, unsupervised)",
    "temperature": "Temperature τ (paper Table D.1)",
    "hard_negatives": "Hard negatives and their weight α (paper Table 7, supervised)",
}
ASSETS = ASSETS_DIR
START_POOLER = "cls_before_pooler"  # the raw [CLS] vector: the weakest start the bundled model offers
EVAL_SAMPLE = 300  # STS-B dev pairs scored during a preset run (the full set: pass eval_pairs yourself)
TIME_BUDGET_S = 300.0  # the app stops a preset after this long (a busy machine); the benchmark runs every step

# The miniature's settings. Unsupervised: the paper's (batch 64, lr 3e-5, max length 32) for 100 steps, about
# 70 s of training on 2 idle cores. Supervised: 250 hand-written triplets, batch 32, lr 5e-5 (paper: 5e-5 for
# supervised BERT-base), 50 steps (about six passes over the triplets).
UNSUP = TrainConfig(mode="unsup", steps=100, batch_size=64, lr=3e-5, temperature=0.05, dropout=0.1,
                    max_length=32, eval_every=25, seed=42)
SUP = TrainConfig(mode="sup", steps=50, batch_size=32, lr=5e-5, temperature=0.05, dropout=0.1, max_length=32,
                  eval_every=25, seed=42)

MINIATURE_CAVEAT = (
    "Our miniature starts from a model that already learned sentence meaning (all-MiniLM-L6-v2, STS-B dev "
    "about 80 through its raw [CLS] vector), trains for one or two minutes instead of an hour, and uses one "
    "seed. So differences of a point or two are noise here, and settings that ruin a raw BERT in the paper "
    "(no dropout, a shared mask) barely hurt a model that has nothing left to collapse from. With a raw "
    "BERT (online: bert-base-uncased) the paper's effect should appear; it was not measured here (offline)."
)


@dataclass(frozen=True)
class AblationPreset:
    """One row of one of the paper's ablation tables, as a short run of our trainer."""

    key: str  # stable id, e.g. "dropout-0.1"
    group: AblationGroup  # which table it belongs to
    label: str  # short name for plots and tables, e.g. "dropout 0.1"
    config: TrainConfig  # the training settings of the miniature
    paper_stsb_dev: float  # the paper's STS-B dev Spearman x100 for this row (BERT-base)
    paper_source: str  # where in the paper, e.g. "Table 3"
    hard_negatives: bool = True  # sup only: train on triplets (True) or on pairs, the third column dropped


def _preset(key: str, group: AblationGroup, label: str, config: TrainConfig, paper: float, source: str,
            **changes) -> AblationPreset:
    hard = changes.pop("hard_negatives", True)
    return AblationPreset(key, group, label, replace(config, **changes), paper, source, hard)


PRESETS: tuple[AblationPreset, ...] = (
    _preset("dropout-0", "dropout", "dropout 0", UNSUP, 71.1, "Table 3", dropout=0.0),
    _preset("dropout-0.1", "dropout", "dropout 0.1 (default)", UNSUP, 82.5, "Table 3"),
    _preset("dropout-0.5", "dropout", "dropout 0.5", UNSUP, 71.0, "Table 3", dropout=0.5),
    _preset("dropout-fixed-0.1", "dropout", "fixed mask 0.1", UNSUP, 43.6, "Table 3", fixed_dropout_mask=True),
    _preset("tau-0.001", "temperature", "τ 0.001", UNSUP, 84.9, "Table D.1", temperature=0.001),
    _preset("tau-0.01", "temperature", "τ 0.01", UNSUP, 85.4, "Table D.1", temperature=0.01),
    _preset("tau-0.05", "temperature", "τ 0.05 (default)", UNSUP, 86.2, "Table D.1"),
    _preset("tau-0.1", "temperature", "τ 0.1", UNSUP, 82.0, "Table D.1", temperature=0.1),
    _preset("tau-1", "temperature", "τ 1", UNSUP, 64.0, "Table D.1", temperature=1.0),
    _preset("sup-no-hard", "hard_negatives", "no hard negative", SUP, 84.9, "Table 7", hard_negatives=False),
    _preset("sup-alpha-0.5", "hard_negatives", "hard negative α 0.5", SUP, 86.1, "Table 7",
            hard_negative_weight=0.5),
    _preset("sup-alpha-1", "hard_negatives", "hard negative α 1", SUP, 86.2, "Table 7"),
)
PRESETS_BY_KEY = {preset.key: preset for preset in PRESETS}


def get_preset(key: str) -> AblationPreset:
    """The preset named ``key`` (ValueError naming the choices otherwise)."""
    try:
        return PRESETS_BY_KEY[key]
    except KeyError:
        raise ValueError(f"Unknown ablation preset {key!r}; choose one of {', '.join(PRESETS_BY_KEY)}.") from None


def presets_in(group: AblationGroup) -> list[AblationPreset]:
    """The presets of one ablation table, in the paper's column order."""
    if group not in GROUPS:
        raise ValueError(f"Unknown ablation group {group!r}; choose one of {', '.join(GROUPS)}.")
    return [preset for preset in PRESETS if preset.group == group]


def training_data(preset: AblationPreset) -> list:
    """The preset's examples: unsup, STS-B train sentences (else the bundled sentences); sup, bundled triplets.

    Supervised presets read ``assets/sample_sup.csv`` (anchor, entailment-like positive, contradiction-like
    hard negative); without hard negatives the third column is dropped.
    """
    from simcse_core.data import load_sentences, load_triplets
    from simcse_core.evaluation.sets import stsb_available, stsb_train_sentences

    if preset.config.mode == "unsup":
        if stsb_available():
            return stsb_train_sentences()
        sentences = load_sentences(ASSETS / "sample_unsup.txt") + load_sentences(ASSETS / "corpus.csv")
        return list(dict.fromkeys(sentences))
    triplets = load_triplets(ASSETS / "sample_sup.csv")
    return triplets if preset.hard_negatives else [(a, p) for a, p, _ in triplets]


def eval_sample(pairs: ScoredPairs, size: int = EVAL_SAMPLE, seed: int = 0) -> ScoredPairs:
    """A fixed random sample of ``size`` pairs (all of them when there are fewer), in the set's order."""
    if len(pairs) <= size:
        return pairs
    keep = np.sort(np.random.default_rng(seed).choice(len(pairs), size=size, replace=False))
    return dataclasses.replace(
        pairs, name=f"{pairs.name} ({size}-pair sample)", sentence1=tuple(pairs.sentence1[i] for i in keep),
        sentence2=tuple(pairs.sentence2[i] for i in keep), scores=tuple(pairs.scores[i] for i in keep))


def start(
    preset: AblationPreset,
    base: Encoder,
    eval_pairs: ScoredPairs,
    time_budget_s: float | None = None,
    data: Sequence | None = None,
) -> tuple[Encoder, Iterator[TrainEvent]]:
    """A private copy of ``base`` seen through :data:`START_POOLER`, and the training iterator of the preset.

    ``base`` is never changed (the copy is trained). ``data`` overrides :func:`training_data`.
    """
    encoder = base.with_pooler(START_POOLER).copy()
    examples = list(data) if data is not None else training_data(preset)
    config = replace(preset.config, time_budget_s=time_budget_s)
    logger.info("Ablation %s: %d examples, %s", preset.key, len(examples), config)
    return encoder, train(encoder, examples, config, eval_pairs=eval_pairs)


@dataclass(frozen=True)
class AblationResult:
    """What one preset run measured, next to the paper's figure."""

    key: str
    group: AblationGroup
    label: str
    paper_stsb_dev: float  # the paper's figure (a raw BERT-base trained for an hour or more)
    paper_source: str
    eval_name: str  # the set our Spearman is measured on
    steps: int  # optimizer steps made
    train_s: float  # seconds in training steps (evaluations excluded)
    history: tuple[dict[str, float], ...]  # one dict per evaluation: step, spearman, alignment, uniformity, ...

    @property
    def before(self) -> dict[str, float]:
        """Metrics at step 0."""
        return self.history[0]

    @property
    def after(self) -> dict[str, float]:
        """Metrics at the last evaluation."""
        return self.history[-1]

    @property
    def gain(self) -> float:
        """Spearman x100 after minus before."""
        return self.after["spearman"] - self.before["spearman"]

    def row(self) -> dict[str, object]:
        """A flat dict for tables, JSON and CSV."""
        return {"preset": self.key, "group": self.group, "setting": self.label,
                "paper_stsb_dev": self.paper_stsb_dev, "paper_source": self.paper_source,
                "ours_before": self.before["spearman"], "ours_after": self.after["spearman"],
                "ours_gain": self.gain, "alignment_after": self.after["alignment"],
                "uniformity_after": self.after["uniformity"], "anisotropy_after": self.after.get("anisotropy"),
                "steps": self.steps, "train_s": self.train_s, "eval_set": self.eval_name}


def summarize(preset: AblationPreset, events: Sequence[TrainEvent], eval_name: str) -> AblationResult:
    """Collect a finished (or stopped) run's evaluations into an :class:`AblationResult`.

    Raises:
        ValueError: no evaluation was made (the run was stopped before it measured the start).
    """
    history = tuple({"step": float(e.step), **e.metrics} for e in events if e.metrics)
    if not history:
        raise ValueError(f"The {preset.label} run made no evaluation, so there is nothing to compare.")
    last = events[-1]
    return AblationResult(preset.key, preset.group, preset.label, preset.paper_stsb_dev, preset.paper_source,
                          eval_name, last.step, last.train_s, history)


def agreement(results: Sequence[AblationResult]) -> dict[str, object]:
    """Whether our runs of one group rank the settings as the paper does.

    Returns the paper's best setting, ours, and the Spearman rank correlation between the paper's figures and
    our final Spearman (NaN with fewer than three runs).
    """
    from scipy.stats import spearmanr

    if not results:
        raise ValueError("No results to compare.")
    paper_best = max(results, key=lambda r: r.paper_stsb_dev)
    ours_best = max(results, key=lambda r: r.after["spearman"])
    rho = math.nan
    if len(results) >= 3:
        rho = float(spearmanr([r.paper_stsb_dev for r in results], [r.after["spearman"] for r in results])[0])
    return {"paper_best": paper_best.label, "ours_best": ours_best.label, "same_best": paper_best is ours_best,
            "rank_correlation": rho}


DEFAULT_IN_GROUP = {"dropout": "dropout-0.1", "temperature": "tau-0.05", "hard_negatives": "sup-alpha-1"}
NOISE_POINTS = 1.0  # differences of our final Spearman smaller than this are within one-seed noise


def disagreements(results: Sequence[AblationResult]) -> list[str]:
    """Plain sentences where our runs and the paper disagree, each setting compared with its group's default.

    A setting disagrees when the paper's difference from the default and ours point in opposite directions
    (ours beyond :data:`NOISE_POINTS`), or when the paper's difference is large (3+ points) and ours is within
    noise or less than a quarter of it. Only groups whose default has been run are compared.
    """
    lines = []
    by_key = {r.key: r for r in results}
    for group, default_key in DEFAULT_IN_GROUP.items():
        default = by_key.get(default_key)
        if default is None:
            continue
        for result in results:
            if result.group != group or result.key == default_key:
                continue
            paper = result.paper_stsb_dev - default.paper_stsb_dev
            ours = result.after["spearman"] - default.after["spearman"]
            opposite = paper * ours < 0 and abs(ours) > NOISE_POINTS
            muted = abs(paper) >= 3 and (abs(ours) <= NOISE_POINTS or abs(ours) < abs(paper) / 4)
            if opposite or muted:
                lines.append(f"{result.label}: the paper finds {paper:+.1f} points against {default.label}; "
                             f"ours {ours:+.1f}.")
    return lines


def unequal_lengths(results: Sequence[AblationResult]) -> str | None:
    """A warning when the runs made different numbers of steps (a time budget cut some short), else None."""
    steps = sorted({r.steps for r in results})
    if len(steps) < 2:
        return None
    return (f"These runs made different numbers of steps ({', '.join(map(str, steps))}): the machine was busy and "
            f"the time budget stopped some early. Compare runs of the same length.")
