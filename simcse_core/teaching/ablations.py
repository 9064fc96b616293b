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
  (:data:`TEMPERATURE_NOTE`), with the paper's unsupervised figure where it gives one
  (:attr:`AblationPreset.counterpart`); the dot-product row is left out (the trainer uses cosine only);
- hard negatives (Table 7, supervised): none, and α = 0.5 / 1 / 2, on the hand-written triplets of
  ``assets/sample_sup.csv`` (not NLI data) at batch 32.

Every preset says its setting and pooler beside the paper row's (:func:`paper_setting`, :func:`our_setting`,
:func:`differences`), and :func:`comparisons` sets each row against its table's default, in the paper and in
ours, whether the two agree or not.

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
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from simcse_core.evaluation import paper
from simcse_core.evaluation.paper import PaperFigure
from simcse_core.paths import ASSETS_DIR, PROJECT_ROOT
from simcse_core.teaching import lessons
from simcse_core.training.config import setting_default
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
# Table 7, a supervised run on the hand-written triplets of SUP_TRIPLETS (batch 32, as many steps).
# The ablations keep Table A.1's unsupervised batch (64, the paper's own ablation setting) for 400 steps: the
# lesson run's recipe otherwise (bench/results/ablations_*.json measured them so).
# Learning rate 1e-3 with the paper's schedule and AdamW β₂, at which the stored tables were measured (the lesson's
# rate, held schedule and β₂ were chosen later, at batch 128).
UNSUP = replace(lessons.LESSON_RUN, batch_size=paper.TABLE_A1_BERT_BASE["unsup"][0], steps=400, lr=1e-3,
                decay_fraction=setting_default("decay_fraction"), adam_beta2=setting_default("adam_beta2"))
SUP = replace(UNSUP, mode="sup", batch_size=32, mlp_only_train=None)
SUP_TRIPLETS = ASSETS_DIR / "sample_sup.csv"  # hand-written (anchor, entailment, contradiction) triplets
# Differences of our final Spearman smaller than this are called unresolved: one seed cannot tell them from
# chance (the seeds' spread is measured by ``bench/ablations.py --seeds N``, not assumed here).
NOISE_POINTS = 1.0
UNRESOLVED = "ours under a point (one seed: unresolved)"
SEEDS_SPREAD = "ours within the seeds' spread"
LARGE_POINTS = 3.0  # a difference this large is an effect, in the paper or in ours

_D1_TAU = paper.TABLE_D1["τ = 0.05"]
TEMPERATURE_NOTE = (
    f"Table D.1 does not say whether it is supervised or unsupervised; its τ = 0.05 figure ({_D1_TAU.value:.1f}) "
    "equals the supervised model's (Table 7, α = 1), so we read it as supervised and its level is not ours: our τ "
    "runs are unsupervised. Compare the shape (which τ is best, how far τ = 1 falls), not the numbers.")
MINIATURE_CAVEAT = (
    "Our miniature starts, like the paper, from a language model that never learned sentence meaning, but a "
    f"small one (4 layers, 128 wide, pretrained on 2 CPU cores) trained for {UNSUP.steps} steps (about a minute "
    f"here) instead of the paper's epoch of 10⁶ sentences ({10 ** 6 // paper.TABLE_A1_BERT_BASE['unsup'][0]:,} "
    f"steps at batch {paper.TABLE_A1_BERT_BASE['unsup'][0]}), with one seed. Its figures sit far below "
    "BERT-base's; compare the order of the rows and the size of the drops, not the levels. One seed cannot tell a "
    "difference smaller than the seeds' spread from chance, and your runs have one seed: the table's column "
    "“Ours, measured”, beside the paper's figure, has the project's own runs of each row with several seeds, their "
    "mean and spread (SD), which says how large that spread is for each row.")


