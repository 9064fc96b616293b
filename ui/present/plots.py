"""Pure plotly figure builders: numbers in, ``go.Figure`` out (no Gradio, no model), testable alone."""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from ui.present.phone import numbered_on_phone, stack_on_phone

BEFORE_COLOR = "#94a3b8"  # slate: the base model
AFTER_COLOR = "#4f46e5"  # indigo: the fine-tuned model
PALETTE = tuple(qualitative.Dark24)  # 24 clearly different colours for topic labels
# plotly_white with every title at the top left, below the row of plotly's toolbar (which sits top right and
# used to cover the end of a title), and room for a second line.
_TEMPLATE = go.layout.Template(pio.templates["plotly_white"])
_TEMPLATE.layout.title.update(x=0, xref="paper", xanchor="left", yref="container", y=1, yanchor="top",
                              pad=dict(t=30))
_LAYOUT = dict(template=_TEMPLATE, margin=dict(l=55, r=20, t=80, b=45), font=dict(size=13),
               title_font=dict(size=15))


def wrap(sentence: str, width: int = 60, max_lines: int = 4) -> str:
    """HTML-escaped sentence broken into lines of about ``width`` characters, for hover labels."""
    lines = textwrap.wrap(html.escape(sentence), width, break_long_words=False, break_on_hyphens=False) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] += " …"
    return "<br>".join(lines)


def short(sentence: str, width: int = 28) -> str:
    """A sentence cut to ``width`` characters, for axis labels."""
    return sentence if len(sentence) <= width else sentence[: width - 1].rstrip() + "…"


PLACEHOLDER_LINE = 34  # characters a line of a placeholder's message: 15 px text fits a 390 px phone's plot


def placeholder(message: str, height: int = 360) -> go.Figure:
    """An empty figure that says what to do to fill it (wrapped: plotly never wraps an annotation)."""
    fig = go.Figure()
    fig.add_annotation(text="<br>".join(textwrap.wrap(message, PLACEHOLDER_LINE)), showarrow=False, x=0.5, y=0.5,
                       xref="paper", yref="paper",
                       font=dict(size=15, color="#64748b"))
    fig.update_layout(**_LAYOUT, height=height, xaxis=dict(visible=False), yaxis=dict(visible=False))
    return fig


def similarity_heatmap(
    sentences: Sequence[str], matrix: np.ndarray, title: str = "", unreadable: Sequence[bool] | None = None
) -> go.Figure:
    """Cosine heatmap: cell (i, j) is sim(sentence i, sentence j); hover shows both sentences.

    Rows and columns flagged in ``unreadable`` (sentences mostly unknown to the model) are blanked out and
    labelled, so no cell claims a similarity the model cannot back up.
    """
    n = len(sentences)
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (n, n):
        raise ValueError(f"matrix must be {n}x{n}, got {matrix.shape}")
    if unreadable is not None and any(unreadable):
        matrix = matrix.copy()
        flags = np.asarray(unreadable, dtype=bool)
        matrix[flags, :] = np.nan
        matrix[:, flags] = np.nan
    # Plotly reads tags in labels and hover text: a visitor's sentence is escaped, so it shows as text.
    labels = [f"{i + 1}. {html.escape(short(s), quote=False)}" + (" ⚠ unknown" if unreadable is not None and
                                                             unreadable[i] else "") for i, s in enumerate(sentences)]
    wrapped = [wrap(s) for s in sentences]  # wrap() escapes
    custom = np.empty((n, n, 2), dtype=object)
    for i in range(n):
        for j in range(n):
            custom[i, j] = (wrapped[i], wrapped[j])
    fig = go.Figure(go.Heatmap(
        z=matrix, x=labels, y=labels, customdata=custom, coloraxis="coloraxis",
        # blanked cells (unreadable sentences) show nothing, not "NaN"
        text=[[f"{v:.2f}" if np.isfinite(v) else "" for v in row] for row in matrix],
        texttemplate="%{text}" if n <= 12 else None,
        hovertemplate="<b>%{customdata[0]}</b><br>vs<br><b>%{customdata[1]}</b><br>cosine = %{z:.3f}"
                      "<extra></extra>",
    ))
    # The colour scale in the layout (coloraxis), so a phone's relayout can hide its bar (numbered_on_phone).
    fig.update_layout(**_LAYOUT, title=title, height=max(420, min(900, 120 + 28 * n)),
                      coloraxis=dict(colorscale="Blues", cmax=1.0, colorbar=dict(title="cosine"),
                                     cmin=min(0.0, float(np.nanmin(matrix))) if np.isfinite(matrix).any() else 0.0))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-40)
    return numbered_on_phone(fig, labels)


