"""Helpers for the end-to-end browser test: run the app in a subprocess, drive Gradio 6 components by elem_id.

Gradio renders asynchronously and only mounts a tab's components once the tab is opened, so every helper here
finds components by their contract ``elem_id`` and waits on a condition with an explicit timeout instead of
sleeping. ``wait_for`` polls a Python predicate and fails with the last value it saw, the toasts on screen and
the tail of the server log, which is what one needs to read a failure in CI.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
POLL_MS = 250  # polling interval of wait_for (a poll, not a fixed wait)

T = TypeVar("T")

# --- the app server ---------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(studio) -> Iterator[int]:
    """The app of ``studio`` served on 127.0.0.1 with the real launch limits, for the ``with`` block; its port."""
    from app import build_demo, launch_limits, page_look

    demo = build_demo(studio=studio)
    demo.queue()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **page_look(),
                **launch_limits(studio.config, demo))
    try:
        yield port
    finally:
        demo.close()


@dataclass(frozen=True)
class ServerSpec:
    """How to start the app under test."""

    app_path: Path  # app.py to run
    port: int  # --port
    log_path: Path  # stdout + stderr of the server go here
    env: Mapping[str, str]  # extra environment variables


class AppServer:
    """``python app.py --port N`` in its own process group; ``stop()`` ends that group and nothing else."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.url = f"http://127.0.0.1:{spec.port}"
        self._log = open(spec.log_path, "wb")  # closed in stop()
        env = {**os.environ, **spec.env}
        self.process = subprocess.Popen(
            [sys.executable, str(spec.app_path), "--port", str(spec.port)],
            cwd=spec.app_path.parent,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() can end the server and its children
        )
        logger.info("started app pid %d on %s (log %s)", self.process.pid, self.url, spec.log_path)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server log."""
        try:
            text = self.spec.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(server log unreadable: {exc})"
        return text[-chars:]

    def wait_until_serving(self, timeout_s: float) -> float:
        """Poll the app's URL until it answers 200; returns the seconds it took. Fails early if it exits."""
        start = time.monotonic()
        last_error = "no attempt yet"
        while time.monotonic() - start < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"app exited with code {self.process.returncode} before serving.\n--- log ---\n"
                    f"{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/", timeout=5) as response:
                    if response.status == 200:
                        return time.monotonic() - start
                    last_error = f"HTTP {response.status}"
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                last_error = repr(exc)
            time.sleep(0.5)  # the browser is not up yet; nothing to wait on but the socket
        raise TimeoutError(
            f"app did not serve {self.url} within {timeout_s:.0f} s (last: {last_error}).\n--- log ---\n"
            f"{self.log_tail()}"
        )

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the server's process group, then SIGKILL it if it is still alive after ``grace_s``."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                logger.warning("app pid %d ignored SIGTERM; killing it", self.process.pid)
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=grace_s)
            except ProcessLookupError:
                pass
        self._log.close()


# --- waiting ----------------------------------------------------------------------------------------------


def toasts(page: Any) -> list[tuple[str, str]]:
    """``(kind, text)`` of every toast on screen; kind is "error", "warning", "info" or "success"."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('[data-testid="toast-body"]')).map(t => {
            const kind = ['error', 'warning', 'info', 'success'].find(k => t.classList.contains(k)) || '?';
            return [kind, t.innerText.replace(/\\s+/g, ' ').trim()];
        })"""
    )


def wait_for(
    page: Any,
    probe: Callable[[], T],
    ok: Callable[[T], bool],
    timeout_s: float,
    what: str,
    server: AppServer | None = None,
    fail_on: tuple[str, ...] = ("error", "warning"),
) -> T:
    """Poll ``probe()`` until ``ok(value)``; return the value.

    Fails with ``what``, the last value seen, the toasts and the server log tail when the time is up, or at
    once when a new toast of a kind in ``fail_on`` appears (the app reports handler errors as warnings).
    """
    start = time.monotonic()
    already = toasts(page)
    value: Any = None
    while True:
        value = probe()
        if ok(value):
            return value
        shown = toasts(page)
        new = list(shown)
        for toast in already:
            if toast in new:
                new.remove(toast)
        bad = [text for kind, text in new if kind in fail_on]
        timed_out = time.monotonic() - start > timeout_s
        if bad or timed_out:
            reason = f"{'/'.join(fail_on)} toast {bad}" if bad else f"timeout {timeout_s:.0f} s"
            log = f"\n--- server log tail ---\n{server.log_tail()}" if server is not None else ""
            raise AssertionError(f"{what}: {reason}; last value: {value!r}; toasts: {shown}{log}")
        page.wait_for_timeout(POLL_MS)


def is_busy(page: Any, elem_id: str) -> bool:
    """True while Gradio shows its progress overlay on the component (an event that writes it is running)."""
    return bool(
        page.evaluate(
            """(id) => { const el = document.getElementById(id); if (!el) return false;
                const t = el.querySelector('[data-testid="status-tracker"]');
                return !!t && !t.classList.contains('hide') && t.innerText.trim().length > 0; }""",
            elem_id,
        )
    )


