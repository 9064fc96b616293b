"""The whole page in headless Chromium: every tab opened, every control drawn and changed once, nothing broken.

At 1280x720 each tab (and each Inside SimCSE panel, accordions opened) must show the controls it promises, each
visible, the "Start from" choices drawn as radios; then every control is changed once (text typed, a radio or
dropdown choice picked, a slider moved one step, a checkbox toggled; the model picker at the top too) and no
component may show gradio's red "Error" badge, no error toast may appear, the page may raise no error, the console
may log no failed module load or error, and the server may log no traceback. Buttons are only checked, never
pressed: what they start (a fine-tune, a preset) is covered by tests/test_browser.py and the lesson walk.

At 390x844 (a phone), normal and presenter mode, the page is exactly as wide as the screen on every tab.

Run: ``python -m pytest tests/test_whole_page.py -m browser -s`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import AppServer, error_badges, open_app, open_tab, screenshot, toasts
from test_browser import PAGE_TIMEOUT, browser, chromium, server, shots  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.integration]

DESKTOP = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}
SETTLE_S = 30  # the longest one change may keep a component busy (a model load, a re-encoded batch)
PICKED_MODEL = r"^Raw: raw-bert"  # the picker's other choice that loads offline (hub ids need the network)
TEXT = "A man is playing a guitar on stage.\nSomeone performs music with a guitar."
BAD_CONSOLE = ("Failed to fetch dynamically imported module", "Error")


@dataclass(frozen=True)
class Panel:
    """A tab (or an Inside SimCSE panel) and the controls it promises (elem_ids), each of which must be visible."""

    tab_id: str
    label: str
    controls: tuple[str, ...]
    inner_of: str | None = None  # the outer tab holding this inner panel


PANELS = (
    Panel("tab-similarity", "Similarity", ("sim-a", "sim-b", "sim-run", "sim-list", "sim-heatmap-run")),
    Panel("tab-inside", "Inside SimCSE", ("inside-start",)),
    Panel("inside-twins", "Dropout twins", ("twins-text", "twins-run", "twins-dropout"), "tab-inside"),
    Panel("inside-loss", "Inside the loss", ("loss-mode", "loss-run", "loss-temperature", "loss-alpha", "loss-batch"),
          "tab-inside"),
    Panel("inside-ablations", "Ablations", ("ablation-preset", "ablation-run", "ablation-stop", "ablation-clear"),
          "tab-inside"),
    Panel("inside-cone", "The cone", ("cone-run",), "tab-inside"),
    Panel("inside-glossary", "Glossary", (), "tab-inside"),
    Panel("inside-export", "Export", ("export-projector-run", "export-tables-run"), "tab-inside"),
    Panel("tab-retrieval", "Retrieval", ("ret-corpus-choice", "ret-build", "ret-query", "ret-topk", "ret-threshold",
                                         "ret-search")),
    Panel("tab-finetune", "Fine-tune", ("ft-start-from", "ft-data-choice", "ft-mode", "ft-steps", "ft-budget",
                                        "ft-batch", "ft-lr", "ft-temperature", "ft-dropout", "ft-pooler", "ft-maxlen",
                                        "ft-alpha", "ft-start", "ft-stop")),
    Panel("tab-map", "Embedding map", ("map-run", "map-show-moves")),
    Panel("tab-evaluate", "Evaluate", ("eval-set", "eval-run")),
)
HEADER = ("model-picker", "pooler-picker", "lesson-back", "lesson-next", "presenter-mode")
RADIOS = ("ft-start-from", "inside-start")  # drawn by a component subclass: must show their choices as radios
NOT_CHANGED = {"presenter-mode"}  # toggled in the phone test; here it would hide settings still to be changed
TRAINING_DATA_UPLOAD = re.compile(r"upload|your (own )?file", re.IGNORECASE)  # needs a file: not picked here

# The controls of a panel, marked data-wp="<n>" so that those without an elem_id can be found again. A control is
# the innermost gradio block holding an input (tables, galleries and file slots are outputs, not controls; an
# accordion or a form is a block of blocks), or a button with an elem_id; gradio's own buttons (clear, copy,
# accordion) have none.
CONTROLS_JS = """([scope, start]) => {
  const root = scope ? document.getElementById(scope) : document.body;
  const kind = (el) => {
    if (el.tagName === 'BUTTON') return 'button';
    if (el.querySelector('table, .gallery, [data-testid="file"], input[type=file], .js-plotly-plot')) return null;
    if (el.querySelector('input[type=range]')) return 'slider';
    if (el.querySelector('input[role=combobox]')) return 'dropdown';
    if (el.querySelector('input[type=radio]')) return 'radio';
    if (el.querySelector('input[type=checkbox]')) return 'checkbox';
    if (el.querySelector('input[type=number]')) return 'number';
    if (el.querySelector('textarea, input[type=text]')) return 'text';
    return null; };
  const out = []; let n = start;
  for (const el of root.querySelectorAll('.block:not(label), button[id]')) {
    if (el.closest('.tab-wrapper, [data-testid="status-tracker"]')) continue;
    const k = kind(el); if (!k) continue;
    if (k !== 'button' && Array.from(el.querySelectorAll('.block:not(label)')).some(inner => kind(inner))) continue;
    const tab = el.closest('.tabitem');  // only the controls of the open panels
    if (scope && tab && tab.id !== scope && !tab.contains(document.getElementById(scope)) && tab.offsetParent === null)
      continue;
    if (!el.dataset.wp) el.dataset.wp = String(n++);
    const box = el.getBoundingClientRect();
    const input = el.querySelector('textarea, input');
    const label = (el.innerText || '').trim().split('\\n')[0].slice(0, 50);
    out.push({wp: el.dataset.wp, kind: k, id: el.id || '', label,
              visible: el.offsetParent !== null && box.width > 0 && box.height > 0,
              disabled: el.tagName === 'BUTTON' ? el.disabled : !!(input && (input.disabled || input.readOnly))}); }
  return out; }"""


@dataclass(frozen=True)
class Control:
    """One control as the page shows it."""

    wp: str  # our data-wp mark
    kind: str  # button, slider, dropdown, radio, checkbox, number, text
    id: str  # elem_id, or "" when it has none
    label: str
    visible: bool
    disabled: bool

    @property
    def name(self) -> str:
        return f"#{self.id}" if self.id else f"{self.kind} “{self.label}”"

    @property
    def selector(self) -> str:
        return f"[data-wp='{self.wp}']"


class Watch:
    """What goes wrong on a page: page errors and console messages that name an error."""

    def __init__(self, page: Any) -> None:
        self.page_errors: list[str] = []
        self.console: list[str] = []
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        text = message.text
        if any(bad in text for bad in BAD_CONSOLE):
            self.console.append(f"{message.type}: {text[:300]}")


def controls(page: Any, scope: str | None, start: int) -> list[Control]:
    return [Control(**c) for c in page.evaluate(CONTROLS_JS, [scope, start])]


def settle(page: Any, timeout_s: float = SETTLE_S) -> None:
    """Wait until no component shows gradio's progress (the events a change started have answered)."""
    deadline = time.monotonic() + timeout_s
    page.wait_for_timeout(300)  # the event leaves the browser
    while time.monotonic() < deadline and page.evaluate(
            """() => Array.from(document.querySelectorAll('[data-testid="status-tracker"]'))
                .some(t => !t.classList.contains('hide') && t.offsetParent !== null
                           && !t.querySelector('.error') && t.innerText.trim().length > 0)"""):
        page.wait_for_timeout(200)