def loss_curve(steps: Sequence[int], losses: Sequence[float], chance: float | None = None) -> go.Figure:
    """Training loss per step; ``chance`` (ln of the candidates per anchor) draws where guessing sits."""
    fig = go.Figure(go.Scatter(x=list(steps), y=list(losses), mode="lines+markers", name="loss",
                               line=dict(color=AFTER_COLOR), marker=dict(size=4)))
    fig.update_layout(**_LAYOUT, title="Training loss ↓",
                      height=CHART_HEIGHT, xaxis_title="step", yaxis_title="loss (lower: twins found)")
    if chance is not None:
        fig.update_yaxes(range=[0, max([chance, *losses]) * 1.1])
    return add_chance_line(fig, chance)


def _end_labels(values: Sequence[str]) -> list[str]:
    """Text for the first and last points only (labels on every point overlap when points bunch up)."""
    return [v if k in (0, len(values) - 1) else "" for k, v in enumerate(values)]


def alignment_uniformity(
    steps: Sequence[int], uniformity: Sequence[float], alignment: Sequence[float]
) -> go.Figure:
    """The paper's Figure 2 view: a point per evaluation, x = uniformity, y = alignment, arrows in time order.

    Lower-left is better: positives close together (alignment) and all sentences spread out (uniformity).
    """
    fig = go.Figure(go.Scatter(
        x=list(uniformity), y=list(alignment), mode="markers+text", customdata=list(steps),
        text=_end_labels(["start" if s == 0 else f"step {s}" for s in steps]), textposition="top center",
        marker=dict(size=10, color=list(steps), colorscale="Purples", showscale=False,
                    line=dict(width=1, color="#334155")),
        hovertemplate="step %{customdata}<br>uniformity %{x:.3f}<br>alignment %{y:.3f}<extra></extra>",
    ))
    for k in range(1, len(steps)):
        fig.add_annotation(x=uniformity[k], y=alignment[k], ax=uniformity[k - 1], ay=alignment[k - 1],
                           xref="x", yref="y", axref="x", ayref="y", showarrow=True, arrowhead=3,
                           arrowsize=1.2, arrowwidth=1.5, arrowcolor=AFTER_COLOR, text="")
    if len(alignment):  # room above the top point for its label
        span = max(float(max(alignment)) - float(min(alignment)), 0.02)
        fig.update_yaxes(range=[float(min(alignment)) - 0.1 * span, float(max(alignment)) + 0.2 * span])
    fig.add_annotation(text="↙ better", x=0.02, y=0.04, xref="paper", yref="paper", showarrow=False,
                       font=dict(color="#16a34a", size=13))
    fig.update_layout(**_LAYOUT, height=CHART_HEIGHT, title="Figure 2: alignment vs uniformity",
                      xaxis_title="uniformity (lower: spread out)",
                      yaxis_title="alignment (lower: twins closer)")
    return fig


CHART_HEIGHT = 270  # px of a live run's charts: three of them fit a 1280x720 screen in presenter mode
REFERENCE_REACH = 12.0  # Spearman points: a reference line further than this from our curve is an edge arrow