def paper_pooler(config: TrainConfig) -> str:
    """The sentence vector a run of ``config`` is scored through, in the paper's words (a Table 6 row), else our
    pooler's name."""
    if config.pooler == "cls":
        row = "[CLS] w/ MLP (train)" if config.resolved_mlp_only_train else "[CLS] w/ MLP"
    else:
        row = {"cls_before_pooler": "[CLS] w/o MLP", "avg_first_last": "First-last avg."}.get(config.pooler, "")
    return row if row in paper.TABLE6 else f"`{config.pooler}`"


@lru_cache(maxsize=1)
def sup_triplet_count() -> int:
    """How many hand-written triplets Table 7's presets train on (:data:`SUP_TRIPLETS`)."""
    from simcse_core.data import load_triplets

    return len(load_triplets(SUP_TRIPLETS))


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

    @property
    def pooler(self) -> str:
        """The sentence vector our run is scored through, in the paper's words (:func:`paper_pooler`)."""
        return paper_pooler(self.config)

    @property
    def same_pooler(self) -> bool:
        """Whether our run reads the paper row's pooler; when not, the screen says so."""
        return self.pooler == self.paper.pooler

    @property
    def counterpart(self) -> PaperFigure | None:
        """The paper's figure in *our* setting and pooler when the row's setting is not ours and the paper gives
        one: for Table D.1's τ = 0.05 (supervised) beside our unsupervised default run, Table 6's unsupervised
        row of our pooler (all of Table 6 is at τ = 0.05). None otherwise."""
        if self.same_setting or self.setting != "unsup" or self.config != UNSUP:
            return None
        row = paper.TABLE6.get(self.pooler)
        return row["unsup"] if row else None


def _preset(key: str, group: AblationGroup, label: str, config: TrainConfig, figure: PaperFigure,
            positive: Positive = "dropout", ratio: float = 0.0, hard_negatives: bool = True,
            **changes) -> AblationPreset:
    if positive != "dropout":  # pairs (sentence, augmented view): the pairs path, with the unsup pooler rule
        changes = {"mode": "sup", **changes}
    return AblationPreset(key, group, label, replace(config, **changes), figure, positive, ratio, hard_negatives)


def _lesson_mark(pooler: str, mlp_only_train: bool = False) -> str:
    """" (the lesson's pooler)" on the Table 6 row the lesson run reads through."""
    same = UNSUP.pooler == pooler and (pooler != "cls" or UNSUP.resolved_mlp_only_train == mlp_only_train)
    return " (the lesson's pooler)" if same else ""


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
    _preset("pool-cls-mlp-train", "pooler", "[CLS] with MLP in training only (the paper's default)"
            + _lesson_mark("cls", True), UNSUP, T6["[CLS] w/ MLP (train)"]["unsup"], pooler="cls", mlp_only_train=True),
    _preset("pool-cls", "pooler", "[CLS] without MLP" + _lesson_mark("cls_before_pooler"), UNSUP,
            T6["[CLS] w/o MLP"]["unsup"], pooler="cls_before_pooler"),
    _preset("pool-first-last", "pooler", "first-last average" + _lesson_mark("avg_first_last"), UNSUP,
            T6["First-last avg."]["unsup"], pooler="avg_first_last"),
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


SETTING_WORDS = {"unsup": "unsupervised", "sup": "supervised"}


def _inferred(figure: PaperFigure) -> tuple[bool, bool]:
    """(setting inferred, pooler inferred): what the figure's note says its table leaves unstated."""
    setting = figure.note.startswith("setting not stated")
    return setting, setting or ("pooler" in figure.note and "not stated" in figure.note)


def paper_setting(preset: AblationPreset) -> str:
    """The paper row's setting and pooler in a phrase, with what its table leaves unstated, e.g. "supervised
    (inferred: the table does not say), [CLS] w/ MLP"."""
    figure = preset.paper
    setting_inferred, pooler_inferred = _inferred(figure)
    setting = SETTING_WORDS[figure.setting] + (" (inferred: the table does not say)" if setting_inferred else "")
    if figure.setting == "sup":
        setting += f", SNLI+MNLI ({paper.NLI_PAIRS} pairs)"
    pooler = figure.pooler + (" (not stated: the paper's default)" if pooler_inferred and not setting_inferred
                              else "")
    return f"{setting}, {pooler}"