def open_accordions(page: Any, scope: str) -> None:
    """Open every closed accordion of a panel (their controls are part of the page too)."""
    for wrap in page.locator(f"#{scope} button.label-wrap:not(.open)").all():
        if wrap.is_visible():
            wrap.click()
    page.wait_for_timeout(300)


def change(page: Any, control: Control) -> str:
    """Change a control once, as a visitor would; returns what was done (for the report)."""
    block = page.locator(control.selector).first
    block.scroll_into_view_if_needed()
    if control.kind == "text":
        box = block.locator("textarea, input[type='text']").first
        box.fill(TEXT if box.evaluate("e => e.tagName") == "TEXTAREA" else TEXT.splitlines()[0])
        box.blur()
        return "typed"
    if control.kind in ("slider", "number"):
        box = block.locator("input[type='number']").first
        value = float(box.input_value())
        low, high = (float(box.get_attribute(a) or v) for a, v in (("min", "-inf"), ("max", "inf")))
        if control.kind == "number":  # a free number (gradio's step of 1 would leave its range): double or halve
            target = value * 2 if value * 2 <= high else value / 2
        else:  # a slider: one step up, or down at the top
            step = float(box.get_attribute("step") or 1)
            target = value + step if value + step <= high else value - step
        target = min(max(target, low), high)
        box.fill(f"{target:.6g}")
        box.press("Enter")
        box.blur()
        return f"{value:g} → {target:.6g}"
    if control.kind == "radio":
        labels = block.locator("label")
        for index in range(labels.count()):
            label = labels.nth(index)
            text = label.inner_text().strip()
            if not label.locator("input").first.is_checked() and not TRAINING_DATA_UPLOAD.search(text):
                label.click()
                return f"→ {text[:40]!r}"
        return "no other choice"
    if control.kind == "checkbox":
        block.locator("input[type='checkbox']").first.click()
        return "toggled"
    if control.kind == "dropdown":
        return pick_other(page, block, None)
    return "not changed"