def sts_curve(
    steps: Sequence[int], spearman: Sequence[float], eval_name: str = "",
    references: Sequence[tuple[float, str]] = (),
) -> go.Figure:
    """STS Spearman × 100 at each evaluation, with dashed reference lines ``(value, label)`` (e.g. the paper's).

    The y-range fits our curve: a reference within reach of it (:data:`REFERENCE_REACH`) is a labelled line, one
    far above or below is a labelled arrow at that edge, so a paper figure 30 points up does not flatten the curve.
    """
    fig = go.Figure(go.Scatter(x=list(steps), y=list(spearman), mode="lines+markers+text",
                               text=_end_labels([f"{v:.1f}" for v in spearman]), textposition="top center",
                               line=dict(color="#10b981"), marker=dict(size=8), name="this run"))
    title = "STS Spearman × 100 ↑"
    fig.update_layout(**_LAYOUT, height=CHART_HEIGHT, title=title, yaxis_title="Spearman × 100",
                      xaxis_title=f"step · ours: {eval_name}" if eval_name else "step")
    ours = [float(v) for v in spearman]
    low, high = (min(ours), max(ours)) if ours else (0.0, 100.0)
    near = [(v, label) for v, label in references if low - REFERENCE_REACH <= v <= high + REFERENCE_REACH]
    values = [*ours, *(v for v, _ in near)] or [low, high]
    low, high = min(values), max(values)
    pad = max(1.0, 0.15 * (high - low))
    fig.update_yaxes(range=[low - pad, high + 2 * pad])  # room above the top line for its label
    colors = (("#f59e0b", "#b45309"), ("#64748b", "#334155"))  # the paper's line, then the others
    off = {True: [], False: []}  # references above / below the chart: one labelled box at that edge
    for k, (value, label) in enumerate(references):
        line, font = colors[min(k, len(colors) - 1)]
        if (value, label) in near:
            fig.add_hline(y=value, line=dict(color=line, dash="dash"), annotation_text=label + " (full dev)",
                          annotation_position="bottom right", annotation_font=dict(size=11, color=font))
        else:
            off[value > high].append(f"<span style='color:{font}'>{'↑' if value > high else '↓'} "
                                     + "<br>   ".join(textwrap.wrap(label, 34)) + "</span>")
    for above, labels in off.items():
        if labels:
            fig.add_annotation(text="<br>".join(["on the full dev set:", *labels]), xref="paper", yref="paper",
                               x=0.01, xanchor="left",
                               y=0.99 if above else 0.01, yanchor="top" if above else "bottom", showarrow=False,
                               align="left", font=dict(size=11), bgcolor="rgba(255,255,255,0.85)")
    return fig


def _label_colors(labels: Sequence[str]) -> dict[str, str]:
    return {label: PALETTE[k % len(PALETTE)] for k, label in enumerate(dict.fromkeys(labels))}


def embedding_maps(
    before: np.ndarray,
    after: np.ndarray | None,
    sentences: Sequence[str],
    labels: Sequence[str],
    show_moves: bool = False,
    titles: tuple[str, str] = ("Before fine-tuning", "After fine-tuning"),
) -> go.Figure:
    """Before | after scatter maps in one shared 2-D space, coloured by label; hover shows the sentence.

    With ``after=None`` only the before map is drawn. ``show_moves`` draws a line from each point's
    position before to its position after (in the after panel).
    """
    before = np.asarray(before, dtype=float)
    n = len(sentences)
    if before.shape != (n, 2) or len(labels) != n:
        raise ValueError("before must be (N, 2) with one sentence and one label per row")
    panels = [before] if after is None else [before, np.asarray(after, dtype=float)]
    if after is not None and panels[1].shape != (n, 2):
        raise ValueError("after must have the same shape as before")
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=titles[: len(panels)],
                        shared_xaxes=True, shared_yaxes=True, horizontal_spacing=0.04)
    labels = [str(label) for label in labels]
    colors = _label_colors(labels)
    hover = [wrap(s) for s in sentences]
    if after is not None and show_moves:
        xs, ys = [], []
        for (x0, y0), (x1, y1) in zip(before, panels[1]):
            xs += [x0, x1, None]
            ys += [y0, y1, None]
        fig.add_trace(go.Scattergl(x=xs, y=ys, mode="lines", hoverinfo="skip", name="movement",
                                   line=dict(color="rgba(100,116,139,0.25)", width=1)), row=1, col=2)
    for label, color in colors.items():
        idx = [i for i, lab in enumerate(labels) if lab == label]
        for col, points in enumerate(panels, start=1):
            fig.add_trace(go.Scattergl(
                x=points[idx, 0], y=points[idx, 1], mode="markers", name=label, legendgroup=label,
                showlegend=col == 1, marker=dict(size=6, color=color, opacity=0.8),
                customdata=[[hover[i], label] for i in idx],
                hovertemplate="%{customdata[0]}<br><i>%{customdata[1]}</i><extra></extra>",
            ), row=1, col=col)
    fig.update_layout(**_LAYOUT, height=560, legend=dict(title="topic", itemsizing="constant"))
    fig.update_xaxes(showticklabels=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, zeroline=False)
    return stack_on_phone(fig, titles[: len(panels)])


