"""Evaluate tab: STS Spearman, alignment, uniformity and anisotropy of the base and fine-tuned models."""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from simcse_core.evaluation.sets import QUICK_EVAL_PAIRS
from simcse_core.teaching import table5
from ui.present import plots, text
from ui.present.components import SettingDropdown
from ui.serving import forms
from ui.serving.errors import InputError, check_choice, guarded
from ui.serving.session import Session
from ui.serving.studio import Studio, comparison_for

logger = logging.getLogger(__name__)

STSB_DEV_QUICK = f"STS-B dev — quick: a fixed {QUICK_EVAL_PAIRS}-pair sample"
STSB_DEV = "STS-B dev — all 1,500 pairs (slower: about 20–60 s per model on 2 CPU cores)"
STSB_TEST = "STS-B test — all 1,379 pairs (about 20–60 s per model; the paper's Table 5 figure)"
DEMO = f"Demo pairs ({text.DEMO_SET_NOTE})"
UPLOAD = text.EVAL_UPLOAD
TABLE_COLUMNS = ["Model", "Evaluation set", "Pairs", "Spearman × 100 ↑", "Paper, BERT-base (unsup / sup)",
                 "Alignment ↓", "Uniformity ↓", "Anisotropy ↓", "Time to score (s, this server)"]
SCATTER_PAIRS = 400  # the scatter shows a fixed sample (the table uses every pair)


def set_choices() -> list[str]:
    """The evaluation sets on this machine (STS-B only when installed); the quick sample first."""
    from simcse_core.evaluation.sets import stsb_available

    return ([STSB_DEV_QUICK, STSB_DEV, STSB_TEST] if stsb_available() else []) + [DEMO, UPLOAD]


def paper_figure(choice: str) -> str:
    """The paper's figure for the same set, or a dash when the paper has none for it."""
    from simcse_core.evaluation import paper

    if choice in (STSB_DEV_QUICK, STSB_DEV):
        return (f"{paper.STSB_DEV['unsup']} unsup ([CLS] w/ MLP (train), p 0.1: Tables 3, 6) / "
                f"{paper.STSB_DEV['sup']} sup ([CLS] w/ MLP, hard negatives α 1: Table 7), BERT-base")
    if choice == STSB_TEST:
        return (f"{paper.STSB_TEST['unsup']} unsup / {paper.STSB_TEST['sup']} sup (Table 5, SimCSE-BERT-base, "
                "the §6.3 default poolers)")
    return "—"


def load_set(choice: str, upload: str | None):
    """The chosen :class:`ScoredPairs` (DataError for a bad upload)."""
    from simcse_core.evaluation import sets as evaluation

    if choice == STSB_DEV_QUICK:
        return evaluation.load_stsb("dev").sample(QUICK_EVAL_PAIRS)
    if choice == STSB_DEV:
        return evaluation.load_stsb("dev")
    if choice == STSB_TEST:
        return evaluation.load_stsb("test")
    if choice == UPLOAD:
        if not upload:
            raise InputError("Choose a file of scored pairs first: a .csv/.tsv with the columns sentence1, "
                             "sentence2, score (any scale; higher = more similar).")
        return evaluation.load_scored_pairs(upload)
    return evaluation.load_demo_pairs()


def set_label(pairs) -> str:
    """The set's name, marked when it is not a benchmark."""
    if pairs.is_benchmark or text.DEMO_SET_NOTE in pairs.name or "not a benchmark" in pairs.name:
        return pairs.name
    return f"{pairs.name} ({text.DEMO_SET_NOTE})"


def models_to_evaluate(studio: Studio, choice: str, pooler: str, session: Session) -> list[tuple]:
    """(label, encoder) pairs: a run and the base it started from after a fine-tune, else the picked model."""
    pair = comparison_for(studio, choice, session)
    if pair is None:
        encoder = studio.encoder_for(choice, pooler, session)
        return [(f"Base: {encoder.description}", encoder)]
    return [(f"Base: {pair.base.description}", pair.base), (f"Fine-tuned: {pair.tuned_label}", pair.run.encoder)]


def pair_cosines(encoder, pairs) -> np.ndarray:
    """The cosine of each pair (N,)."""
    first = encoder.encode(list(pairs.sentence1))  # (N, D) unit vectors
    second = encoder.encode(list(pairs.sentence2))  # (N, D)
    return np.sum(first * second, axis=1)


def _fmt(value: float, digits: int) -> float | str:
    return "—" if value is None or math.isnan(value) else round(float(value), digits)


@guarded
def evaluate(studio: Studio, set_choice: str, upload: str | None, choice: str, pooler: str,
             session: Session, progress=gr.Progress()) -> dict[str, Any]:
    """Handler: a metrics table for each model and a gold-vs-cosine scatter."""
    from simcse_core.evaluation.metrics import embedding_report

    pairs = load_set(check_choice(set_choice, "Evaluation set", set_choices()), upload)
    if len(pairs) < 2:
        raise InputError(f"{pairs.name} has {len(pairs)} scored pair; the evaluation needs at least 2.")
    models = models_to_evaluate(studio, choice, pooler, session)
    shown = pairs.sample(SCATTER_PAIRS)
    rows, series = [], {}
    for k, (label, encoder) in enumerate(models):
        def moved(done: int, total: int, k: int = k, label: str = label) -> None:
            progress(((k + 0.8 * done / max(total, 1)) / len(models)), desc=f"Scoring {label}: {done:,} of "
                     f"{total:,} sentences encoded")

        moved(0, 1)
        start = time.perf_counter()
        report = embedding_report(encoder, pairs, progress=moved)
        rows.append([label, set_label(pairs), len(pairs), _fmt(report["spearman"], 1), paper_figure(set_choice),
                     *(_fmt(report[name], 3) for name in ("alignment", "uniformity", "anisotropy")),
                     round(time.perf_counter() - start, 1)])
        progress((k + 0.8) / len(models), desc=f"Scatter of {label}")
        series[label] = pair_cosines(encoder, shown)
    figure = plots.gold_vs_cosine(shown.scores, series, title=f"{set_label(shown)}: human score vs cosine")
    if not pairs.is_benchmark:
        gr.Info(f"{pairs.name} is a small set made for demonstrations; its numbers are not comparable with "
                "the paper's.")
    return {"table": pd.DataFrame(rows, columns=TABLE_COLUMNS), "scatter": figure}


