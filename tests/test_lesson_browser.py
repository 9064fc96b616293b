"""The lesson, walked end to end in headless Chromium at 1280x720 in presenter mode (real app, bundled model).

Each step's main action must be above the fold (no scrolling) and must work: similarity, dropout twins,
inside the loss (its loss equal to ``simcse_loss``, printed beside it), a short fine-tune, the cone, and the
evaluation tab. Screenshots of every step go to ``$SIMCSE_SCREENSHOT_DIR`` (default: a pytest temp folder).
Run: ``python -m pytest tests/test_lesson_browser.py -m browser -s``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import click, open_app, open_tab, plotly_info, screenshot, set_number, text_of, wait_for
from test_browser import FINETUNE_TIMEOUT, PAGE_TIMEOUT, browser, chromium, server, shots  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.integration]

LESSON_VIEWPORT = {"width": 1280, "height": 720}
QUICK = 180  # one panel (a few forward passes); generous: the box is shared and has 2 cores
DONE = re.compile(r"\b(done|time budget reached)\b", re.IGNORECASE)
# Step number -> (the main action's elem_id, the component its result appears in).
ACTIONS = {1: ("sim-run", "sim-score"), 2: ("twins-run", "twins-summary"), 3: ("loss-run", "loss-summary"),
           4: ("ft-start", "ft-status"), 5: ("cone-run", "cone-caption"), 6: ("eval-run", None)}


def above_the_fold(page: Any, elem_id: str) -> float:
    """The bottom edge (px) of a component with the page scrolled to the top; fails if it is off screen."""
    page.evaluate("() => window.scrollTo(0, 0)")
    box = page.locator(f"#{elem_id}").bounding_box()
    assert box is not None, f"#{elem_id} is not visible"
    bottom = box["y"] + box["height"]
    assert bottom <= LESSON_VIEWPORT["height"], f"#{elem_id} ends at y={bottom:.0f}, below the fold"
    return bottom


def loss_numbers(summary: str) -> tuple[float, float]:
    """(the batch loss shown, the simcse_loss value printed beside it)."""
    shown = float(re.search(r"Batch loss (\d+\.\d+)", summary).group(1))
    check = float(re.search(r"gives (\d+\.\d+)", summary).group(1))
    return shown, check


def test_lesson_walk_in_presenter_mode(browser: Any, server: Any, shots: Path) -> None:  # noqa: F811
    context = browser.new_context(viewport=LESSON_VIEWPORT)
    context.set_default_timeout(PAGE_TIMEOUT * 1000)
    page = context.new_page()
    try:
        open_app(page, server.url, PAGE_TIMEOUT)
        # A short run for the test; presenter mode then hides the settings (the class uses the defaults).
        open_tab(page, "tab-finetune", "ft-start")
        set_number(page, "ft-steps", 4)
        set_number(page, "ft-batch", 16)
        open_tab(page, "tab-similarity", "sim-run")
        page.locator("#presenter-mode input").check()
        page.wait_for_timeout(300)
        assert page.evaluate("() => document.body.classList.contains('presenter')")
        for step in range(1, 7):
            if step > 1:
                click(page, "lesson-next")
            action, result = ACTIONS[step]
            page.locator(f"#{action}").wait_for(state="visible")
            assert f"step {step} of 6" in text_of(page, "lesson-step")
            above_the_fold(page, action)
            screenshot(page, shots, f"lesson-{step}-start", settle_s=2)
            if step == 6:
                break  # the evaluation itself is covered by tests/test_browser.py
            click(page, action)
            if step == 1:
                wait_for(page, lambda: text_of(page, result), lambda t: re.search(r"\d\.\d\d", t), QUICK, "score",
                         server)
            elif step == 2:
                summary = wait_for(page, lambda: text_of(page, result), lambda t: "twin cosine" in t, QUICK,
                                   "dropout twins", server)
                twin = float(re.search(r"twin cosine (\d\.\d+)", summary).group(1))
                assert 0.5 < twin < 1.0 and "identical" in summary
            elif step == 3:
                summary = wait_for(page, lambda: text_of(page, result), lambda t: "Batch loss" in t, QUICK,
                                   "inside the loss", server)
                shown, check = loss_numbers(summary)
                assert shown == pytest.approx(check, abs=1e-4)
                set_number(page, "loss-temperature", 1)
                flat = wait_for(page, lambda: text_of(page, result),
                                lambda t: "Batch loss" in t and loss_numbers(t)[0] != shown, QUICK, "τ = 1", server)
                assert shown < loss_numbers(flat)[0] <= math.log(8) + 1e-3  # flattened towards chance
            elif step == 4:
                wait_for(page, lambda: text_of(page, result), lambda t: bool(DONE.search(t)), FINETUNE_TIMEOUT,
                         "the fine-tune to finish", server)
                assert plotly_info(page, "ft-loss-plot")["traces"] >= 1
                chance = page.evaluate("() => (document.querySelector('#ft-loss-plot .js-plotly-plot').layout"
                                       ".shapes || []).length")
                assert chance >= 1  # the dashed chance line ln(batch)
            elif step == 5:
                wait_for(page, lambda: text_of(page, result), lambda t: "before →" in t, FINETUNE_TIMEOUT,
                         "the cone", server)
                arrows = page.evaluate(
                    "() => document.querySelector('#cone-plot .js-plotly-plot').layout.annotations"
                    ".filter(a => a.showarrow).length")
                assert arrows >= 2 * 48
            screenshot(page, shots, f"lesson-{step}-done", settle_s=10)
    finally:
        context.close()


def in_view(page: Any, elem_id: str, height: int) -> bool:
    """True when the whole component is on screen at the current scroll position."""
    box = page.locator(f"#{elem_id}").bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


@pytest.mark.parametrize("viewport", [LESSON_VIEWPORT, {"width": 390, "height": 844}], ids=["laptop", "phone"])
def test_next_brings_each_steps_button_into_view(browser: Any, server: Any, shots: Path,  # noqa: F811
                                                 viewport: dict) -> None:
    """Outside presenter mode (and on a phone) Next scrolls to the step's main button."""
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(PAGE_TIMEOUT * 1000)
    page = context.new_page()
    name = "phone" if viewport["width"] < 600 else "laptop"
    try:
        open_app(page, server.url, PAGE_TIMEOUT)
        screenshot(page, shots, f"{name}-landing", settle_s=2)
        for step in range(2, 7):
            page.locator("#lesson-next").scroll_into_view_if_needed()
            click(page, "lesson-next")
            action = ACTIONS[step][0]
            wait_for(page, lambda a=action: in_view(page, a, viewport["height"]), bool, 20,
                     f"step {step}: #{action} scrolled into view")
            if step == 2 and name == "phone":
                click(page, action)
                wait_for(page, lambda: text_of(page, "twins-summary"), lambda t: "twin cosine" in t, QUICK,
                         "the twins on a phone", server)
                stacked = "() => { const gd = document.querySelector('#twins-plot .js-plotly-plot'); return " \
                          "gd.layout.xaxis2.domain[0] === 0 && gd.getBoundingClientRect().right <= innerWidth; }"
                wait_for(page, lambda: page.evaluate(stacked), bool, QUICK,
                         "the twins' two panels stacked at the phone's width", server)
                screenshot(page, shots, "phone-twins", settle_s=5)
    finally:
        context.close()
