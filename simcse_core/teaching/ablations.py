"""The paper's ablations in miniature, from the raw language model: presets that each train one short run.

Each :class:`AblationPreset` is one row of an ablation table of Gao, Yao & Chen (2021), with the paper's
figure for that row (:mod:`simcse_core.evaluation.paper`, its table, row and setting) stored beside it. Every
run starts from ``raw-bert`` (:mod:`simcse_core.teaching.lessons`), a BERT pretrained with masked-language
modelling only, as the paper starts from BERT-base, and trains on the lesson's sentences (no STS data):

- augmentation (Table 1, unsupervised): dropout's two views against discrete augmentations of the positive
  (crop, word deletion, delete one word with and without dropout, synonym replacement, MLM 15 %);
- dropout (Table 3, unsupervised): p = 0 / 0.01 / 0.05 / 0.1 / 0.15 / 0.2 / 0.5, and "fixed 0.1" where both
  views share one dropout mask;
- pooler (Table 6, unsupervised column): [CLS] with an MLP, with the MLP in training only, without it, and the
  average of the first and last layers;
- temperature τ (Table D.1): 0.001 / 0.01 / 0.05 / 0.1 / 1. The paper does not name D.1's setting; its τ = 0.05
  figure, 86.2, is the supervised model's, so the table is taken as supervised. The miniature trains it
  unsupervised (the lesson has no labelled pairs to train a supervised run from a raw model) and says so
  (:data:`TEMPERATURE_NOTE`); the dot-product row is left out (the trainer uses cosine only);
- hard negatives (Table 7, supervised): none, and α = 0.5 / 1 / 2, on 250 hand-written triplets.

All runs of a table have the same steps, data and seed; only the row's setting differs. A run is
:func:`start` (a private copy of the base encoder, the preset's data and settings, a
:func:`simcse_core.training.train.train` iterator), then :func:`summarize` on the events.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import numpy as np

from simcse_core.evaluation import paper
from simcse_core.evaluation.paper import PaperFigure
from simcse_core.paths import ASSETS_DIR
from simcse_core.teaching import lessons
from simcse_core.training.train import TrainConfig, TrainEvent, train

if TYPE_CHECKING:
    from simcse_core.evaluation.sets import ScoredPairs
    from simcse_core.model.encoder import Encoder

logger = logging.getLogger(__name__)

AblationGroup = Literal["augmentation", "dropout", "pooler", "temperature", "hard_negatives"]
GROUPS: tuple[AblationGroup, ...] = ("augmentation", "dropout", "pooler", "temperature", "hard_negatives")
Positive = Literal["dropout", "crop", "word_deletion", "delete_one_word", "synonym", "mlm"]
START_MODEL = lessons.START_MODEL
START_POOLER = lessons.START_POOLER
EVAL_SAMPLE = 300  # STS-B dev pairs the app scores a preset on (bench/ablations.py scores the full dev set)
TIME_BUDGET_S = 300.0  # the app stops a preset after this long (a busy machine); the benchmark runs every step

# The miniature's settings: the lesson's unsupervised run (the paper's setting from the raw model) and, for
# Table 7, a supervised run on the 250 hand-written triplets (batch 32, as many steps).
UNSUP = lessons.LESSON_RUN
SUP = replace(UNSUP, mode="sup", batch_size=32, mlp_only_train=None)

TEMPERATURE_NOTE = (
    "Table D.1 does not say whether it is supervised or unsupervised; its τ = 0.05 figure (86.2) is the "
    "supervised model's, so its level is not ours: our τ runs are unsupervised. Compare the shape (which τ is "
    "best, how far τ = 1 falls), not the numbers.")
MINIATURE_CAVEAT = (
    "Our miniature starts, like the paper, from a language model that never learned sentence meaning, but a "
    "small one (4 layers, 128 wide, pretrained for about an hour on 2 CPU cores) trained for about a minute "
    "instead of an hour, with one seed. Its figures sit far below BERT-base's; compare the order of the rows "
    "and the size of the drops, not the levels. Differences of a point or two are within one-seed noise.")


@dataclass(frozen=True)
class AblationPreset:
    """One row of one of the paper's ablation tables, as a short run of our trainer."""

    key: str  # stable id, e.g. "dropout-0.1"
    group: AblationGroup  # which table it belongs to
    label: str  # short name for plots and tables, e.g. "dropout 0.1"
    config: TrainConfig  # the training settings of the miniature
    paper: PaperFigure  # the paper's figure for this row, with its table, row and setting
    positive: Positive = "dropout"  # how the positive view is made
    ratio: float = 0.0  # crop / word deletion / MLM share
    hard_negatives: bool = True  # sup only: train on triplets (True) or on pairs, the third column dropped

    @property
    def paper_stsb_dev(self) -> float:
        return self.paper.value

    @property
    def paper_source(self) -> str:
        return self.paper.table

    @property
    def setting(self) -> Literal["unsup", "sup"]:
        """Unsupervised unless trained on labelled triplets: an augmented view is made without labels, though it
        trains through the pairs path."""
        return "unsup" if self.positive != "dropout" or self.config.mode == "unsup" else "sup"

    @property
    def same_setting(self) -> bool:
        """Whether our run is in the paper row's setting (unsup/sup); when not, the screen says so."""
        return self.setting == self.paper.setting


