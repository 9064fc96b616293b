"""The Dropout twins panel: each sentence encoded twice in training mode, and how far apart the twins drift."""

from __future__ import annotations

from typing import Any

import numpy as np

from simcse_core.limits import LIMITS
from ui.present import plots
from ui.present.text import twin_gap
from ui.serving.config import START_RAW
from ui.serving.errors import check_lines, guarded
from ui.serving.session import Session
from ui.serving.studio import Studio
from ui.tabs.inside.inputs import check_setting, start_shown

TWIN_SENTENCES = "A man is playing a guitar on the stage.\nThe stock market fell sharply today.\n" \
                 "My grandmother bakes fresh bread every Sunday morning."
DRIFT_RATES = tuple(round(0.1 * k, 1) for k in range(6))  # 0, 0.1, ..., 0.5


@guarded
def show_twins(studio: Studio, text: str, dropout: float, choice: str, pooler: str, session: Session,
               start: str = START_RAW) -> dict[str, Any]:
    """Handler: each sentence twice in training mode at ``dropout``, and the drift curve over 0-0.5.

    ``start``: "raw" (the raw model the lessons start from, the default) or "picked" (``choice`` and ``pooler``).
    """
    from simcse_core.teaching.mechanisms import dropout_twins, twin_drift

    sentences = check_lines(text, "Sentences", 1, LIMITS.twin_sentences)
    dropout = check_setting(dropout, "dropout", "Dropout rate")
    encoder = studio.start_encoder(start, choice, pooler, session)
    twins = dropout_twins(encoder, sentences, dropout=float(dropout))
    drift = twin_drift(encoder, sentences, DRIFT_RATES)
    figure = plots.dropout_twins_figure(twins.sentences, twins.twin_cosines, twins.nearest_other, DRIFT_RATES,
                                        drift, twins.dropout)
    same = "identical, bit for bit" if twins.eval_identical else f"cosine {min(twins.eval_cosines):.6f}"
    nearest = ""
    if twins.nearest_other is not None:
        nearest = " " + twin_gap(twins.mean_twin_cosine, float(np.mean(twins.nearest_other)))
    summary = (f"### Dropout {twins.dropout:.2f}: twin cosine {twins.mean_twin_cosine:.4f} on average\n"
               f"In **training mode** each pass switches off different random units, so the two vectors of "
               f"one sentence differ (cosine below 1). In **evaluation mode** the two passes are {same}.{nearest}"
               f"\n\n**This small difference is the whole \"data augmentation\" of unsupervised SimCSE.** "
               f"Model: `{start_shown(start, choice, encoder)}`.")
    return {"twin_summary": summary, "twin_plot": figure}