def our_setting(preset: AblationPreset) -> str:
    """Our run's setting, data and pooler in a phrase, e.g. "supervised, 250 hand-written triplets at batch 32
    (not NLI data), [CLS] w/o MLP"."""
    config = preset.config
    if preset.setting == "sup":
        kind = "triplets" if preset.hard_negatives else "pairs (the triplets without their third column)"
        data = f"{sup_triplet_count()} hand-written {kind} at batch {config.batch_size} (not NLI data)"
    elif preset.positive != "dropout":
        data = f"lesson sentences, each paired with its {preset.label} view, at batch {config.batch_size}"
    else:
        data = f"lesson sentences at batch {config.batch_size}"
    return f"{SETTING_WORDS[preset.setting]}, {data}, {preset.pooler}"


def differences(preset: AblationPreset) -> list[str]:
    """What differs between the paper row and our run besides the row's own setting, in words (may be empty)."""
    out = []
    if not preset.same_setting:
        out.append(f"another setting: the paper's row is {SETTING_WORDS[preset.paper.setting]}, ours "
                   f"{SETTING_WORDS[preset.setting]}")
    if not preset.same_pooler:
        out.append(f"another pooler: the paper's row reads {preset.paper.pooler}, ours {preset.pooler}")
    return out


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
    hand-written triplets for Table 7 (:data:`SUP_TRIPLETS`; without hard negatives the third column dropped).
    """
    from simcse_core.data import load_triplets

    if preset.config.mode == "sup" and preset.positive == "dropout":
        triplets = load_triplets(SUP_TRIPLETS)
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
    paper_stsb_dev: float  # the paper's figure (BERT-base, the paper's full run)
    paper_source: str  # its table
    eval_name: str  # the set our Spearman is measured on
    steps: int  # optimizer steps made
    train_s: float  # seconds in training steps (evaluations excluded)
    history: tuple[dict[str, float], ...]  # one dict per evaluation: step, spearman, alignment, uniformity, ...
    seeds: int = 1  # runs averaged in ``final`` (the history is the first seed's)
    final_mean: float | None = None  # mean final Spearman x100 over the seeds (None: one run, its last evaluation)
    final_sd: float | None = None  # their standard deviation

    @property
    def final(self) -> float:
        """The final Spearman x100: the seeds' mean when several seeds were run, else the last evaluation's."""
        return self.after["spearman"] if self.final_mean is None else self.final_mean

    @property
    def final_said(self) -> str:
        """``final`` in words for tables: "57.0 ± 1.1 (3 seeds)" or "57.0"."""
        if self.seeds > 1 and self.final_sd is not None:
            return f"{self.final:.1f} ± {self.final_sd:.1f} ({self.seeds} seeds)"
        return f"{self.final:.1f}"

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

    Returns the paper's best setting, ours, whether they are the same row or (``best_tied``) different rows within
    the seeds' spread of each other (both measured with several seeds), and the Spearman rank correlation between
    the paper's figures and our final Spearman (NaN with fewer than three runs).
    """
    from scipy.stats import spearmanr

    if not results:
        raise ValueError("No results to compare.")
    paper_best = max(results, key=lambda r: r.paper_stsb_dev)
    ours_best = max(results, key=lambda r: r.final)
    rho = math.nan
    if len(results) >= 3:
        rho = float(spearmanr([r.paper_stsb_dev for r in results], [r.final for r in results])[0])
    # Our run of the paper's best row within the seeds' spread of our best: the best row is tied, not different.
    tied = (paper_best is not ours_best and paper_best.final_sd is not None and ours_best.final_sd is not None
            and ours_best.final - paper_best.final <= math.hypot(paper_best.final_sd, ours_best.final_sd))
    return {"paper_best": paper_best.label, "ours_best": ours_best.label, "same_best": paper_best is ours_best,
            "best_tied": tied, "rank_correlation": rho}


