"""Embedding map tab: UMAP of the corpus before and after fine-tuning, and the pairwise-cosine histogram."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import numpy as np

from simcse_core.teaching import lessons
from ui.present import plots, text
from ui.serving import forms
from ui.serving.errors import guarded
from ui.serving.session import Session
from ui.serving.studio import Studio, comparison_for

logger = logging.getLogger(__name__)


def subsample(n: int, limit: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``limit`` of ``n`` items (all of them when n <= limit)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def vector_stats(vectors: np.ndarray) -> dict[str, float]:
    """Anisotropy and uniformity of a set of vectors (lower is better for both)."""
    from simcse_core.evaluation.metrics import anisotropy, uniformity

    return {"anisotropy": anisotropy(vectors), "uniformity": uniformity(vectors)}


def stats_title(name: str, stats: dict[str, float]) -> str:
    return f"{name} — anisotropy {stats['anisotropy']:.2f} · uniformity {stats['uniformity']:.2f}"


def stats_markdown(rows: list[tuple[str, dict[str, float]]], note: str) -> str:
    """The ``#map-stats`` text: one line per map, and what the numbers mean."""
    lines = ["| Map | Anisotropy ↓ | Uniformity ↓ |", "|---|---|---|"]
    lines += [f"| {name} | {s['anisotropy']:.3f} | {s['uniformity']:.3f} |" for name, s in rows]
    meaning = ("Anisotropy: mean cosine of two random sentences (0 = spread in every direction). "
               "Uniformity: how evenly the sentences cover the sphere (more negative = more even).")
    return "\n".join(lines) + f"\n\n{meaning}\n\n{note}"


def labels_for(corpus, vectors: np.ndarray, idx: np.ndarray) -> tuple[list[str], str]:
    """Topic labels of the shown points, or cluster labels when the corpus has no topics."""
    if corpus.topics:
        return [corpus.topics[i] for i in idx], "topic"
    from simcse_core.teaching.projection import cluster_labels

    clusters = cluster_labels(vectors)
    return [f"cluster {int(c) + 1}" for c in clusters], "cluster (the corpus has no topic labels)"