def pick_other(page: Any, block: Any, pattern: str | None) -> str:
    """Open a dropdown and pick its first option that is not the current one (or the one matching ``pattern``)."""
    box = block.locator("input[role='combobox']").first
    current = box.input_value()
    box.click()
    listbox = box.get_attribute("aria-controls")
    options = page.locator(f"#{listbox} [role='option']" if listbox else "[role='option']")
    options.first.wait_for(state="visible")
    for index in range(options.count()):
        text = options.nth(index).inner_text().replace("✓", "").strip()
        if text != current and (pattern is None or re.search(pattern, text)):
            options.nth(index).click()
            box.blur()
            return f"{current[:30]!r} → {text[:40]!r}"
    box.press("Escape")
    return "no other option"


def shown_errors(page: Any) -> set[str]:
    """The error badges and error toasts on screen."""
    return ({f"'Error' badge on #{name}" for name in error_badges(page)}
            | {f"error toast {text!r}" for kind, text in toasts(page) if kind == "error"})


def new_problems(page: Any, watch: Watch, seen: dict[str, Any], what: str) -> list[str]:
    """Problems that appeared since the last call: error badges, error toasts, page errors, bad console lines."""
    shown = shown_errors(page)
    found = [f"{what}: {item}" for item in sorted(shown - seen.get("shown", set()))]
    seen["shown"] = shown
    for key, items in (("page", watch.page_errors), ("console", watch.console)):
        found += [f"{what}: {key} error {item!r}" for item in items[seen.get(key, 0):]]
        seen[key] = len(items)
    return found


def open_panel(page: Any, panel: Panel) -> None:
    """Open a tab or an inner panel (its controls are checked afterwards, so only the panel is waited for)."""
    if panel.inner_of is not None:
        outer = next(p for p in PANELS if p.tab_id == panel.inner_of)
        open_tab(page, outer.tab_id, outer.tab_id, label=outer.label)
    open_tab(page, panel.tab_id, panel.tab_id, label=panel.label)


def server_tracebacks(server: AppServer) -> list[str]:  # noqa: F811
    log = server.spec.log_path.read_text(encoding="utf-8", errors="replace")
    return [block[:1500] for block in re.findall(r"Traceback \(most recent call last\):.*?(?=\n\S|\Z)", log, re.S)]


