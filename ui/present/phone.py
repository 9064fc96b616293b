"""Figures on a phone: side-by-side panels stacked one above the other, by a layout each figure carries
(``layout.meta["phone"]``) and the page's script applies under a phone's width (ui.present.browser.PHONE_PLOTS_HEAD).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import plotly.graph_objects as go

PHONE_PANEL_HEIGHT = 340  # px of each panel when side-by-side panels are stacked on a phone


def stack_on_phone(fig: go.Figure, titles: Sequence[str] = (), labels_inside: Sequence[str] = (),
                   panel_height: int = PHONE_PANEL_HEIGHT) -> go.Figure:
    """Note in ``fig.layout.meta["phone"]`` the layout of its side-by-side panels stacked one above the other:
    the page's script (ui.present.browser.PHONE_PLOTS_HEAD) applies it where the screen is narrow, so a phone
    reads each panel at its full width instead of scrolling sideways. ``titles``: the subplot titles (moved above
    their panel, wrapped); ``labels_inside``: y axes whose long category labels are drawn inside the panel."""
    axes = sorted(name for name in fig.layout.to_plotly_json() if name.startswith("xaxis"))
    n = len(axes)
    if n < 2:
        return fig
    gap = 0.3 / n  # room for the upper panel's axis title and the lower one's title
    share = (1 - gap * (n - 1)) / n
    phone: dict = {"height": n * panel_height + 160, "margin.l": 48, "margin.r": 12, "margin.b": 120,
                   "legend.orientation": "h", "legend.y": -0.1, "legend.yanchor": "top", "legend.x": 0}
    tops = []
    for k, xaxis in enumerate(axes):
        top = 1 - k * (share + gap)
        tops.append(top)
        phone[f"{xaxis}.domain"] = [0, 1]
        phone[f"{xaxis.replace('x', 'y', 1)}.domain"] = [top - share, top]
    for yaxis in labels_inside:
        phone[f"{yaxis}.ticklabelposition"] = "inside top"
    for index, annotation in enumerate(fig.layout.annotations):
        if annotation.text in titles and annotation.yref == "paper":
            k = list(titles).index(annotation.text)
            if k < n:
                phone.update({f"annotations[{index}].x": 0, f"annotations[{index}].xanchor": "left",
                              f"annotations[{index}].y": tops[k], f"annotations[{index}].yanchor": "bottom",
                              f"annotations[{index}].text": "<br>".join(textwrap.wrap(annotation.text, 30))})
    fig.update_layout(meta={"phone": phone})
    return fig


def numbered_on_phone(fig: go.Figure, labels: Sequence[str]) -> go.Figure:
    """Note in ``fig.layout.meta["phone"]`` a matrix's layout for a phone: its rows and columns named by number
    ("1", "2", … as the sentences are numbered) instead of by their text, so the whole matrix fits the screen
    (hovering a cell still shows both sentences)."""
    numbers = [str(k + 1) for k in range(len(labels))]
    phone = {"xaxis.tickvals": list(labels), "xaxis.ticktext": numbers, "xaxis.tickangle": 0,
             "yaxis.tickvals": list(labels), "yaxis.ticktext": numbers,
             "margin.l": 36, "margin.r": 8, "height": 180 + 26 * len(labels),
             # no colour bar: beside the matrix it took a third of the screen's width, and the cells print their
             # cosines (hovering a cell gives it where they do not); a relayout that moves it leaves ghosts
             "coloraxis.showscale": False}
    title = fig.layout.title.text
    if title:  # wrapped inside the screen's width
        phone["title.text"] = "<br>".join(textwrap.wrap(title, 26))
    fig.update_layout(meta={"phone": phone})
    return fig
