"""Tests of the pure figure builders in ui/present/plots.py (no browser, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from ui.present import plots


def test_heatmap_hover_names_both_sentences() -> None:
    sentences = ["a <b> cat", "a dog", "a dog"]
    matrix = np.array([[1.0, 0.2, 0.2], [0.2, 1.0, 1.0], [0.2, 1.0, 1.0]])
    fig = plots.similarity_heatmap(sentences, matrix)
    trace = fig.data[0]
    assert len(set(trace.x)) == 3  # duplicate sentences stay separate rows/columns
    for i in range(3):
        for j in range(3):
            assert trace.customdata[i][j][0] == plots.wrap(sentences[i])
            assert trace.customdata[i][j][1] == plots.wrap(sentences[j])
    assert "&lt;b&gt;" in trace.customdata[0][0][0]  # user text is escaped in hover labels
    with pytest.raises(ValueError):
        plots.similarity_heatmap(sentences, matrix[:2, :2])


def test_a_phone_drops_the_heatmaps_colour_bar_and_wraps_its_title() -> None:
    fig = plots.similarity_heatmap(["a", "b"], np.eye(2), title="Cosine similarity — minilm [mean]")
    phone = fig.layout.meta["phone"]
    assert fig.data[0].coloraxis == "coloraxis"  # the bar is the layout's, so the page's relayout can hide it
    assert phone["coloraxis.showscale"] is False and fig.layout.coloraxis.showscale is not False  # kept on desktop
    assert "<br>" in phone["title.text"]


def test_wrap_and_short_limit_length() -> None:
    long = " ".join(["word"] * 100)
    assert plots.wrap(long, width=20, max_lines=3).count("<br>") == 2
    assert plots.wrap(long, width=20, max_lines=3).endswith("…")
    assert len(plots.short(long, 28)) == 28
    assert plots.short("tiny") == "tiny"


def test_alignment_uniformity_draws_one_arrow_per_move() -> None:
    steps, uni, ali = [0, 10, 20, 30], [-1.7, -2.5, -3.0, -3.2], [0.1, 0.2, 0.24, 0.25]
    fig = plots.alignment_uniformity(steps, uni, ali)
    arrows = [a for a in fig.layout.annotations if a.showarrow]
    assert len(arrows) == len(steps) - 1
    for k, arrow in enumerate(arrows, start=1):  # each arrow goes from the previous point to the next
        assert (arrow.ax, arrow.ay, arrow.x, arrow.y) == (uni[k - 1], ali[k - 1], uni[k], ali[k])
    assert list(fig.data[0].x) == uni and list(fig.data[0].y) == ali


def test_embedding_maps_panels_and_moves() -> None:
    rng = np.random.default_rng(0)
    before, after = rng.normal(size=(7, 2)), rng.normal(size=(7, 2))
    sentences = [f"s{i}" for i in range(7)]
    labels = ["a", "b", "a", "c", "b", "a", "c"]
    single = plots.embedding_maps(before, None, sentences, labels)
    assert {t.xaxis for t in single.data} == {"x"}
    assert sum(len(t.x) for t in single.data) == 7
    both = plots.embedding_maps(before, after, sentences, labels, show_moves=True)
    moves = [t for t in both.data if t.name == "movement"]
    assert len(moves) == 1
    xs = moves[0].x
    for i in range(7):  # segment i joins point i before to point i after
        assert (xs[3 * i], xs[3 * i + 1], xs[3 * i + 2]) == (before[i, 0], after[i, 0], None)
    for label in "abc":  # one trace per label and panel, with that label's points only
        per_panel = [t for t in both.data if t.name == label]
        assert len(per_panel) == 2
        idx = [i for i, lab in enumerate(labels) if lab == label]
        np.testing.assert_allclose(per_panel[0].x, before[idx, 0])
        np.testing.assert_allclose(per_panel[1].x, after[idx, 0])
    with pytest.raises(ValueError):
        plots.embedding_maps(before, after[:3], sentences, labels)


def test_cosine_histograms_share_bins() -> None:
    edges = np.linspace(-1, 1, 11)
    fig = plots.cosine_histograms(edges, np.full(10, 0.1), np.arange(10) / 45)
    assert len(fig.data) == 2
    np.testing.assert_allclose(fig.data[0].x, fig.data[1].x)
    np.testing.assert_allclose(fig.data[0].x, (edges[:-1] + edges[1:]) / 2)


def test_gold_vs_cosine_one_trace_per_model() -> None:
    fig = plots.gold_vs_cosine([0.0, 2.5, 5.0], {"base": [0.5, 0.6, 0.9], "tuned": [0.1, 0.4, 0.8]})
    assert [t.name for t in fig.data] == ["base", "tuned"]
    assert list(fig.data[1].y) == [0.1, 0.4, 0.8]


def test_placeholder_has_message() -> None:
    fig = plots.placeholder("Press the button")
    assert fig.layout.annotations[0].text == "Press the button"


def test_placeholder_wraps_a_long_message_to_fit_a_phone() -> None:
    # Plotly never wraps an annotation: on a 390 px phone the map's histogram note ran past the plot's right edge.
    message = "The histogram of pairwise cosines appears here."
    lines = plots.placeholder(message).layout.annotations[0].text.split("<br>")
    assert len(lines) > 1 and max(map(len, lines)) <= plots.PLACEHOLDER_LINE
    assert " ".join(lines) == message


def test_ablation_plane_names_the_vector_drawn_at_each_start_and_each_runs_paper_row() -> None:
    # Issue 25: the start label named "raw [CLS]" whatever was drawn; a first-last run starts elsewhere.
    runs = [{"label": "first-last average", "uniformity": [-1.0, -3.0], "alignment": [0.3, 0.5], "ours": 53.7,
             "paper": 81.2, "start": "first-last average", "setting": "paper: Table 6 “First-last avg. (Unsup.)”"},
            {"label": "dropout 0", "uniformity": [-1.2, -2.0], "alignment": [0.19, 0.4], "ours": 16.7,
             "paper": 71.1, "start": "raw [CLS] vector", "setting": "paper: Table 3 “p = 0.0” ⚠ another pooler"}]
    fig = plots.ablation_plane(runs)
    starts = {a.text: (a.x, a.y) for a in fig.layout.annotations if (a.text or "").startswith("start:")}
    from simcse_core.teaching.ablations import START_MODEL

    assert starts == {f"start: {START_MODEL}, first-last average": (-1.0, 0.3),
                      f"start: {START_MODEL}, raw [CLS] vector": (-1.2, 0.19)}
    names = [trace.name for trace in fig.data]
    assert "Table 6" in names[0] and "another pooler" in names[1]


def test_sts_curve_fits_our_curve_and_points_to_a_reference_far_above() -> None:
    """A live run at 30-50 beside the paper's 82.5: the curve keeps the chart's height (the paper's figure is an
    arrow at the top edge, labelled); a reference within reach is a line inside the range."""
    fig = plots.sts_curve([0, 10, 20], [30.0, 42.0, 50.0], "STS-B dev",
                          [(82.5, "paper 82.5 (Table 3, unsup)"), (55.0, "prepared run 55.0")])
    low, high = fig.layout.yaxis.range
    assert low <= 30 and 55 <= high < 70  # the curve spans most of the height; 82.5 is not in range
    texts = [a.text.replace("<br>   ", " ") for a in fig.layout.annotations]
    assert any("↑ paper 82.5 (Table 3, unsup)" in t for t in texts)  # one box at the top edge
    assert "prepared run 55.0 (full dev)" in texts and [s.y0 for s in fig.layout.shapes] == [55.0]
    below = plots.sts_curve([0, 10], [60.0, 70.0], references=[(20.0, "raw 20.0")])
    assert any("↓ raw 20.0" in a.text for a in below.layout.annotations)
    assert below.layout.yaxis.range[0] > 40
