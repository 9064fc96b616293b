"""The paper's published figures (Gao, Yao & Chen, EMNLP 2021), for showing beside ours. One place for them.

All are Spearman correlation × 100 for SimCSE with BERT-base (uncased), in the paper's "all" setting.
"""

from __future__ import annotations

from types import MappingProxyType

# Table 5: STS test sets. Order as in the paper.
TABLE5_SETS: tuple[str, ...] = ("STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R", "Avg.")
TABLE5 = MappingProxyType({
    "Unsup-SimCSE-BERT-base": (68.40, 82.41, 74.38, 80.91, 78.56, 76.85, 72.23, 76.25),
    "Sup-SimCSE-BERT-base": (75.30, 84.67, 80.19, 85.40, 80.82, 84.25, 80.39, 81.57),
})
# STS-B development set: Table 3 (unsupervised, dropout 0.1) and Table 6 (supervised, hard negatives α = 1).
STSB_DEV = MappingProxyType({"unsup": 82.5, "sup": 86.2})
# STS-B test (Table 5's STS-B column).
STSB_TEST = MappingProxyType({"unsup": 76.85, "sup": 84.25})
# The official tool's names for our poolers (SimCSE's --pooler_type), where they differ.
OFFICIAL_POOLER_NAMES = MappingProxyType({
    "cls": "cls", "cls_before_pooler": "cls_before_pooler", "mean": "avg", "avg_first_last": "avg_first_last",
    "avg_top2": "avg_top2",
})


def table5_markdown() -> str:
    """The paper's Table 5 for SimCSE-BERT-base as a markdown table: a row per STS set, a column per model."""
    names = list(TABLE5)
    header = "| Set | " + " | ".join(name.replace("-SimCSE-BERT-base", "") for name in names) + " |"
    rule = "|---|" + "---:|" * len(names)
    rows = [f"| {task} | " + " | ".join(f"{TABLE5[name][k]:.2f}" for name in names) + " |"
            for k, task in enumerate(TABLE5_SETS)]
    return "\n".join([header, rule, *rows])