def _preset(key: str, group: AblationGroup, label: str, config: TrainConfig, figure: PaperFigure,
            positive: Positive = "dropout", ratio: float = 0.0, hard_negatives: bool = True,
            **changes) -> AblationPreset:
    if positive != "dropout":  # pairs (sentence, augmented view): the pairs path, with the unsup pooler rule
        changes = {"mode": "sup", **changes}
    return AblationPreset(key, group, label, replace(config, **changes), figure, positive, ratio, hard_negatives)


T1, T3, T6, D1, T7 = paper.TABLE1, paper.TABLE3, paper.TABLE6, paper.TABLE_D1, paper.TABLE7
PRESETS: tuple[AblationPreset, ...] = (
    _preset("aug-dropout", "augmentation", "dropout only (unsup SimCSE)", UNSUP, T1["None (unsup. SimCSE)"]),
    _preset("aug-crop-10", "augmentation", "crop 10%", UNSUP, T1["Crop 10%"], "crop", 0.1),
    _preset("aug-crop-20", "augmentation", "crop 20%", UNSUP, T1["Crop 20%"], "crop", 0.2),
    _preset("aug-crop-30", "augmentation", "crop 30%", UNSUP, T1["Crop 30%"], "crop", 0.3),
    _preset("aug-del-10", "augmentation", "word deletion 10%", UNSUP, T1["Word deletion 10%"], "word_deletion", 0.1),
    _preset("aug-del-20", "augmentation", "word deletion 20%", UNSUP, T1["Word deletion 20%"], "word_deletion", 0.2),
    _preset("aug-del-30", "augmentation", "word deletion 30%", UNSUP, T1["Word deletion 30%"], "word_deletion", 0.3),
    _preset("aug-del-one", "augmentation", "delete one word", UNSUP, T1["Delete one word"], "delete_one_word"),
    _preset("aug-del-one-no-dropout", "augmentation", "delete one word, no dropout", UNSUP,
            T1["Delete one word, w/o dropout"], "delete_one_word", dropout=0.0),
    _preset("aug-synonym", "augmentation", "synonym replacement", UNSUP, T1["Synonym replacement"], "synonym"),
    _preset("aug-mlm-15", "augmentation", "MLM 15%", UNSUP, T1["MLM 15%"], "mlm", 0.15),
    _preset("dropout-0", "dropout", "dropout 0", UNSUP, T3["p = 0.0"], dropout=0.0),
    _preset("dropout-0.01", "dropout", "dropout 0.01", UNSUP, T3["p = 0.01"], dropout=0.01),
    _preset("dropout-0.05", "dropout", "dropout 0.05", UNSUP, T3["p = 0.05"], dropout=0.05),
    _preset("dropout-0.1", "dropout", "dropout 0.1 (default)", UNSUP, T3["p = 0.1"]),
    _preset("dropout-0.15", "dropout", "dropout 0.15", UNSUP, T3["p = 0.15"], dropout=0.15),
    _preset("dropout-0.2", "dropout", "dropout 0.2", UNSUP, T3["p = 0.2"], dropout=0.2),
    _preset("dropout-0.5", "dropout", "dropout 0.5", UNSUP, T3["p = 0.5"], dropout=0.5),
    _preset("dropout-fixed-0.1", "dropout", "fixed mask 0.1", UNSUP, T3["Fixed 0.1"], fixed_dropout_mask=True),
    _preset("pool-cls-mlp", "pooler", "[CLS] with MLP", UNSUP, T6["[CLS] w/ MLP"]["unsup"], pooler="cls",
            mlp_only_train=False),
    _preset("pool-cls-mlp-train", "pooler", "[CLS] with MLP in training only (the paper's default)", UNSUP,
            T6["[CLS] w/ MLP (train)"]["unsup"], pooler="cls", mlp_only_train=True),
    _preset("pool-cls", "pooler", "[CLS] without MLP (the lesson's default)", UNSUP, T6["[CLS] w/o MLP"]["unsup"]),
    _preset("pool-first-last", "pooler", "first-last average", UNSUP, T6["First-last avg."]["unsup"],
            pooler="avg_first_last"),
    _preset("tau-0.001", "temperature", "τ 0.001", UNSUP, D1["τ = 0.001"], temperature=0.001),
    _preset("tau-0.01", "temperature", "τ 0.01", UNSUP, D1["τ = 0.01"], temperature=0.01),
    _preset("tau-0.05", "temperature", "τ 0.05 (default)", UNSUP, D1["τ = 0.05"]),
    _preset("tau-0.1", "temperature", "τ 0.1", UNSUP, D1["τ = 0.1"], temperature=0.1),
    _preset("tau-1", "temperature", "τ 1", UNSUP, D1["τ = 1"], temperature=1.0),
    _preset("sup-no-hard", "hard_negatives", "no hard negative", SUP, T7["N/A (no hard negative)"],
            hard_negatives=False),
    _preset("sup-alpha-0.5", "hard_negatives", "hard negative α 0.5", SUP, T7["Contradiction, α = 0.5"],
            hard_negative_weight=0.5),
    _preset("sup-alpha-1", "hard_negatives", "hard negative α 1", SUP, T7["Contradiction, α = 1.0"]),
    _preset("sup-alpha-2", "hard_negatives", "hard negative α 2", SUP, T7["Contradiction, α = 2.0"],
            hard_negative_weight=2.0),
)
PRESETS_BY_KEY = {preset.key: preset for preset in PRESETS}
GROUP_TABLES = {"augmentation": "Table 1", "dropout": "Table 3", "pooler": "Table 6", "temperature": "Table D.1",
                "hard_negatives": "Table 7"}