def test_every_control_is_drawn_and_changes_without_error(browser: Any, server: AppServer,  # noqa: F811
                                                          shots: Path) -> None:  # noqa: F811
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(PAGE_TIMEOUT * 1000)
    page = context.new_page()
    watch = Watch(page)
    problems: list[str] = []
    seen: dict[str, Any] = {}
    start = time.monotonic()
    try:
        open_app(page, server.url, PAGE_TIMEOUT)
        settle(page)
        found = {c.id: c for c in controls(page, None, 0) if c.id in HEADER}
        problems += [f"header: #{name} missing or hidden" for name in HEADER
                     if name not in found or not found[name].visible]
        problems += new_problems(page, watch, seen, "page load")
        changed: list[str] = []
        marks = 1000
        for panel in PANELS:
            try:
                open_panel(page, panel)
            except Exception as exc:  # noqa: BLE001 - a panel that does not open is a finding, the others still run
                problems.append(f"{panel.label}: does not open: {str(exc).splitlines()[0]}")
                continue
            open_accordions(page, panel.tab_id)
            settle(page)
            shown = controls(page, panel.tab_id, marks)
            marks += 1000
            ids = {c.id: c for c in shown}
            problems += [f"{panel.label}: #{name} missing" for name in panel.controls if name not in ids]
            problems += [f"{panel.label}: {c.name} not visible" for c in shown if not c.visible and c.id in
                         panel.controls]
            for name in RADIOS:
                if name in ids:
                    radios = page.locator(f"#{name} input[type='radio']")
                    drawn = [radios.nth(i).is_visible() or page.locator(f"#{name} label").nth(i).is_visible()
                             for i in range(radios.count())]
                    if len(drawn) < 2 or not all(drawn):
                        problems.append(f"{panel.label}: #{name} is not drawn as radios ({len(drawn)} shown)")
            problems += new_problems(page, watch, seen, f"opening {panel.label}")
            for control in shown:
                if control.kind == "button" or control.disabled or not control.visible or control.id in NOT_CHANGED:
                    continue
                if panel.inner_of is None and panel.tab_id == "tab-inside" and control.id != "inside-start":
                    continue  # the inner panels' controls are changed with their panel
                try:
                    done = change(page, control)
                except Exception as exc:  # noqa: BLE001 - one control that cannot be changed is a finding
                    problems.append(f"{panel.label}: {control.name} could not be changed: {str(exc).splitlines()[0]}")
                    continue
                settle(page)
                changed.append(f"{control.name} {done}")
                problems += new_problems(page, watch, seen, f"{panel.label}: changing {control.name} ({done})")
            screenshot(page, shots, f"whole-page-{panel.tab_id}", settle_s=2)
        # The pickers at the top, with the Fine-tune form on screen (their changes rewrite its settings).
        open_panel(page, PANELS[9])
        for name, pattern in (("model-picker", PICKED_MODEL), ("pooler-picker", None)):
            done = pick_other(page, page.locator(f"#{name}").first, pattern)
            settle(page, 120)  # a model load
            changed.append(f"#{name} {done}")
            problems += new_problems(page, watch, seen, f"changing #{name} ({done})")
        screenshot(page, shots, "whole-page-after-pickers", settle_s=2)
        print(f"\n[whole page] {len(changed)} controls changed in {time.monotonic() - start:.0f} s:\n  "
              + "\n  ".join(changed))
    finally:
        context.close()
    problems += [f"server traceback:\n{block}" for block in server_tracebacks(server)]
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


@pytest.mark.parametrize("presenter", [False, True], ids=["normal", "presenter"])
def test_a_phone_shows_the_page_at_its_width(browser: Any, server: AppServer, shots: Path,  # noqa: F811
                                             presenter: bool) -> None:
    """At 390x844 the page is 390 px wide on every tab and inner panel (no sideways scrolling), and Next is on
    screen. (The Ablations panel's table of paper figures once made the page 1,280 px wide.)"""
    context = browser.new_context(viewport=PHONE)
    context.set_default_timeout(PAGE_TIMEOUT * 1000)
    page = context.new_page()
    mode = "presenter" if presenter else "normal"
    widths: dict[str, int] = {}
    try:
        open_app(page, server.url, PAGE_TIMEOUT)
        if presenter:
            page.locator("#presenter-mode input").check()
            page.wait_for_function("() => document.body.classList.contains('presenter')")
        for panel in PANELS:
            open_panel(page, panel)
            page.wait_for_timeout(500)  # gradio re-measures its tab bar after a switch
            widths[panel.label] = page.evaluate("() => document.documentElement.scrollWidth")
            screenshot(page, shots, f"phone-{mode}-{panel.tab_id}", settle_s=2)
        page.evaluate("() => window.scrollTo(0, 0)")
        box = page.locator("#lesson-next").bounding_box()
        print(f"\n[phone {mode}] scroll widths {widths}; Next at {box}")
    finally:
        context.close()
    assert all(width == PHONE["width"] for width in widths.values()), f"page wider than the phone: {widths}"
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"Next off screen: {box}"


