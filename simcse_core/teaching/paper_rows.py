"""Which row of the paper a training run may be shown beside, and how our run differs from it.

Each ablation table of the paper varies one setting of a default run (unsupervised: [CLS] w/ MLP (train),
dropout 0.1, τ 0.05; supervised: [CLS] w/ MLP, hard negatives at α = 1). A run is matched to the row of the
one setting it changes from that default — dropout p or the fixed mask (Table 3), the pooler (Table 6), τ
(Table D.1), the hard-negative weight (Table 7) — and to no row when it changes two of them, or one to a value
no row has: a figure measured in another setting is not shown as if it were ours. Settings no table varies
(model, data, batch, learning rate, steps, training length) do not choose the row; they are listed as
differences, as is a row measured through another pooler than the run's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from simcse_core.evaluation import paper
from simcse_core.evaluation.paper import PaperFigure
from simcse_core.training.config import TrainConfig, setting_default
from simcse_core.training.recipes import RECIPES

# Table 6's rows by our pooler and whether its MLP is used in training only.
TABLE6_ROWS = {("cls", True): "[CLS] w/ MLP (train)", ("cls", False): "[CLS] w/ MLP",
               ("cls_before_pooler", True): "[CLS] w/o MLP", ("cls_before_pooler", False): "[CLS] w/o MLP",
               ("avg_first_last", True): "First-last avg.", ("avg_first_last", False): "First-last avg."}
DEFAULT_POOLER = {"unsup": ("cls", True), "sup": ("cls", False)}  # §6.3
# TrainConfig's defaults are the paper's settings (max length: the official scripts' --max_seq_length).
PAPER_DROPOUT = setting_default("dropout")
PAPER_TEMPERATURE = setting_default("temperature")
PAPER_MAX_LENGTH = setting_default("max_length")
PAPER_ALPHA = 1.0  # Table 7's best row, the supervised default
# The paper's runs (§6.1, Appendix A): one epoch of 10^6 Wikipedia sentences; three epochs of SNLI + MNLI (its
# 314k pairs; the official file, which the step count reads, has 275,601 triplets).
PAPER_DATA = {"unsup": "10⁶ Wikipedia sentences", "sup": f"SNLI + MNLI, {paper.NLI_PAIRS} pairs"}
OFFICIAL_NLI_TRIPLETS = 275_601
PAPER_STEPS = {"unsup": RECIPES["unsup-bert"].steps(10 ** 6), "sup": RECIPES["sup-bert"].steps(OFFICIAL_NLI_TRIPLETS)}
PAPER_LENGTH = {"unsup": f"{PAPER_STEPS['unsup']:,}: one epoch",
                "sup": f"about {PAPER_STEPS['sup']:,}: three epochs of the official file's "
                       f"{OFFICIAL_NLI_TRIPLETS:,} triplets"}


@dataclass(frozen=True)
class PaperMatch:
    """The paper's row for a run (or none, and why), and what in our run differs from that row's setting."""

    figure: PaperFigure | None
    differs: tuple[str, ...] = ()  # e.g. "batch 128 (the row's: 64)"
    why_none: str = ""  # when ``figure`` is None: which setting no row has

    def said(self) -> str:
        """One sentence for the screen: the row and its setting, or that no row matches, and the differences."""
        if self.figure is None:
            return f"no row of the paper matches this run: {self.why_none}"
        figure = self.figure
        setting = "unsupervised" if figure.setting == "unsup" else "supervised"
        inferred = " (setting not stated; inferred)" if figure.table == "Table D.1" else ""
        line = (f"paper, {figure.model}, {setting}{inferred}: {figure.table} “{figure.row}” = {figure.value:.1f} "
                f"on the full STS-B dev set")
        if self.differs:
            line += "; ours differs in " + ", ".join(self.differs)
        return line


def fmt(value: float) -> str:
    """0.1 -> "0.1", 3e-05 -> "3e-5"."""
    return f"{value:g}".replace("e-0", "e-")


def match(config: TrainConfig, hard_negatives: bool = False, pooler: str | None = None, model: str | None = None,
          data: str | None = None) -> PaperMatch:
    """The row of the paper ``config`` may be shown beside (see the module's rules). ``pooler`` is the run's
    pooler when ``config.pooler`` is None (the model's own); ``model`` and ``data``, when given, name the run's
    start and training data among the differences."""
    setting = config.mode
    ours = (config.pooler or pooler, bool(config.resolved_mlp_only_train) and (config.pooler or pooler) == "cls")
    ours_row = TABLE6_ROWS.get(ours)
    default_row = TABLE6_ROWS[DEFAULT_POOLER[setting]]
    changed: list[tuple[str, str]] = []  # (the setting a table varies, our value), the pooler aside
    if config.fixed_dropout_mask:
        changed.append(("fixed mask", f"the same dropout mask for both views at p {fmt(config.dropout)}"))
    elif config.dropout != PAPER_DROPOUT:
        changed.append(("dropout", f"dropout p {fmt(config.dropout)}"))
    if config.temperature != PAPER_TEMPERATURE:
        changed.append(("temperature", f"τ {fmt(config.temperature)}"))
    if setting == "sup" and hard_negatives and config.hard_negative_weight != PAPER_ALPHA:
        changed.append(("alpha", f"hard-negative weight α {fmt(config.hard_negative_weight)}"))
    if setting == "sup" and not hard_negatives:
        changed.append(("no hard negatives", "no hard negatives"))

    differs = [*([f"model {model} (the row's: BERT-base)"] if model else []),
               *([f"data: {data} (the paper's: {PAPER_DATA[setting]})"] if data else []),
               *_differences(config, setting)]
    if len(changed) > 1:
        return PaperMatch(None, tuple(differs), "it changes " + " and ".join(said for _, said in changed)
                          + " at once; each table of the paper varies one setting")
    found = _row(config, setting, changed, ours, default_row)
    if found.figure is None:
        return replace(found, differs=(*found.differs, *differs))
    if ours_row != found.figure.pooler:  # a row measured through another pooler than ours
        differs.insert(0, f"{_pooler_said(ours)} (the row's: {found.figure.pooler})")
    return replace(found, differs=(*found.differs, *differs))


def _row(config: TrainConfig, setting: str, changed: list[tuple[str, str]], ours: tuple[str | None, bool],
         default_row: str) -> PaperMatch:
    """The row for at most one changed setting; ``differs`` holds only what the row itself adds."""
    ours_row = TABLE6_ROWS.get(ours)
    if not changed:  # the pooler alone, or nothing: Table 6 (unsup) or Table 7's default row (sup)
        if ours_row is None:
            return PaperMatch(None, why_none=f"{_pooler_said(ours)}: Table 6 has rows for [CLS] (with or without "
                                             "the MLP) and the first-last average only")
        if setting == "sup" and ours_row == default_row:
            return PaperMatch(paper.TABLE7["Contradiction, α = 1.0"])
        return PaperMatch(paper.TABLE6[ours_row][setting])
    kind, said = changed[0]
    if kind == "fixed mask":
        if setting == "unsup" and config.dropout == PAPER_DROPOUT:
            return PaperMatch(paper.TABLE3["Fixed 0.1"])
        return PaperMatch(None, why_none=f"{said}: Table 3 fixes the mask only at p 0.1, unsupervised")
    if kind == "dropout":
        row = next((r for r in paper.TABLE3 if r.startswith("p = ") and float(r[4:]) == config.dropout), None)
        if setting == "unsup" and row is not None:
            return PaperMatch(paper.TABLE3[row])
        rows = ", ".join(r.removeprefix("p = ") for r in paper.TABLE3 if r.startswith("p = "))
        where = "Table 3 is unsupervised" if setting == "sup" else f"Table 3's rows are p {rows}"
        return PaperMatch(None, why_none=f"{said}: {where}")
    if kind == "temperature":
        row = next((r for r in paper.TABLE_D1 if r.startswith("τ = ") and float(r[4:]) == config.temperature), None)
        if row is not None:
            extra = ("setting: unsupervised (the row's: supervised, inferred)",) if setting == "unsup" else ()
            return PaperMatch(paper.TABLE_D1[row], extra)
        rows = ", ".join(r.removeprefix("τ = ") for r in paper.TABLE_D1 if r.startswith("τ = "))
        return PaperMatch(None, why_none=f"{said}: Table D.1's rows are τ {rows}")
    if kind == "alpha":
        row = next((r for r in paper.TABLE7 if r.startswith("Contradiction, α = ")
                    and float(r.rsplit("= ", 1)[1]) == config.hard_negative_weight), None)
        if row is not None:
            return PaperMatch(paper.TABLE7[row])
        return PaperMatch(None, why_none=f"{said}: Table 7's rows are α 0.5, 1 and 2")
    return PaperMatch(paper.TABLE7["N/A (no hard negative)"])  # supervised pairs without hard negatives


def _pooler_said(pooler: tuple[str | None, bool]) -> str:
    name, mlp_in_training_only = pooler
    if name is None:
        return "the model's own pooler"
    row = TABLE6_ROWS.get(pooler)
    return f"pooler “{row}”" if row else f"pooler {name}" + (" (MLP in training only)" if mlp_in_training_only else "")


def _differences(config: TrainConfig, setting: str) -> tuple[str, ...]:
    """The run's settings no table varies that differ from the paper's (Table A.1, BERT-base; official scripts)."""
    batch, lr = paper.TABLE_A1_BERT_BASE[setting]
    out = []
    if config.batch_size != batch:
        out.append(f"batch {config.batch_size} (the paper's: {batch})")
    if config.lr != lr:
        out.append(f"lr {fmt(config.lr)} (the paper's: {fmt(lr)})")
    if config.steps != PAPER_STEPS[setting]:
        out.append(f"{config.steps:,} steps (the paper's: {PAPER_LENGTH[setting]})")
    if config.max_length != PAPER_MAX_LENGTH:
        out.append(f"training length {config.max_length} (the official scripts': {PAPER_MAX_LENGTH})")
    return tuple(out)
