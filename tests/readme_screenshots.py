"""Retake the README's screenshots (``assets/screenshot-*.png``) from the real app in headless Chromium.

    python tests/readme_screenshots.py            # about 5 minutes on two idle cores

Starts ``python app.py`` on a free loopback port and walks the page as a teacher would, with every default: compare
a pair and draw the heatmap, search the bundled corpus, run the lesson's one-minute fine-tune from ``raw-bert``, draw
its before | after map, evaluate it, then open Inside SimCSE's loss, run one ablation preset and draw the cone.
Each picture is the whole page at 1280 px, taken once no component shows gradio's pending state.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_helpers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    AppServer,
    ServerSpec,
    click,
    dataframe,
    free_port,
    is_busy,
    open_app,
    open_tab,
    plotly_info,
    screenshot,
    text_of,
)

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "assets"
RUN_S = 600  # the longest wait: a fine-tune or a preset on a busy machine


def settled(page, elem_id: str, done, timeout_s: float = RUN_S) -> None:
    """Wait until ``done()`` holds and ``elem_id`` shows no progress, or fail naming what was awaited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done() and not is_busy(page, elem_id):
            return
        page.wait_for_timeout(500)
    raise SystemExit(f"#{elem_id} did not finish in {timeout_s:.0f} s")


def take(page, name: str) -> None:
    shot = screenshot(page, ASSETS, f"screenshot-{name}")
    print(f"wrote {shot.relative_to(REPO)}", flush=True)


def walk(page) -> None:
    click(page, "sim-run")
    settled(page, "sim-score", lambda: any(ch.isdigit() for ch in text_of(page, "sim-score")))
    click(page, "sim-heatmap-run")
    settled(page, "sim-heatmap", lambda: plotly_info(page, "sim-heatmap")["types"] == ["heatmap"])
    take(page, "similarity")

    open_tab(page, "tab-retrieval", "ret-build")
    click(page, "ret-build")
    settled(page, "ret-status", lambda: bool(text_of(page, "ret-status")))
    page.locator("#ret-query textarea, #ret-query input").first.fill("How long should I simmer a tomato sauce?")
    click(page, "ret-search")
    settled(page, "ret-results", lambda: len(dataframe(page, "ret-results")[1]) > 1)
    take(page, "retrieval")

    open_tab(page, "tab-finetune", "ft-start")
    click(page, "ft-start")
    page.wait_for_timeout(3000)
    settled(page, "ft-status", lambda: page.locator("#ft-download-model a[href]").count() > 0)
    take(page, "finetune")

    open_tab(page, "tab-map", "map-run")
    click(page, "map-run")
    settled(page, "map-plot", lambda: plotly_info(page, "map-plot")["subplots"] >= 2)
    take(page, "map")

    open_tab(page, "tab-evaluate", "eval-run")
    click(page, "eval-run")
    settled(page, "eval-table", lambda: len(dataframe(page, "eval-table")[1]) >= 2)
    take(page, "evaluate")

    open_tab(page, "tab-inside", "inside-start")
    open_tab(page, "inside-loss", "loss-run")
    click(page, "loss-run")
    settled(page, "loss-plot", lambda: plotly_info(page, "loss-plot")["traces"] > 0)
    take(page, "inside-loss")

    open_tab(page, "inside-ablations", "ablation-run")
    click(page, "ablation-run")
    page.wait_for_timeout(3000)
    settled(page, "ablation-status", lambda: plotly_info(page, "ablation-plane")["traces"] > 0)
    take(page, "ablations")

    open_tab(page, "inside-cone", "cone-run")
    click(page, "cone-run")
    settled(page, "cone-plot", lambda: plotly_info(page, "cone-plot")["traces"] > 0)
    take(page, "cone")


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        server = AppServer(ServerSpec(app_path=REPO / "app.py", port=free_port(),
                                      log_path=Path(folder) / "server.log", env={"HF_HUB_OFFLINE": "1"}))
        try:
            server.wait_until_serving(180)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                open_app(page, server.url, 120)
                walk(page)
                browser.close()
        except BaseException:
            print(server.log_tail(), file=sys.stderr)
            raise
        finally:
            server.stop()


if __name__ == "__main__":
    os.chdir(REPO)
    main()