def show_upload(set_choice: str) -> dict[str, Any]:
    """Handler for the set's choice: the upload box is shown for an uploaded set only."""
    return {"upload": gr.update(visible=set_choice == UPLOAD)}


MINIATURE_COLUMNS = ["raw-bert read through", "Kind", "STS-B dev", "STS-B test", "Paper, BERT-base (Table 5 row)",
                     "How ours differs"]


def miniature_table(rows: list[table5.Table5Row]) -> pd.DataFrame:
    """Table 5 in miniature: each reading beside the paper's STS-B test figure for its row, if any."""
    def paper(row: table5.Table5Row) -> str:
        return "— (no such row)" if row.paper_row is None else f"{row.paper_stsb_test:.2f} ({row.paper_row})"

    return pd.DataFrame([[r.label, r.kind, _fmt(r.stsb_dev if r.stsb_dev is not None else math.nan, 1),
                          _fmt(r.stsb_test, 1), paper(r), r.note or "—"] for r in rows], columns=MINIATURE_COLUMNS)


def spectrum_figure(before: list[float], after: list[float], pooler: str) -> go.Figure:
    """Section 5's singular-value spectrum of the lesson sentences' unit vectors, before and after the run."""
    fig = go.Figure()
    for name, values, dash in (("raw-bert (before)", before, "dot"), ("after the lesson run", after, "solid")):
        fig.add_trace(go.Scatter(x=list(range(1, len(values) + 1)), y=values, name=name, mode="lines",
                                 line={"dash": dash}))
    fig.update_layout(title={"text": f"Singular values of 1,000 lesson sentences' vectors ({pooler})", "x": 0.02},
                      xaxis_title="index", yaxis_title="σ / σ₁", height=320, margin={"l": 50, "r": 10, "t": 40,
                                                                                       "b": 40},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def miniature_panel() -> None:
    """Table 5 in miniature, as measured by bench/raw_model.py on the project's machine."""
    import json

    rows = table5.measured_rows()
    with gr.Accordion("Table 5 in miniature: does SimCSE beat doing nothing?", open=False, elem_id="eval-table5"):
        if not rows:
            gr.Markdown("Not measured on this checkout yet: `python bench/raw_model.py` measures it.")
            return
        gr.Markdown(text.TABLE5_MINIATURE_INTRO + "\n\n**" + table5.verdict(rows) + "**")
        gr.Dataframe(miniature_table(rows), interactive=False, wrap=True, elem_id="eval-table5-rows")
        stored = json.loads(table5.MEASURED_PATH.read_text(encoding="utf-8"))
        if stored.get("spectrum_before") and stored.get("spectrum_after"):
            gr.Plot(spectrum_figure(stored["spectrum_before"], stored["spectrum_after"],
                                    stored.get("spectrum_pooler", "the lesson's pooler")),
                    elem_id="eval-spectrum", show_label=False)


def build(studio: Studio, picker: gr.Dropdown, pooler: gr.Dropdown, session: gr.State) -> None:
    """Lay out the tab (inside a ``gr.Tab``) and wire its events."""
    gr.Markdown(text.EVAL_INTRO)
    choices = set_choices()
    with gr.Row():
        eval_set = SettingDropdown(choices, value=choices[0], label="Evaluation set", elem_id="eval-set", scale=2)
        upload = gr.File(label="Scored pairs (.csv/.tsv: sentence1, sentence2, score)", elem_id="eval-upload",
                         visible=False, scale=2)
        run = gr.Button("Evaluate", variant="primary", elem_id="eval-run", scale=1)
    table = gr.Dataframe(pd.DataFrame(columns=TABLE_COLUMNS), label="Results", elem_id="eval-table",
                         interactive=False, wrap=True,
                         column_widths=["22%", "17%", "6%", "9%", "14%", "9%", "9%", "9%", "5%"])
    with gr.Row():
        with gr.Column(scale=3):
            scatter = gr.Plot(plots.placeholder("Press “Evaluate” to score the model(s).", 420),
                              elem_id="eval-scatter", show_label=False)
        with gr.Column(scale=2):
            gr.Markdown(text.PAPER_REFERENCE, elem_id="eval-reference", container=True, padding=True)
    miniature_panel()
    eval_set.change(**forms.wire(show_upload, {"set_choice": eval_set}, {"upload": upload}), queue=False,
                    api_visibility="private")
    # The /evaluate endpoint's parameters, in this order (the session is not one: gradio keeps it).
    inputs = {"set_choice": eval_set, "upload": upload, "choice": picker, "pooler": pooler, "session": session}
    run.click(**forms.wire(functools.partial(evaluate, studio), inputs, {"table": table, "scatter": scatter}),
              api_name="evaluate", **studio.queues.heavy)