def histogram(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(edges, share of pairs per bin) of the pairwise cosines."""
    from simcse_core.teaching.projection import pairwise_cosine_histogram

    counts, edges = pairwise_cosine_histogram(vectors)
    counts = np.asarray(counts, dtype=float)
    return np.asarray(edges), counts / max(counts.sum(), 1.0)


@dataclass
class Drawing:
    """What a map shows that follows from its vectors alone, made once per map key with its UMAP points (so a
    redraw, or another visitor's draw of a shared map, only composes text): the points' labels, the statistics,
    the histogram and the figure of each "show moves" setting (made on first use)."""

    points: tuple  # (before,) or (before, after): (N, 2) each
    sentences: list[str]
    labels: list[str]
    label_kind: str
    stats: tuple  # per map, {"anisotropy", "uniformity"}
    histogram: Any  # the plotly figure of the pairwise cosines
    figures: dict = field(default_factory=dict)  # show_moves -> plotly figure

    def figure(self, show_moves: bool, titles: tuple[str, str]) -> Any:
        """The map's figure; built once per ``show_moves`` (a plotly figure is only read when served)."""
        if show_moves not in self.figures:
            after = self.points[1] if len(self.points) > 1 else None
            self.figures[show_moves] = plots.embedding_maps(self.points[0], after, self.sentences, self.labels,
                                                            show_moves=show_moves, titles=titles)
        return self.figures[show_moves]


def drawing(studio: Studio, vectors: tuple[np.ndarray, ...], sentences: list[str], corpus, idx: np.ndarray,
            progress) -> Drawing:
    """Project ``vectors`` (one set, or before and after into one shared space) and measure them."""
    progress(0.8, desc="Projecting with UMAP" if len(vectors) == 1 else
             "Projecting both with UMAP into one shared space")
    points = studio.project(*vectors)
    labels, label_kind = labels_for(corpus, vectors[-1], idx)
    hists = [histogram(v) for v in vectors]  # same default bins, so the bars line up
    figure = plots.cosine_histograms(hists[0][0], *(h for _, h in hists))
    return Drawing(points, sentences, labels, label_kind, tuple(vector_stats(v) for v in vectors), figure)


@guarded
def draw_map(studio: Studio, show_moves: bool, choice: str, pooler: str, session: Session,
             progress=gr.Progress()) -> dict[str, Any]:
    """Handler: the before | after maps, the cosine histogram and the statistics."""
    pair = comparison_for(studio, choice, session)
    if pair is None:
        encoder = studio.encoder_for(choice, pooler, session)
        model_key = studio.model_key(choice, pooler, session)
        corpus, index = studio.searchable(session, encoder, model_key, progress)
        idx, sentences, notes = _sample(studio, corpus)
        made = studio.projection(session, (model_key, corpus.key), lambda: drawing(
            studio, (np.asarray(index.vectors)[idx],), sentences, corpus, idx, progress))
        (s_before,) = made.stats
        figure = made.figure(False, (stats_title(encoder.description, s_before), ""))
        notes.append(text.MAP_NO_FINETUNE)
        stats = stats_markdown([(encoder.description, s_before)], " ".join(notes))
        return {"figure": figure, "histogram": made.histogram, "stats": stats, "session": session}

    run = pair.run
    corpus, base_index = studio.searchable(session, pair.base, run.base_key, progress)
    corpus_after, tuned_index = studio.searchable(session, run.encoder, run.model_key, progress)
    if corpus_after.key != corpus.key:  # the visitor switched corpus meanwhile: draw the newer one
        corpus, base_index = studio.searchable(session, pair.base, run.base_key, progress)
    idx, sentences, notes = _sample(studio, corpus)
    made = studio.projection(session, (run.base_key, run.model_key, corpus.key), lambda: drawing(
        studio, (np.asarray(base_index.vectors)[idx], np.asarray(tuned_index.vectors)[idx]), sentences, corpus, idx,
        progress))
    s_before, s_after = made.stats
    figure = made.figure(bool(show_moves), (stats_title("Before", s_before), stats_title("After", s_after)))
    notes.append(f"Colour: {made.label_kind}. Before = {pair.base_label}; after = {pair.tuned_label}.")
    stats = stats_markdown([("Before", s_before), ("After", s_after)], " ".join(notes))
    if run.base_name == lessons.START_MODEL:
        stats += "\n\n" + text.raw_start_map_note(run)
    return {"figure": figure, "histogram": made.histogram, "stats": stats, "session": session}


def _sample(studio: Studio, corpus) -> tuple[np.ndarray, list[str], list[str]]:
    """The shown points (a fixed sample of big corpora), their sentences, and a note when sampled."""
    idx = subsample(len(corpus.sentences), studio.config.max_map_points)
    notes = []
    if len(idx) < len(corpus.sentences):
        notes.append(f"Showing a random sample of {len(idx):,} of the {len(corpus.sentences):,} sentences.")
    return idx, [corpus.sentences[i] for i in idx], notes


def build(studio: Studio, picker: gr.Dropdown, pooler: gr.Dropdown, session: gr.State) -> None:
    """Lay out the tab (inside a ``gr.Tab``) and wire its events."""
    gr.Markdown(text.MAP_INTRO)
    with gr.Row():
        run = gr.Button("Draw the map", variant="primary", elem_id="map-run", scale=1)
        moves = gr.Checkbox(value=False, label="Show how each sentence moved (lines from before to after)",
                            elem_id="map-show-moves", scale=3)
    figure = gr.Plot(plots.placeholder("Press “Draw the map”.", 560), elem_id="map-plot", show_label=False)
    with gr.Row():
        with gr.Column(scale=3):
            hist = gr.Plot(plots.placeholder("The histogram of pairwise cosines appears here.", 320),
                           elem_id="map-hist", show_label=False)
        with gr.Column(scale=2):
            stats = gr.Markdown(text.MAP_BEFORE_DRAWING, elem_id="map-stats", container=True, padding=True)
    # The /embedding_map endpoint's parameters and outputs, in these orders (the session is not a parameter).
    drawn = forms.wire(functools.partial(draw_map, studio),
                       {"show_moves": moves, "choice": picker, "pooler": pooler, "session": session},
                       {"figure": figure, "histogram": hist, "stats": stats, "session": session})
    run.click(**drawn, api_name="embedding_map", **studio.queues.heavy)
    moves.change(**drawn, api_visibility="undocumented", **studio.queues.heavy)