# Each table's row in the setting the other tables run at (Table 6: the lesson's pooler).
DEFAULT_IN_GROUP = {"augmentation": "aug-dropout", "dropout": "dropout-0.1",
                    "pooler": next(p.key for p in PRESETS if p.group == "pooler" and p.config == UNSUP),
                    "temperature": "tau-0.05", "hard_negatives": "sup-alpha-1"}


Verdict = Literal["agrees", "differs", "unclear"]


@dataclass(frozen=True)
class Comparison:
    """One row of a table set against its table's default row, in the paper and in our runs."""

    table: str  # "Table 3", ...
    row: str  # our preset's label
    default: str  # the label of its table's default preset
    paper_row: float  # the paper's figures
    paper_default: float
    ours_row: float  # our final Spearman x100 (the seeds' mean when several were run)
    ours_default: float
    spread: float | None = None  # the seeds' spread of ours_diff (both rows' SDs combined); None: one seed

    @property
    def paper_diff(self) -> float:
        return self.paper_row - self.paper_default

    @property
    def ours_diff(self) -> float:
        return self.ours_row - self.ours_default

    @property
    def how(self) -> str:
        """How ours compares with the paper's difference, in words."""
        paper_diff, ours_diff = self.paper_diff, self.ours_diff
        if self.spread is not None and abs(ours_diff) <= self.spread:  # measured: within the seeds' spread
            return "much smaller here" if abs(paper_diff) >= LARGE_POINTS else SEEDS_SPREAD
        if paper_diff * ours_diff < 0 and abs(ours_diff) > NOISE_POINTS:
            return "opposite direction"
        if abs(paper_diff) >= LARGE_POINTS and (abs(ours_diff) <= NOISE_POINTS or abs(ours_diff) < abs(paper_diff) / 4):
            return "much smaller here"
        if abs(ours_diff) >= LARGE_POINTS and (abs(paper_diff) <= NOISE_POINTS or abs(ours_diff) > 4 * abs(paper_diff)):
            return "much larger here"
        if abs(ours_diff) <= NOISE_POINTS:
            return "both within a point" if abs(paper_diff) <= NOISE_POINTS else UNRESOLVED
        return "same direction"

    @property
    def verdict(self) -> Verdict:
        """"differs" (opposite direction, or a size four times apart), "unclear" (ours within noise where the
        paper finds a small effect), else "agrees"."""
        how = self.how
        if how in ("opposite direction", "much smaller here", "much larger here"):
            return "differs"
        return "unclear" if how == UNRESOLVED else "agrees"

    def sentence(self) -> str:
        """Both sides in words, e.g. "fixed mask 0.1 against dropout 0.1 (default): the paper's row is 38.9 points
        below it (43.6 vs 82.5); ours 5.9 below (32.6 vs 38.5): much smaller here." """
        paper_said, ours_said = points_said(self.paper_diff), points_said(self.ours_diff)
        return (f"{self.row} against {self.default}: the paper's row is {paper_said} "
                f"{'with ' if paper_said == 'level' else ''}it ({self.paper_row:.1f} vs {self.paper_default:.1f}); "
                f"ours {ours_said} "
                f"({self.ours_row:.1f} vs {self.ours_default:.1f}"
                f"{'' if self.spread is None else f'; the seeds spread it ±{self.spread:.1f}'}): {self.how}.")


def points_said(diff: float) -> str:
    """A difference in points in words, e.g. "38.9 points below" (no sign to misread)."""
    if round(abs(diff), 1) == 0:
        return "level"
    return f"{abs(diff):.1f} point{'s' if round(abs(diff), 1) != 1 else ''} {'above' if diff > 0 else 'below'}"


def comparisons(results: Sequence[AblationResult]) -> list[Comparison]:
    """Every run set against its table's default run (for the tables whose default has been run), in preset
    order: the paper's difference and ours, whether they agree or not."""
    by_key = {r.key: r for r in results}
    out = []
    for preset in PRESETS:
        default_key = DEFAULT_IN_GROUP[preset.group]
        result, default = by_key.get(preset.key), by_key.get(default_key)
        if result is None or default is None or preset.key == default_key:
            continue
        spread = None
        if result.final_sd is not None and default.final_sd is not None:
            spread = math.hypot(result.final_sd, default.final_sd)
        out.append(Comparison(GROUP_TABLES[preset.group], result.label, default.label, result.paper_stsb_dev,
                              default.paper_stsb_dev, result.final, default.final, spread))
    return out


