"""Where every lesson starts: the raw language model, the paper's unsupervised setting, the lesson's sentences.

The lessons (the lesson bar, the Inside tab's twins, loss, ablations and cone, and the Fine-tune tab's
default) start from ``raw-bert``, a small BERT this project pretrained with masked-language modelling only
(``models/raw-bert/MODEL.md``): its sentence vectors are what the paper starts from, a language model's, not
yet good for similarity. Similarity and Retrieval keep all-MiniLM-L6-v2, a model for real use.

The run is the paper's unsupervised setting (Section 3 and Appendix A: temperature 0.05, dropout 0.1, batch 64;
training length 32 from the official scripts; on sentences that are not STS data,
``assets/lesson_sentences.txt``) with a pooler and learning rate chosen by measurement for this small model
(``bench/lesson_recipe.py``, ``bench/results/lesson_recipe.json``): every Table 6 pooler at two or three learning
rates, chosen on STS-B dev for the largest score — the gain that counts is over the raw model's *best*
training-free reading, not over the one the run starts from. See :data:`RECIPE_WHY`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from simcse_core.model.catalogue import DEFAULT_MODEL, PREPARED_MODEL, RAW_MODEL
from simcse_core.paths import ASSETS_DIR
from simcse_core.training.config import TrainConfig

START_MODEL = RAW_MODEL
LESSON_SENTENCES = ASSETS_DIR / "lesson_sentences.txt"
# The vector the raw model is read through, before and after training (chosen by bench/lesson_recipe.py).
START_POOLER = "avg_first_last"
TABLE6_ROW = "First-last avg."  # the row of the paper's Table 6 this pooler is
LESSON_LR = 1e-3  # measured for raw-bert (bench/lesson_recipe.py); the paper's 3e-5 is for BERT-base
LESSON_STEPS = 400  # about a minute of training on two idle cores (bench/raw_model.py measures it)
# The lesson run: the paper's unsupervised setting (TrainConfig's defaults: batch 64, τ 0.05, dropout 0.1,
# training length 32) from the raw model, through the measured pooler, at the measured lr.
LESSON_RUN = TrainConfig(mode="unsup", steps=LESSON_STEPS, lr=LESSON_LR, pooler=START_POOLER, eval_every=50, seed=42)
# Why this recipe, in the figures bench/lesson_recipe.py measured (a test checks they agree with its result).
RECIPE_MEASURED = {"dev": 56.19, "test": 42.93, "best_free_test": 40.75, "cls_test": 26.44, "whitened_test": 52.19}
RECIPE_WHY = (
    f"The pooler is Table 6's “{TABLE6_ROW}” row at learning rate {LESSON_LR:g}: of the Table 6 poolers and the "
    f"learning rates measured from `raw-bert` ({LESSON_STEPS} steps, one seed; bench/results/lesson_recipe.json) it "
    f"scored highest on STS-B dev ({RECIPE_MEASURED['dev']:.1f}; test {RECIPE_MEASURED['test']:.1f}), above the raw "
    f"model's best reading without training or whitening (first-last average, test "
    f"{RECIPE_MEASURED['best_free_test']:.1f}) — only first-last runs got there; runs through the raw [CLS] vector "
    f"ended near "
    f"{RECIPE_MEASURED['cls_test']:.0f}. The paper's default, [CLS] with an MLP in training, suits BERT-base, whose "
    "[CLS] learned next-sentence prediction in pretraining; this model's [CLS] learned nothing.")
RECIPE_NOTE = (f"the lesson's recipe: Table 6's “{TABLE6_ROW}” pooler, lr {LESSON_LR:g}, batch "
               f"{LESSON_RUN.batch_size}, τ {LESSON_RUN.temperature:g}, on 20,000 lesson sentences (the paper: "
               "[CLS] w/ MLP (train), lr 3e-5, 10⁶ Wikipedia sentences, BERT-base)")
# Settings a run may change and still be "the lesson's recipe" (length and seed: the recipe is the rest).
_RUN_LENGTH = dict(steps=1, time_budget_s=None, eval_every=0, seed=0)


def same_recipe(config: TrainConfig) -> bool:
    """Whether ``config`` is the lesson's recipe, whatever its length and seed."""
    return replace(config, **_RUN_LENGTH) == replace(LESSON_RUN, **_RUN_LENGTH)


@dataclass(frozen=True)
class Reference:
    """A model's figure measured once by a bench script, shown beside ours."""

    model: str  # catalogue name
    label: str  # as shown on screen
    pooler: str
    stsb_dev: float  # Spearman x100 on the full STS-B dev set
    stsb_test: float  # Spearman x100 on the full STS-B test set
    anisotropy: float  # mean cosine of distinct sentences of STS-B dev
    source: str  # the bench result that measured it


@dataclass(frozen=True)
class Prepared:
    """The prepared run (``models/raw-bert-simcse``: the lesson's recipe, trained longer), as measured."""

    model: str
    stsb_dev: float  # Spearman x100, full STS-B dev
    stsb_test: float  # full STS-B test
    steps: int
    train_min: float  # minutes of training steps on the project's machine
    source: str = "bench/results/raw_model.json"


PREPARED = Prepared(PREPARED_MODEL, stsb_dev=61.70, stsb_test=51.52, steps=5000, train_min=11.1)

# MiniLM as a "trained at scale" reference beside every raw-start score (bench/results/raw_model.json).
TRAINED_AT_SCALE = Reference(DEFAULT_MODEL, "all-MiniLM-L6-v2 (trained at scale on ~1B sentence pairs)", "mean",
                             stsb_dev=86.72, stsb_test=82.04, anisotropy=0.018, source="bench/results/raw_model.json")


@dataclass(frozen=True)
class LessonMeasurement:
    """What the lesson run did on the project's machine (bench/results/raw_model.json), for captions."""

    start_dev: float  # raw-bert's STS-B dev Spearman x100 through the lesson's test-time pooler, before
    start_test: float  # the same on STS-B test
    after_dev: float  # after the lesson run
    after_test: float
    start_anisotropy: float  # mean cosine of distinct STS-B dev sentences, before
    after_anisotropy: float  # and after
    start_alignment: float  # alignment of STS-B dev pairs scored above 4, before (lower is better)
    after_alignment: float  # and after
    train_s: float  # seconds of training steps on the project's 2-core machine (its load is in the bench result)
    source: str = "bench/results/raw_model.json"


# Filled from bench/results/raw_model.json (a test checks they agree).
MEASURED = LessonMeasurement(start_dev=53.14, start_test=40.75, after_dev=56.19, after_test=42.93,
                             start_anisotropy=0.665, after_anisotropy=0.105, start_alignment=0.139,
                             after_alignment=0.455, train_s=48.2)


@lru_cache(maxsize=1)
def lesson_sentences() -> tuple[str, ...]:
    """The lessons' unsupervised training sentences (20,000, none from STS data)."""
    lines = LESSON_SENTENCES.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip())

