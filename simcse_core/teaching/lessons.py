"""Where every lesson starts: the raw language model, the paper's unsupervised setting, the lesson's sentences.

The lessons (the lesson bar, the Inside tab's twins, loss, ablations and cone, and the Fine-tune tab's
default) start from ``raw-bert``, a small BERT this project pretrained with masked-language modelling only
(``models/raw-bert/MODEL.md``): its sentence vectors are what the paper starts from, a language model's, not
yet good for similarity. Similarity and Retrieval keep all-MiniLM-L6-v2, a model for real use.

The run is the paper's unsupervised setting (Section 3 and Appendix A: temperature 0.05, dropout 0.1, batch 64,
training length 32, on sentences that are not STS data, ``assets/lesson_sentences.txt``) with two measured
differences for this small model:

- the pooler is the raw [CLS] vector trained directly (the paper's Table 6 row "[CLS] w/o MLP", 80.9 unsup)
  rather than the paper's default "[CLS] w/ MLP (train)". Chosen from early probes on intermediate checkpoints
  (lr 3e-4 to 1e-3, 150 steps), where through an MLP used in training only the raw [CLS] barely moved (STS-B dev
  21 -> 24-27) while trained directly it rose to 30-33. At the final lr (3e-3, 300 steps) the Table 6 miniature
  (bench/results/ablations_pooler.json) has the paper's default slightly ahead, 39.9 against 38.5 — within one
  seed's noise; switching the lesson to it means re-running every table, left for a later session;
- the learning rate is 3e-3 (the paper's 3e-5 is for BERT-base; on this 4-layer, 128-wide model 3e-4 and 1e-3
  gave smaller gains in the same steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from simcse_core.model.catalogue import DEFAULT_MODEL, RAW_MODEL
from simcse_core.paths import ASSETS_DIR
from simcse_core.training.config import TrainConfig

START_MODEL = RAW_MODEL
LESSON_SENTENCES = ASSETS_DIR / "lesson_sentences.txt"
# The vector the raw model is read through, before and after training: its raw [CLS] vector, the paper's
# test-time representation for unsupervised SimCSE.
START_POOLER = "cls_before_pooler"
LESSON_LR = 3e-3  # measured for raw-bert (see above); the paper's 3e-5 is for BERT-base
LESSON_STEPS = 300  # the lesson run's steps (bench/raw_model.py measures their time on this machine)
# The lesson run: the paper's unsupervised setting (TrainConfig's defaults: batch 64, τ 0.05, dropout 0.1,
# training length 32) from the raw model, [CLS] trained without the MLP, at the measured lr.
LESSON_RUN = TrainConfig(mode="unsup", steps=LESSON_STEPS, lr=LESSON_LR, pooler=START_POOLER, eval_every=50, seed=42)


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
MEASURED = LessonMeasurement(start_dev=22.73, start_test=5.70, after_dev=38.54, after_test=24.96,
                             start_anisotropy=0.659, after_anisotropy=0.081, start_alignment=0.190,
                             after_alignment=0.631, train_s=46.2)


@lru_cache(maxsize=1)
def lesson_sentences() -> tuple[str, ...]:
    """The lessons' unsupervised training sentences (20,000, none from STS data)."""
    lines = LESSON_SENTENCES.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip())

