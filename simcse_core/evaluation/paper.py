"""The paper's published figures (Gao, Yao & Chen, EMNLP 2021), for showing beside ours. One place for them.

Every number here was read in the text of arXiv:2104.08821v4 ("18 May 2022", the EMNLP 2021 version: abstract
76.3 / 81.6), as stored by the `code` search index (file id 55140216188, a PDF-to-text copy), and checked against
three other stored copies of v4 (ids 26683772074 markdown, 28392395141 and 52658726816 HTML/markdown conversions).
None is typed from memory. Earlier arXiv versions (v1: 74.5 / 81.6) have other numbers and table numbering.

All figures are Spearman's correlation × 100 as printed. Unless a row says otherwise the model is BERT-base (uncased)
and Table 5 uses the "all" aggregation. The paper does not say how many runs or seeds a figure comes from; Appendix A
says each run keeps its checkpoint best on STS-B dev (evaluated every 250 steps).
`PaperFigure.note` says where the paper leaves a setting unstated and what was inferred.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Setting = Literal["unsup", "sup"]

SOURCE = "arXiv:2104.08821v4 (18 May 2022; EMNLP 2021 version)"
SPEARMAN = "Spearman × 100"
STSB_DEV_SPLIT = "STS-B dev"
BERT_BASE = "BERT-base (uncased)"
UNSUP_POOLER = "[CLS] w/ MLP (train)"  # §6.3: the default for unsupervised SimCSE
SUP_POOLER = "[CLS] w/ MLP"  # §6.3: the default for supervised SimCSE


@dataclass(frozen=True, slots=True)
class PaperFigure:
    """One number printed in the paper, with what it measures."""

    value: float  # as printed, Spearman × 100
    table: str  # "Table 1", "Table D.1", ...
    row: str  # the row (and column, where the table has several) as labelled in the paper
    setting: Setting  # unsupervised (Wikipedia) or supervised (NLI) SimCSE, or the table block it sits in
    pooler: str  # sentence representation, in the paper's words
    model: str  # pre-trained encoder
    metric: str  # always SPEARMAN here
    split: str  # "STS-B dev", or a Table 5 test set ("STS12", ..., "Avg.")
    note: str = ""  # what the table leaves unstated and what was inferred, if anything


@dataclass(frozen=True, slots=True)
class PaperQuote:
    """A sentence of the paper, verbatim (line-break hyphens joined), with where it stands."""

    section: str
    text: str


def _dev(value: float, table: str, row: str, setting: Setting, pooler: str, note: str = "") -> PaperFigure:
    return PaperFigure(value, table, row, setting, pooler, BERT_BASE, SPEARMAN, STSB_DEV_SPLIT, note)


# Table 1: data augmentations for unsupervised SimCSE. Caption: "Comparison of data augmentations on STS-B development
# set (Spearman's correlation). Crop k%: keep 100-k% of the length; word deletion k%: delete k% words; Synonym
# replacement: use nlpaug (Ma, 2019) to randomly replace one word with its synonym; MLM k%: use BERTbase to replace k%
# of words." The caption states no model, pooler or step count; footnote 2 (§3) gives the setting.
_T1_NOTE = ("setting from §3 footnote 2: 10^6 Wikipedia sentences, BERT-base, lr 3e-5, N = 64; "
            "pooler and training steps not stated (pooler: the §6.3 unsup default)")
TABLE1: Mapping[str, PaperFigure] = MappingProxyType({
    row: _dev(value, "Table 1", row, "unsup", UNSUP_POOLER, _T1_NOTE) for row, value in (
        ("None (unsup. SimCSE)", 82.5),
        ("Crop 10%", 77.8), ("Crop 20%", 71.4), ("Crop 30%", 63.6),
        ("Word deletion 10%", 75.9), ("Word deletion 20%", 72.2), ("Word deletion 30%", 68.2),
        ("Delete one word", 75.9),
        ("Delete one word, w/o dropout", 74.2),
        ("Synonym replacement", 77.4),
        ("MLM 15%", 62.2),
    )
})

# Table 3: dropout probability p in unsupervised SimCSE. Caption: "Effects of different dropout probabilities p on the
# STS-B development set (Spearman's correlation, BERTbase). Fixed 0.1: default 0.1 dropout rate but apply the same
# dropout mask on both xi and xi+."
_T3_NOTE = "unsup setting from §3 (Table 3 is in 'Why does it work?'); pooler not stated (the §6.3 unsup default)"
TABLE3: Mapping[str, PaperFigure] = MappingProxyType({
    row: _dev(value, "Table 3", row, "unsup", UNSUP_POOLER, _T3_NOTE) for row, value in (
        ("p = 0.0", 71.1), ("p = 0.01", 72.6), ("p = 0.05", 81.1), ("p = 0.1", 82.5),
        ("p = 0.15", 81.4), ("p = 0.2", 80.5), ("p = 0.5", 71.0), ("Fixed 0.1", 43.6),
    )
})

# Table 6: poolers, both settings. Caption: "Ablation studies of different pooling methods in unsupervised and
# supervised SimCSE. [CLS] w/ MLP (train): using MLP on [CLS] during training but removing it during testing. The
# results are based on the development set of STS-B using BERTbase."
TABLE6: Mapping[str, Mapping[Setting, PaperFigure]] = MappingProxyType({
    row: MappingProxyType({
        "unsup": _dev(unsup, "Table 6", f"{row} (Unsup.)", "unsup", row),
        "sup": _dev(sup, "Table 6", f"{row} (Sup.)", "sup", row),
    }) for row, unsup, sup in (
        ("[CLS] w/ MLP", 81.7, 86.2),
        ("[CLS] w/ MLP (train)", 82.5, 85.8),
        ("[CLS] w/o MLP", 80.9, 86.2),
        ("First-last avg.", 81.2, 86.1),
    )
})

# Table 7: hard negatives in supervised SimCSE (Eq. 8, weight α on the hard negative). Caption: "STS-B development
# results with different hard negative policies. "N/A": no hard negative."
TABLE7: Mapping[str, PaperFigure] = MappingProxyType({
    row: _dev(value, "Table 7", row, "sup", SUP_POOLER) for row, value in (
        ("N/A (no hard negative)", 84.9),
        ("Contradiction, α = 0.5", 86.1),
        ("Contradiction, α = 1.0", 86.2),
        ("Contradiction, α = 2.0", 86.2),
        ("Contra. + Neutral, α = 1.0", 85.3),
    )
})

# Table D.1: temperature τ. Caption: "STS-B development results (Spearman's correlation) with different temperatures.
# "N/A": Dot product instead of cosine similarity." Neither caption nor Appendix D names the setting.
_D1_NOTE = ("setting not stated; inferred supervised: τ = 0.05 gives 86.2, the supervised final model's figure "
            "(Table 4, Table 7 α = 1), while the unsup default at τ = 0.05 is 82.5 (Tables 1, 3)")
TABLE_D1: Mapping[str, PaperFigure] = MappingProxyType({
    row: _dev(value, "Table D.1", row, "sup", SUP_POOLER, _D1_NOTE) for row, value in (
        ("N/A (dot product)", 85.9),
        ("τ = 0.001", 84.9), ("τ = 0.01", 85.4), ("τ = 0.05", 86.2), ("τ = 0.1", 82.0), ("τ = 1", 64.0),
    )
})

# Table 5: STS test sets. Order as in the paper.
TABLE5_SETS: tuple[str, ...] = ("STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R", "Avg.")
TABLE5 = MappingProxyType({
    "Unsup-SimCSE-BERT-base": (68.40, 82.41, 74.38, 80.91, 78.56, 76.85, 72.23, 76.25),
    "Sup-SimCSE-BERT-base": (75.30, 84.67, 80.19, 85.40, 80.82, 84.25, 80.39, 81.57),
})


def _table5_row(row: str, model: str, pooler: str, values: tuple[float, ...], note: str) -> tuple[PaperFigure, ...]:
    return tuple(PaperFigure(value, "Table 5", row, "unsup", pooler, model, SPEARMAN, split, note)
                 for split, value in zip(TABLE5_SETS, values, strict=True))


# Table 5's unsupervised baselines with BERT-base (or none), in TABLE5_SETS order. Caption: "Sentence embedding
# performance on STS tasks (Spearman's correlation, "all" setting). [...] ♣: results from Reimers and Gurevych (2019);
# [...] all other results are reproduced or reevaluated by ourselves. For BERT-flow (Li et al., 2020) and whitening
# (Su et al., 2021), we only report the "NLI" setting (see Table C.1)."
TABLE5_BASELINES: Mapping[str, tuple[PaperFigure, ...]] = MappingProxyType({
    row: _table5_row(row, model, pooler, values, note) for row, model, pooler, values, note in (
        ("GloVe embeddings (avg.)", "GloVe", "avg.",
         (55.14, 70.66, 59.73, 68.25, 63.66, 58.02, 53.76, 61.32), "♣: from Reimers and Gurevych (2019)"),
        ("BERTbase (first-last avg.)", "BERT-base", "first-last avg.",
         (39.70, 59.38, 49.67, 66.03, 66.19, 53.87, 62.06, 56.70), ""),
        ("BERTbase-flow", "BERT-base", "not stated",
         (58.40, 67.10, 60.85, 75.16, 71.22, 68.66, 64.47, 66.55), "flow fitted on NLI data; retrained (Appendix C)"),
        ("BERTbase-whitening", "BERT-base", "first-last avg.",
         (57.83, 66.90, 60.90, 75.08, 71.31, 68.24, 63.73, 66.28),
         "whitening fitted on NLI data; first-last average pooling per Appendix C"),
    )
})

# STS-B development set: Table 3 / Table 6 (unsupervised, p = 0.1, [CLS] w/ MLP (train)) and Table 7 (supervised,
# contradiction hard negatives α = 1; also Table 4's final model and Table 6's [CLS] w/ MLP).
STSB_DEV = MappingProxyType({"unsup": 82.5, "sup": 86.2})
# STS-B test (Table 5's STS-B column).
STSB_TEST = MappingProxyType({"unsup": 76.85, "sup": 84.25})
# The official tool's names for our poolers (SimCSE's --pooler_type), where they differ.
OFFICIAL_POOLER_NAMES = MappingProxyType({
    "cls": "cls", "cls_before_pooler": "cls_before_pooler", "mean": "avg", "avg_first_last": "avg_first_last",
    "avg_top2": "avg_top2",
})

# The supervised training set as the paper counts it, as printed: §6.1 "the combination of MNLI and SNLI datasets
# (314k)" (Table 4: "entailment (314k)"). The official training file nli_for_simcse.csv has fewer rows: 275,601
# triplets (anchor, entailment, contradiction; simcse_core.training.recipes).
NLI_PAIRS = "314k"

# Table A.1 ("Batch sizes and learning rates for SimCSE."), BERT-base columns: (batch size, learning rate).
TABLE_A1_BERT_BASE: Mapping[Setting, tuple[int, float]] = MappingProxyType({"unsup": (64, 3e-5), "sup": (512, 5e-5)})

# Sentences quoted from the same text (v4). "10^6" is printed as a superscript.
QUOTES: Mapping[str, PaperQuote] = MappingProxyType({
    "figure2_alignment": PaperQuote(
        "§3 Unsupervised SimCSE, 'Why does it work?' (Figure 2)",
        "As clearly shown, starting from pre-trained checkpoints, all models greatly improve uniformity. However, "
        "the alignment of the two special variants also degrades drastically, while our unsupervised SimCSE keeps a "
        "steady alignment, thanks to the use of dropout noise."),
    "figure3_alignment_uniformity": PaperQuote(
        "§7 Analysis, 'Uniformity and alignment' (Figure 3)",
        "(3) unsupervised SimCSE effectively improves uniformity of pre-trained embeddings whereas keeping a good "
        "alignment; (4) incorporating supervised data in SimCSE further amends alignment."),
    "spectrum_flattening": PaperQuote(
        "§5 Connection to Anisotropy",
        "When minimizing the second term in Eq. 6, we reduce the top eigenvalue of WW⊤ and inherently “flatten” "
        "the singular spectrum of the embedding space."),
    "spectrum_appendix_f": PaperQuote(
        "Appendix F Distribution of Singular Values (Figure F.1)",
        "For both unsupervised and supervised cases, singular value drops the fastest for vanilla BERT or SBERT "
        "embeddings, while SimCSE helps flatten the spectrum distribution."),
    "unsup_data": PaperQuote(
        "§3, footnote 2",
        "We randomly sample 10^6 sentences from English Wikipedia and fine-tune BERTbase with learning rate = 3e-5, "
        "N = 64. In all our experiments, no STS training sets are used."),
    "training_data": PaperQuote(
        "§6.1 Training details",
        "We train unsupervised SimCSE on 10^6 randomly sampled sentences from English Wikipedia, and train "
        "supervised SimCSE on the combination of MNLI and SNLI datasets (314k)."),
    "schedule": PaperQuote(
        "Appendix A Training Details",
        "For supervised SimCSE, we train our models for 3 epochs, evaluate the model every 250 training steps on the "
        "development set of STS-B and keep the best checkpoint for the final evaluation on test sets. We do the same "
        "for the unsupervised SimCSE, except that we train the model for one epoch."),
    "grid_search": PaperQuote(
        "Appendix A Training Details",
        "We carry out grid-search of batch size ∈ {64, 128, 256, 512} and learning rate ∈ {1e-5, 3e-5, 5e-5} on "
        "STS-B development set and adopt the hyperparameter settings in Table A.1."),
    "pooler": PaperQuote(
        "Appendix A Training Details",
        "For both unsupervised and supervised SimCSE, we take the [CLS] representation with an MLP layer on top of "
        "it as the sentence representation. Specially, for unsupervised SimCSE, we discard the MLP layer and only "
        "use the [CLS] output during test, since we find that it leads to better performance (ablation study in "
        "§6.3)."),
    "pooler_default": PaperQuote(
        "§6.3 Ablation Studies, 'Pooling methods'",
        "By default, we take [CLS] with MLP (train) for unsupervised SimCSE and [CLS] with MLP for supervised "
        "SimCSE."),
    "hard_negatives": PaperQuote(
        "§6.3 Ablation Studies, 'Hard negatives'",
        "As shown in Table 7, α = 1 performs the best, and neutral hypotheses do not bring further gains."),
    "temperature": PaperQuote(
        "Appendix D Ablation Studies, 'Normalization and temperature'",
        "As shown in Table D.1, with a carefully tuned temperature τ = 0.05, cosine similarity is better than dot "
        "product."),
})


def all_figures() -> tuple[PaperFigure, ...]:
    """Every `PaperFigure` in this module, table by table."""
    return (*TABLE1.values(), *TABLE3.values(), *(f for cols in TABLE6.values() for f in cols.values()),
            *TABLE7.values(), *TABLE_D1.values(), *(f for row in TABLE5_BASELINES.values() for f in row))


def table5_markdown() -> str:
    """The paper's Table 5 for SimCSE-BERT-base as a markdown table: a row per STS set, a column per model."""
    names = list(TABLE5)
    header = "| Set | " + " | ".join(name.replace("-SimCSE-BERT-base", "") for name in names) + " |"
    rule = "|---|" + "---:|" * len(names)
    rows = [f"| {task} | " + " | ".join(f"{TABLE5[name][k]:.2f}" for name in names) + " |"
            for k, task in enumerate(TABLE5_SETS)]
    return "\n".join([header, rule, *rows])