# --- reading components -----------------------------------------------------------------------------------


def text_of(page: Any, elem_id: str) -> str:
    """Visible text of a component without Gradio's progress overlay (its timer would pollute the text)."""
    return page.evaluate(
        """(id) => { const el = document.getElementById(id); if (!el) return '';
            const clone = el.cloneNode(true);
            clone.querySelectorAll('[data-testid="status-tracker"], [data-testid="block-info"], '
                + '[data-testid="block-label"]').forEach(n => n.remove());
            clone.style.position = 'absolute'; clone.style.left = '-99999px';
            document.body.appendChild(clone);
            const text = clone.innerText; clone.remove(); return text.trim(); }""",
        elem_id,
    )


def dataframe(page: Any, elem_id: str) -> tuple[list[str], list[list[str]]]:
    """``(headers, rows)`` of a gr.Dataframe as shown (Gradio 6 virtual table: only the rendered rows)."""
    headers, rows = page.evaluate(
        """(id) => { const el = document.getElementById(id); if (!el) return [[], []];
            const heads = Array.from(el.querySelectorAll('th[role="columnheader"]')).map(
                th => (th.getAttribute('title') || th.innerText).trim());
            let rows = Array.from(el.querySelectorAll('[role="row"].virtual-row')).map(
                r => Array.from(r.querySelectorAll('[role="gridcell"]')).map(c => c.innerText.trim()));
            if (rows.length === 0) {  // older/other layouts: a plain table body
                rows = Array.from(el.querySelectorAll('tbody:not([aria-hidden="true"]) tr')).map(
                    r => Array.from(r.querySelectorAll('td')).map(c => c.innerText.trim()));
            }
            return [heads, rows.filter(r => r.some(c => c.length > 0))]; }""",
        elem_id,
    )
    return list(headers), [list(r) for r in rows]


def plotly_info(page: Any, elem_id: str) -> dict[str, Any]:
    """How a gr.Plot renders: plotly graphs, cartesian panels, trace types, WebGL canvases, title."""
    return page.evaluate(
        """(id) => { const el = document.getElementById(id);
            const info = {plots: 0, subplots: 0, traces: 0, types: [], gl: 0, title: ''};
            if (!el) return info;
            const plots = el.querySelectorAll('.js-plotly-plot');
            info.plots = plots.length;
            plots.forEach(p => {
                const data = p.data || [];
                info.traces += data.length;
                data.forEach(t => { const type = t.type || 'scatter';
                    if (!info.types.includes(type)) info.types.push(type); });
                info.subplots += p.querySelectorAll('.cartesianlayer .subplot').length;
                info.gl += p.querySelectorAll('canvas.gl-canvas').length;
                const title = p.layout && p.layout.title;
                info.title += typeof title === 'string' ? title : ((title && title.text) || '');
            });
            return info; }""",
        elem_id,
    )


def error_badges(page: Any) -> list[str]:
    """elem_id (or label) of every component showing gradio's red "Error" badge (an event writing it failed)."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('[data-testid="status-tracker"] .error'))
            .filter(e => e.offsetParent !== null)
            .map(e => { const block = e.closest('[id]');
                return block ? block.id : (e.closest('.block') || e).innerText.slice(0, 40); })"""
    )


def file_links(page: Any, elem_id: str) -> list[tuple[str, str]]:
    """``(text, href)`` of the download links a gr.File / gr.DownloadButton shows."""
    return page.evaluate(
        """(id) => { const el = document.getElementById(id); if (!el) return [];
            const links = el.tagName === 'A' ? [el] : Array.from(el.querySelectorAll('a[href]'));
            return links.filter(a => a.getAttribute('href')).map(a => [a.innerText.trim(), a.href]); }""",
        elem_id,
    )


def radio_labels(page: Any, elem_id: str) -> list[str]:
    """Labels of a gr.Radio's choices."""
    return [t.strip() for t in page.locator(f"#{elem_id} label").all_inner_texts() if t.strip()]


def dropdown_options(page: Any, elem_id: str, timeout_s: float = 10) -> list[str]:
    """Open a gr.Dropdown, read its options, close it again."""
    box = page.locator(f"#{elem_id} input[role='combobox']").first
    box.click(timeout=timeout_s * 1000)
    listbox_id = box.get_attribute("aria-controls")
    scope = f"#{listbox_id} " if listbox_id else ""
    options = page.locator(f"{scope}[role='option']")
    options.first.wait_for(state="attached", timeout=timeout_s * 1000)
    labels = [t.replace("✓", "").strip() for t in options.all_inner_texts()]
    box.press("Escape")
    box.blur()
    return labels


# --- acting on components ---------------------------------------------------------------------------------