def test_a_phone_stacks_side_by_side_panels(browser: Any, server: AppServer, shots: Path) -> None:  # noqa: F811
    """At 390x844 the dropout twins' two panels are drawn one above the other, each as wide as the figure, and the
    figure fits the screen (ui.present.phone.stack_on_phone and the page's head script)."""
    context = browser.new_context(viewport=PHONE)
    context.set_default_timeout(PAGE_TIMEOUT * 1000)
    page = context.new_page()
    try:
        open_app(page, server.url, PAGE_TIMEOUT)
        open_panel(page, next(p for p in PANELS if p.tab_id == "inside-twins"))
        page.locator("#twins-run").click()
        page.wait_for_function("() => { const gd = document.querySelector('#twins-plot .js-plotly-plot');"
                               " return gd && gd.layout && gd.layout.xaxis2 && gd.layout.xaxis2.domain[0] === 0; }",
                               timeout=PAGE_TIMEOUT * 1000)
        layout = page.evaluate("() => { const gd = document.querySelector('#twins-plot .js-plotly-plot');"
                               " const box = gd.getBoundingClientRect();"
                               " return {x1: gd.layout.xaxis.domain, x2: gd.layout.xaxis2.domain,"
                               " y1: gd.layout.yaxis.domain, y2: gd.layout.yaxis2.domain, right: box.right,"
                               " width: document.documentElement.scrollWidth}; }")
        screenshot(page, shots, "phone-twins-stacked", settle_s=2)
    finally:
        context.close()
    assert layout["x1"] == [0, 1] and layout["x2"] == [0, 1], layout
    assert layout["y1"][0] > layout["y2"][1], layout  # the first panel above the second
    assert layout["right"] <= PHONE["width"] and layout["width"] == PHONE["width"], layout


def test_presenter_mode_shows_the_three_live_charts_whole_at_1280x720(browser: Any, server: AppServer,  # noqa: F811
                                                                      shots: Path) -> None:  # noqa: F811
    """During a run in presenter mode the loss, STS and Figure 2 charts are on screen, whole, without scrolling."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(PAGE_TIMEOUT * 1000)
    page = context.new_page()
    try:
        open_app(page, server.url, PAGE_TIMEOUT)
        page.locator("#presenter-mode input").check()
        page.wait_for_function("() => document.body.classList.contains('presenter')")
        open_tab(page, "tab-finetune", "tab-finetune", label="Fine-tune")
        page.locator("#ft-start").click()
        page.wait_for_function("() => /Training|Replaying|Finished|Done/.test("
                               "document.querySelector('#ft-status').innerText)", timeout=PAGE_TIMEOUT * 1000)
        page.evaluate("() => window.scrollTo(0, 0)")
        charts = ("ft-loss-plot", "ft-sts-plot", "ft-au-plot")
        boxes = {name: page.locator(f"#{name}").bounding_box() for name in charts}
        screenshot(page, shots, "presenter-live-run", settle_s=1)
        page.locator("#ft-stop").click()
    finally:
        context.close()
    for name, box in boxes.items():
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= DESKTOP["height"], (name, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= DESKTOP["width"], (name, box)


def test_a_phone_shows_the_whole_similarity_matrix(browser: Any, server: AppServer, shots: Path) -> None:  # noqa: F811
    """At 390x844 the heatmap's rows and columns are numbered instead of named, and the matrix fits the screen."""
    context = browser.new_context(viewport=PHONE)
    context.set_default_timeout(PAGE_TIMEOUT * 1000)
    page = context.new_page()
    try:
        open_app(page, server.url, PAGE_TIMEOUT)
        page.locator("#sim-heatmap-run").click()
        numbered = ("() => { const gd = document.querySelector('#sim-heatmap .js-plotly-plot');"
                    " return gd && gd.layout && gd.layout.xaxis && gd.layout.xaxis.ticktext"
                    " && gd.layout.xaxis.ticktext[0] === '1'; }")
        page.wait_for_function(numbered, timeout=PAGE_TIMEOUT * 1000)
        right = page.evaluate("() => document.querySelector('#sim-heatmap .js-plotly-plot')"
                              ".getBoundingClientRect().right")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        # no colour bar beside the matrix (it took a third of the screen's width): the cells get the width
        bar = page.evaluate("() => { const gd = document.querySelector('#sim-heatmap .js-plotly-plot');"
                            " const cells = gd.querySelector('.heatmaplayer').getBoundingClientRect();"
                            " return {bars: gd.querySelectorAll('.colorbar').length, cellsWidth: cells.width,"
                            " cellsHeight: cells.height, plotWidth: gd.getBoundingClientRect().width}; }")
        screenshot(page, shots, "phone-heatmap-numbered", settle_s=2)
    finally:
        context.close()
    assert right <= PHONE["width"] and width == PHONE["width"], (right, width)
    assert bar["bars"] == 0 and bar["cellsWidth"] >= 0.8 * bar["plotWidth"] and bar["cellsHeight"] >= 150, bar