def get_preset(key: str) -> AblationPreset:
    """The preset named ``key`` (ValueError naming the choices otherwise)."""
    try:
        return PRESETS_BY_KEY[key]
    except KeyError:
        raise ValueError(f"Unknown ablation preset {key!r}; choose one of {', '.join(PRESETS_BY_KEY)}.") from None


def presets_in(group: AblationGroup) -> list[AblationPreset]:
    """The presets of one ablation table, in the paper's row order."""
    if group not in GROUPS:
        raise ValueError(f"Unknown ablation group {group!r}; choose one of {', '.join(GROUPS)}.")
    return [preset for preset in PRESETS if preset.group == group]


def training_data(preset: AblationPreset) -> list:
    """The preset's examples: the lesson's sentences (or pairs of a sentence and its augmented view), or the
    bundled triplets for Table 7 (``assets/sample_sup.csv``; without hard negatives the third column dropped).
    """
    from simcse_core.data import load_triplets

    if preset.config.mode == "sup" and preset.positive == "dropout":
        triplets = load_triplets(ASSETS_DIR / "sample_sup.csv")
        return triplets if preset.hard_negatives else [(a, p) for a, p, _ in triplets]
    sentences = list(lessons.lesson_sentences())
    if preset.positive == "dropout":
        return sentences
    return list(_augmented(preset.positive, preset.ratio, preset.config.seed))


@lru_cache(maxsize=16)
def _augmented(positive: Positive, ratio: float, seed: int) -> tuple[tuple[str, str], ...]:
    from simcse_core.model.catalogue import resolve_model
    from simcse_core.teaching.augment import positive_pairs

    mlm_dir = resolve_model(START_MODEL).location if positive == "mlm" else None
    return tuple(positive_pairs(lessons.lesson_sentences(), positive, ratio, seed, mlm_model_dir=mlm_dir))


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
    """A private copy of ``base`` (the raw model, read through :data:`START_POOLER`), and the preset's training
    iterator. ``base`` is never changed (the copy is trained). ``data`` overrides :func:`training_data`.
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
    paper_stsb_dev: float  # the paper's figure (BERT-base trained for an hour or more)
    paper_source: str  # its table
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


DEFAULT_IN_GROUP = {"augmentation": "aug-dropout", "dropout": "dropout-0.1", "pooler": "pool-cls",
                    "temperature": "tau-0.05", "hard_negatives": "sup-alpha-1"}
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