def open_app(page: Any, url: str, timeout_s: float) -> None:
    """Load the app and wait until the shared model picker and the first tab are on screen."""
    page.goto(url, timeout=timeout_s * 1000)
    page.locator("#model-picker").wait_for(state="visible", timeout=timeout_s * 1000)
    page.locator("#tab-similarity").wait_for(state="visible", timeout=timeout_s * 1000)


def open_tab(page: Any, tab_id: str, first_component: str, timeout_s: float = 20, label: str | None = None) -> None:
    """Click a tab's button (Gradio names it ``<tab elem_id>-button``) and wait for a component inside it.

    On a narrow screen gradio moves the tabs that do not fit into its "More tabs" menu, whose entries have no id:
    give the tab's ``label`` to open it from there.
    """
    button = page.locator(f"#{tab_id}-button, [role='tab'][aria-controls='{tab_id}']").first
    if label is not None and not button.is_visible():
        exactly = re.compile(f"^\\s*{re.escape(label)}\\s*$")
        # The tab bar whose (hidden) measuring row names the tab; its panels are not mounted until opened.
        bar = page.locator(".tab-wrapper").filter(has=page.locator(".visually-hidden button", has_text=exactly)).first
        bar.locator("button[aria-label='More tabs']").click(timeout=timeout_s * 1000)
        button = bar.locator(".overflow-dropdown button", has_text=exactly).first
    button.click(timeout=timeout_s * 1000)
    page.locator(f"#{tab_id}").wait_for(state="visible", timeout=timeout_s * 1000)
    page.locator(f"#{first_component}").wait_for(state="visible", timeout=timeout_s * 1000)


def fill_text(page: Any, elem_id: str, text: str) -> None:
    """Type into a gr.Textbox (textarea or input)."""
    page.locator(f"#{elem_id} textarea, #{elem_id} input[type='text']").first.fill(text, timeout=15_000)


def set_number(page: Any, elem_id: str, value: float) -> None:
    """Set a gr.Number or gr.Slider through its number box and commit the change (Enter, then blur)."""
    box = page.locator(f"#{elem_id} input[type='number']").first
    box.fill(f"{value:g}", timeout=15_000)
    box.press("Enter")
    box.blur()
    shown = float(box.input_value())
    if abs(shown - float(value)) > 1e-9 * max(1.0, abs(float(value))):
        raise AssertionError(f"#{elem_id} shows {shown} after setting {value} (outside its range?)")


def number_max(page: Any, elem_id: str) -> float:
    """The largest value a gr.Slider / gr.Number accepts (its ``max``), or +inf."""
    value = page.locator(f"#{elem_id} input[type='number']").first.get_attribute("max")
    return float(value) if value not in (None, "") else float("inf")


def choose_radio(page: Any, elem_id: str, pattern: str) -> str:
    """Click the gr.Radio choice whose label matches the regex ``pattern``; returns that label."""
    labels = radio_labels(page, elem_id)
    matches = [label for label in labels if re.search(pattern, label, re.IGNORECASE)]
    if not matches:
        raise AssertionError(f"#{elem_id} has no choice matching {pattern!r}: {labels}")
    label = page.locator(f"#{elem_id} label", has_text=matches[0]).first
    if not label.locator("input").first.is_checked():
        label.click(timeout=15_000)
        checked = label.locator("input").first
        wait_for(page, checked.is_checked, bool, 10, f"#{elem_id} to select {matches[0]}")
    return matches[0]


def upload_file(page: Any, elem_id: str, path: Path, timeout_s: float = 20) -> None:
    """Put a file into a gr.File upload and wait until Gradio shows it as uploaded."""
    page.locator(f"#{elem_id} input[type='file']").first.set_input_files(str(path))
    wait_for(
        page,
        lambda: text_of(page, elem_id),
        lambda text: path.name in text or path.stem in text,
        timeout_s,
        f"#{elem_id} to show the uploaded {path.name}",
    )


def click(page: Any, elem_id: str, timeout_s: float = 10) -> None:
    """Click a button by elem_id once it is enabled."""
    page.locator(f"#{elem_id}").click(timeout=timeout_s * 1000)


def screenshot(page: Any, folder: Path, name: str, settle_s: float = 10) -> Path:
    """Full-page PNG into ``folder``, once no component shows Gradio's pending state; returns its path.

    Gradio dims an event's outputs while it runs and fades them back afterwards, so a picture taken the
    moment a result appears can show it greyed out.
    """
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline and page.evaluate(
            "() => !!document.querySelector('.pending, [data-testid=\"status-tracker\"]:not(.hide)')"):
        page.wait_for_timeout(100)
    page.wait_for_timeout(400)  # the fade back to full opacity
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


NUMBER = re.compile(r"[-−]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text`` (accepts the typographic minus)."""
    return [float(m.replace("−", "-")) for m in NUMBER.findall(text)]