def cosine_histograms(
    edges: np.ndarray, before: np.ndarray, after: np.ndarray | None = None
) -> go.Figure:
    """Histogram of pairwise cosines before (and after) fine-tuning, on shared bins.

    ``edges`` (K+1,) are the bin edges; ``before``/``after`` (K,) the fraction (or count) of pairs per bin.
    """
    edges = np.asarray(edges, dtype=float)
    centers = (edges[:-1] + edges[1:]) / 2
    width = float(np.diff(edges).mean()) if len(edges) > 1 else 0.05
    fig = go.Figure(go.Bar(x=centers, y=np.asarray(before, dtype=float), width=width, name="before",
                           marker_color=BEFORE_COLOR, opacity=0.75))
    if after is not None:
        fig.add_trace(go.Bar(x=centers, y=np.asarray(after, dtype=float), width=width, name="after",
                             marker_color=AFTER_COLOR, opacity=0.6))
    fig.update_layout(**_LAYOUT, barmode="overlay", height=320,
                      title="Cosine of every pair of corpus sentences", xaxis_title="cosine similarity",
                      yaxis_title="share of pairs", bargap=0)
    used = np.flatnonzero(np.asarray(before) + (np.asarray(after) if after is not None else 0))
    low = float(edges[used[0]]) if len(used) else float(edges[0])
    fig.update_xaxes(range=[max(float(edges[0]), min(-0.1, low - 0.1)), 1.0])
    return fig


def gold_vs_cosine(gold: Sequence[float], series: dict[str, Sequence[float]], title: str = "") -> go.Figure:
    """Scatter of human score (x) against the model's cosine (y), one colour per model."""
    fig = go.Figure()
    colors = (BEFORE_COLOR, AFTER_COLOR, "#10b981")
    for k, (name, cosines) in enumerate(series.items()):
        fig.add_trace(go.Scattergl(x=list(gold), y=list(cosines), mode="markers", name=name,
                                   marker=dict(size=5, color=colors[k % len(colors)], opacity=0.55),
                                   hovertemplate="gold %{x:.2f}<br>cosine %{y:.3f}<extra></extra>"))
    fig.update_layout(**_LAYOUT, height=440, title=title or "Human score vs model cosine",
                      xaxis_title="human similarity score", yaxis_title="cosine similarity",
                      legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0))
    return fig


# --- Inside SimCSE: mechanisms, ablations, the cone -------------------------------------------------------
# Twelve colours a reader tells apart at a glance (matplotlib's tab10 plus two), for topic labels.
TOPIC_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                "#111827", "#bcbd22", "#f59e0b", "#7f7f7f")
CHANCE_COLOR = "#dc2626"


def add_chance_line(fig: go.Figure, chance: float | None) -> go.Figure:
    """A dashed horizontal line at the loss of random guessing, ln(candidates per anchor)."""
    if chance is not None:
        fig.add_hline(y=chance, line=dict(color=CHANCE_COLOR, dash="dash", width=1.5),
                      annotation_text=f"chance: ln(candidates) = {chance:.2f}", annotation_position="top right",
                      annotation_font=dict(color=CHANCE_COLOR, size=12))
    return fig