def disagreements(results: Sequence[AblationResult]) -> list[str]:
    """Plain sentences where our runs and the paper disagree, each setting compared with its group's default.

    A setting disagrees when the paper's difference from the default and ours point in opposite directions
    (ours beyond :data:`NOISE_POINTS`), or when one side's difference is large (:data:`LARGE_POINTS`+) and the
    other's is within noise or less than a quarter of it (:attr:`Comparison.verdict`). Only groups whose default
    has been run are compared; :func:`comparisons` gives the agreements too.
    """
    return [f"{c.row}: the paper finds {c.paper_diff:+.1f} points against {c.default}; ours {c.ours_diff:+.1f}."
            for c in comparisons(results) if c.verdict == "differs"]


MEASURED_DIR = PROJECT_ROOT / "bench" / "results"  # bench/ablations.py writes ablations_GROUP.json here


def measured_results(group: AblationGroup, directory: Path = MEASURED_DIR) -> list[AblationResult]:
    """The benchmark's full runs of one table (``ablations_GROUP.json``, full STS-B dev), [] when not measured."""
    import json

    path = directory / f"ablations_{group}.json"
    if not path.is_file():
        return []
    stored = json.loads(path.read_text(encoding="utf-8"))
    if stored.get("model_sha256") != start_model_fingerprint():
        logger.info("%s was measured on another %s; not shown until bench/ablations.py re-runs", path, START_MODEL)
        return []
    histories = stored.get("histories", {})
    return [AblationResult(row["preset"], row["group"], row["setting"], row["paper_stsb_dev"], row["paper_source"],
                           row["eval_set"], int(row["steps"]), float(row["train_s"]),
                           tuple(histories.get(row["preset"]) or ({"step": 0.0, "spearman": row["ours_before"]},
                                                                  {"step": float(row["steps"]),
                                                                   "spearman": row["ours_after"]})),
                           int(row.get("seeds", 1)), row["ours_after"] if row.get("seeds", 1) > 1 else None,
                           row.get("ours_after_sd"))
            for row in stored.get("rows", []) if row.get("group") == group]


@lru_cache(maxsize=1)
def start_model_fingerprint() -> str:
    """SHA-256 of the raw model's weight files: stored results count only for the weights they were measured on."""
    import hashlib

    from simcse_core.model.catalogue import SHIPPED_MODELS

    digest = hashlib.sha256()
    for path in sorted(SHIPPED_MODELS[START_MODEL].glob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def best_rows(directory: Path = MEASURED_DIR) -> dict[str, list[str]]:
    """The measured tables by how their best row compares with the paper's: "same", "tied" (another row, within
    the seeds' spread of ours for the paper's best) and "differs" (e.g. {"differs": ["Table 6", "Table 7"], ...})."""
    out: dict[str, list[str]] = {"same": [], "tied": [], "differs": []}
    for group in GROUPS:
        results = measured_results(group, directory)
        if len(results) > 1:
            verdict = agreement(results)
            kind = "same" if verdict["same_best"] else "tied" if verdict["best_tied"] else "differs"
            out[kind].append(GROUP_TABLES[group])
    return out


def tables_whose_best_row_differs(directory: Path = MEASURED_DIR) -> list[str]:
    """The tables whose best row in the benchmark's runs is not the paper's best beyond the seeds' spread."""
    return best_rows(directory)["differs"]


def unequal_lengths(results: Sequence[AblationResult]) -> str | None:
    """A warning when the runs made different numbers of steps (a time budget cut some short), else None."""
    steps = sorted({r.steps for r in results})
    if len(steps) < 2:
        return None
    return (f"These runs made different numbers of steps ({', '.join(map(str, steps))}): the machine was busy and "
            f"the time budget stopped some early. Compare runs of the same length.")