def dropout_twins_figure(sentences: Sequence[str], twin: Sequence[float], nearest: Sequence[float] | None,
                         rates: Sequence[float], drift: Sequence[float], dropout: float) -> go.Figure:
    """Left: each sentence's twin cosine (and its nearest OTHER sentence); right: mean twin cosine vs dropout."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.58, 0.42], horizontal_spacing=0.12,
                        subplot_titles=(f"Twins at dropout {dropout:.2f} (training mode)",
                                        "How far the twins drift as dropout grows"))
    labels = [f"{i + 1}. {short(s, 34)}" for i, s in enumerate(sentences)]
    fig.add_trace(go.Bar(y=labels, x=list(twin), orientation="h", name="its own twin",
                         marker_color=AFTER_COLOR, text=[f"{v:.3f}" for v in twin], textposition="inside",
                         hovertemplate="%{y}<br>twin cosine %{x:.4f}<extra></extra>"), row=1, col=1)
    if nearest is not None:
        fig.add_trace(go.Bar(y=labels, x=list(nearest), orientation="h", name="closest other sentence",
                             marker_color=BEFORE_COLOR, text=[f"{v:.3f}" for v in nearest],
                             textposition="outside", cliponaxis=False,
                             hovertemplate="%{y}<br>closest other %{x:.4f}<extra></extra>"), row=1, col=1)
    low = min([*twin, *(nearest or [])] + [0.5])
    fig.update_xaxes(range=[max(-1.0, low - 0.12), 1.0], title_text="cosine", row=1, col=1)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.add_trace(go.Scatter(x=list(rates), y=list(drift), mode="lines+markers", name="mean twin cosine",
                             line=dict(color=AFTER_COLOR, width=3), showlegend=False,
                             hovertemplate="dropout %{x:.2f}<br>mean twin cosine %{y:.4f}<extra></extra>"),
                  row=1, col=2)
    fig.add_vline(x=dropout, line=dict(color="#16a34a", width=2, dash="dot"), row=1, col=2)
    fig.update_xaxes(title_text="dropout rate", row=1, col=2)
    fig.update_yaxes(title_text="cosine of the twins", row=1, col=2)
    fig.update_layout(**_LAYOUT, height=380, barmode="group",
                      legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0))
    return stack_on_phone(fig, [a.text for a in fig.layout.annotations[:2]], labels_inside=["yaxis"])


def loss_anatomy_figure(anchors: Sequence[str], candidates: Sequence[str], cosines: np.ndarray,
                        probabilities: np.ndarray, row_losses: Sequence[float], chance: float,
                        temperature: float, n_positives: int) -> go.Figure:
    """Cosine matrix | softmax of each row | each row's loss, with the positives outlined on the diagonal.

    Columns after ``n_positives`` are hard negatives (supervised mode), set off by a vertical line.
    """
    b, c = np.asarray(cosines).shape
    rows = [f"{i + 1}. {short(s, 22)}" for i, s in enumerate(anchors)]
    cols = [f"{'+' if j < n_positives else '−'}{(j % n_positives) + 1}" for j in range(c)]
    fig = make_subplots(rows=1, cols=3, column_widths=[0.38, 0.38, 0.24], horizontal_spacing=0.06,
                        subplot_titles=("cosine(anchor, candidate)", f"softmax of each row at τ = {temperature:g}",
                                        f"row loss (dashed: chance {chance:.2f})"))
    hover = "anchor %{y}<br>candidate %{x}<br>%{z:.3f}<extra></extra>"
    show_text = c <= 16
    fig.add_trace(go.Heatmap(z=cosines, x=cols, y=rows, colorscale="Blues", zmin=-0.2, zmax=1.0,
                             showscale=False, hovertemplate=hover, text=np.round(cosines, 2),
                             texttemplate="%{text:.2f}" if show_text else None, textfont=dict(size=10)),
                  row=1, col=1)
    fig.add_trace(go.Heatmap(z=probabilities, x=cols, y=rows, colorscale="Purples", zmin=0.0, zmax=1.0,
                             showscale=False, hovertemplate=hover, text=np.round(probabilities, 2),
                             texttemplate="%{text:.2f}" if show_text else None, textfont=dict(size=10)),
                  row=1, col=2)
    losses = list(row_losses)
    fig.add_trace(go.Bar(x=losses, y=rows, orientation="h", marker_color=AFTER_COLOR, showlegend=False,
                         text=[f"{v:.2f}" for v in losses], textposition="auto",
                         hovertemplate="%{y}<br>loss %{x:.3f}<extra></extra>"), row=1, col=3)
    fig.add_vline(x=chance, line=dict(color=CHANCE_COLOR, dash="dash", width=1.5), row=1, col=3)
    for col in (1, 2):  # outline each anchor's positive
        for i in range(b):
            fig.add_shape(type="rect", x0=i - 0.5, x1=i + 0.5, y0=i - 0.5, y1=i + 0.5, row=1, col=col,
                          line=dict(color="#16a34a", width=2.5))
        if c > n_positives:
            fig.add_vline(x=n_positives - 0.5, line=dict(color="#334155", width=2), row=1, col=col)
    for col in (1, 2, 3):
        fig.update_yaxes(autorange="reversed", row=1, col=col, showticklabels=col == 1)
    columns = "candidate (+i: positive of i, −i: hard negative of i)" if c > n_positives else \
        "candidate (+i: the twin of anchor i)"
    fig.update_xaxes(tickfont=dict(size=10), title_text=columns, row=1, col=1)
    fig.update_xaxes(tickfont=dict(size=10), title_text="candidate", row=1, col=2)
    fig.update_xaxes(title_text="−log p(own positive)", range=[0, max(losses + [chance]) * 1.15], row=1, col=3)
    fig.update_layout(**{**_LAYOUT, "margin": dict(l=10, r=20, t=50, b=60)}, height=max(380, 110 + 30 * b))
    return stack_on_phone(fig, [a.text for a in fig.layout.annotations[:3]], labels_inside=["yaxis", "yaxis2"])


def ablation_plane(runs: Sequence[dict], title: str = "Your preset runs on the alignment–uniformity plane") \
        -> go.Figure:
    """Every preset run as an arrow from its start to its end (the paper's Figure 2, several runs at once).

    Each run dict has ``label``, ``uniformity`` and ``alignment`` lists (one value per evaluation), ``ours``
    (final Spearman) and ``paper`` (the paper's figure); optionally ``setting`` (the paper row's table, row and
    setting, a second legend line) and ``start`` (the vector its start point is read through, e.g. "raw [CLS]
    vector"): each start point is labelled with the vectors drawn there.
    """
    fig = go.Figure()
    for k, run in enumerate(runs):
        color = TOPIC_COLORS[k % len(TOPIC_COLORS)]
        u, a = list(run["uniformity"]), list(run["alignment"])
        name = f"{run['label']}: ours {run['ours']:.1f} · paper {run['paper']:.1f}"
        if run.get("setting"):
            name += f"<br>{html.escape(run['setting'])}"
        fig.add_trace(go.Scatter(x=u, y=a, mode="lines+markers", name=name, line=dict(color=color, width=2.5),
                                 marker=dict(size=[11] + [6] * (len(u) - 2) + [11] if len(u) > 1 else [11]),
                                 hovertemplate=f"{html.escape(run['label'])}<br>uniformity %{{x:.3f}}<br>"
                                               "alignment %{y:.3f}<extra></extra>"))
        if len(u) > 1:
            fig.add_annotation(x=u[-1], y=a[-1], ax=u[-2], ay=a[-2], xref="x", yref="y", axref="x", ayref="y",
                               showarrow=True, arrowhead=3, arrowsize=1.6, arrowwidth=2.5, arrowcolor=color,
                               text="")
    from simcse_core.teaching.ablations import START_MODEL

    starts: dict[tuple[float, float], list[str]] = {}
    for run in runs:
        point = (round(float(run["uniformity"][0]), 3), round(float(run["alignment"][0]), 3))
        vectors = starts.setdefault(point, [])
        if run.get("start", "") not in vectors:
            vectors.append(run.get("start", ""))
    for k, ((u0, a0), vectors) in enumerate(starts.items()):
        named = " / ".join(html.escape(v) for v in vectors if v)
        fig.add_annotation(text=f"start: {START_MODEL}" + (f", {named}" if named else ""), x=u0, y=a0,
                           showarrow=True, arrowhead=0, ax=40, ay=-30 - 18 * k, font=dict(size=11, color="#475569"))
    fig.add_annotation(text="↙ better", x=0.02, y=0.04, xref="paper", yref="paper", showarrow=False,
                       font=dict(color="#16a34a", size=13))
    fig.update_layout(**_LAYOUT, height=460, title=title, showlegend=True,
                      xaxis_title="uniformity (lower: more spread out)",
                      yaxis_title="alignment (lower: positives closer)",
                      legend=dict(orientation="h", yanchor="top", y=-0.16, xanchor="left", x=0))
    return fig


def _arrow_panel(fig: go.Figure, points: np.ndarray, labels: Sequence[str], sentences: Sequence[str],
                 colors: dict[str, str], col: int, show_legend: bool) -> None:
    xref, yref = ("x", "y") if col == 1 else (f"x{col}", f"y{col}")
    theta = np.linspace(0, 2 * np.pi, 181)
    fig.add_trace(go.Scatter(x=np.cos(theta), y=np.sin(theta), mode="lines", hoverinfo="skip",
                             line=dict(color="#cbd5e1", width=1.5), showlegend=False), row=1, col=col)
    for (x, y), label in zip(points, labels):
        fig.add_annotation(x=float(x), y=float(y), ax=0, ay=0, xref=xref, yref=yref, axref=xref, ayref=yref,
                           showarrow=True, arrowhead=2, arrowsize=1.0, arrowwidth=2.4, arrowcolor=colors[label],
                           opacity=0.9, text="")
    for label, color in colors.items():
        idx = [i for i, lab in enumerate(labels) if lab == label]
        fig.add_trace(go.Scatter(
            x=points[idx, 0], y=points[idx, 1], mode="markers", name=label, legendgroup=label,
            showlegend=show_legend, marker=dict(size=5, color=color, opacity=0.6),
            customdata=[[wrap(sentences[i]), label] for i in idx],
            hovertemplate="%{customdata[0]}<br><i>%{customdata[1]}</i><extra></extra>"), row=1, col=col)


def cone_figure(before: np.ndarray, after: np.ndarray, labels: Sequence[str], sentences: Sequence[str],
                titles: tuple[str, str]) -> go.Figure:
    """Each sentence as a bold arrow from the centre, before | after, on one linear basis, inside the unit circle.

    A narrow fan of long arrows is the cone (every sentence points the same way); a wide fan of shorter
    arrows is a space used in many directions.
    """
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    labels = [str(label) for label in labels]
    colors = {label: TOPIC_COLORS[k % len(TOPIC_COLORS)] for k, label in enumerate(dict.fromkeys(labels))}
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.05)
    _arrow_panel(fig, before, labels, sentences, colors, 1, True)
    _arrow_panel(fig, after, labels, sentences, colors, 2, False)
    for col in (1, 2):
        fig.update_xaxes(range=[-1.08, 1.08], zeroline=True, zerolinecolor="#e2e8f0", showticklabels=False,
                         row=1, col=col, title_text="axis 1: the direction all sentences share")
        fig.update_yaxes(range=[-1.08, 1.08], zeroline=True, zerolinecolor="#e2e8f0", showticklabels=False,
                         row=1, col=col, scaleanchor="x" if col == 1 else "x2", scaleratio=1)
    fig.update_yaxes(title_text="axis 2", row=1, col=1)
    fig.update_layout(**_LAYOUT, height=560, legend=dict(title="topic", itemsizing="constant", font=dict(size=12)))
    return stack_on_phone(fig, titles)
