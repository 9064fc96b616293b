"""End-to-end browser tests: the real app (bundled model, offline) driven in headless Debian Chromium.

Run: ``python -m pytest tests/test_browser.py -m browser -s`` (``-s`` shows timings). Screenshots of every tab
go to ``$SIMCSE_SCREENSHOT_DIR`` (default: a pytest temporary folder, printed). Without /usr/bin/chromium the
tests skip, unless ``SIMCSE_REQUIRE_BROWSER=1`` (CI), where a missing browser is a failure.
"""

from __future__ import annotations

import csv
import os
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    AppServer,
    ServerSpec,
    choose_radio,
    click,
    dataframe,
    dropdown_options,
    file_links,
    fill_text,
    free_port,
    is_busy,
    number_max,
    numbers_in,
    open_app,
    open_tab,
    plotly_info,
    screenshot,
    set_number,
    text_of,
    upload_file,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[1]
APP = Path(os.environ.get("SIMCSE_BROWSER_APP", REPO / "app.py"))  # override only to debug the harness
CORPUS_CSV = REPO / "assets" / "corpus.csv"
VIEWPORT = {"width": 1400, "height": 1000}

# Bounds (seconds). Generous: the box is shared and has 2 cores; CI is faster.
SERVE_TIMEOUT = 180
PAGE_TIMEOUT = 60
QUICK = 60  # one encode of a few sentences, a plot
INDEX_TIMEOUT = 180  # encoding the bundled corpus
FINETUNE_TIMEOUT = 240
EVAL_TIMEOUT = 240
SEARCH_UNDER_LOAD_BOUND = 30  # a search while another session trains

FINETUNE_STEPS = 10
FINETUNE_BATCH = 16
FINETUNE_BUDGET_S = 90

# A finished run: by its step count or by its time budget (both are a completed run).
DONE = re.compile(r"\b(done|completed?|time budget reached)\b", re.IGNORECASE)
STOPPED = re.compile(r"\b(stopped|cancell?ed|interrupted)\b", re.IGNORECASE)
FINE_TUNED = re.compile(r"fine-?tuned|^run \d+ ·", re.IGNORECASE)  # runs are named "run 2 · unsup · …"
READY = re.compile(r"\bready\b|\bindexed\b|\bbuilt\b", re.IGNORECASE)
MARKER = "zorblax"  # a made-up word: only session A's private files contain it


# --- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium, or a skip (a failure when SIMCSE_REQUIRE_BROWSER=1)."""
    required = os.environ.get("SIMCSE_REQUIRE_BROWSER") == "1"
    problem = None
    if not CHROMIUM.is_file():
        problem = f"{CHROMIUM} not found (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError as exc:
            problem = f"python package playwright missing: {exc}"
    if problem is not None:
        if required:
            pytest.fail(f"SIMCSE_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    if not APP.is_file():
        pytest.fail(f"app not found at {APP}")
    return CHROMIUM


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder for the screenshots."""
    folder = Path(os.environ.get("SIMCSE_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\n[browser] screenshots -> {folder}")
    return folder


@pytest.fixture(scope="module")
def server(
    chromium: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[AppServer]:
    """The real app on a free port, offline, on the bundled model; stopped (process group) at teardown."""
    folder = tmp_path_factory.mktemp("app")
    env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    }
    app = None
    try:
        for attempt in (1, 2):  # a second port if another process grabbed the first one meanwhile
            app = AppServer(ServerSpec(APP, free_port(), folder / f"app-{attempt}.log", env))
            try:
                took = app.wait_until_serving(SERVE_TIMEOUT)
                break
            except RuntimeError as exc:
                app.stop()
                if attempt == 2 or "address already in use" not in str(exc).lower():
                    raise
        print(f"\n[browser] app serving {app.url} after {took:.1f} s (log {app.spec.log_path})")
        yield app
    finally:
        if app is not None:
            failed = request.session.testsfailed
            app.stop()
            if failed:
                print(f"\n[browser] server log tail ({app.spec.log_path}):\n{app.log_tail(6000)}")


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    """One headless Chromium for the module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=str(chromium), args=list(CHROMIUM_ARGS))
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """A factory of pages, each in its own browser context (= its own Gradio session); all closed after."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        context.set_default_timeout(PAGE_TIMEOUT * 1000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


# --- small readers ----------------------------------------------------------------------------------------


def corpus_topics() -> dict[str, str]:
    """sentence -> topic of the bundled corpus (read independently of the app)."""
    with CORPUS_CSV.open(encoding="utf-8", newline="") as handle:
        return {row["text"].strip(): row["topic"].strip() for row in csv.DictReader(handle)}


def column(headers: list[str], pattern: str) -> int | None:
    """Index of the first header matching ``pattern``."""
    for index, header in enumerate(headers):
        if re.search(pattern, header, re.IGNORECASE):
            return index
    return None


def sentence_cell(headers: list[str], row: list[str]) -> str:
    """The cell holding the sentence: the 'sentence'/'text' column, else the longest cell."""
    index = column(headers, r"sentence|text|hit|document|result")
    return row[index] if index is not None and index < len(row) else max(row, key=len)


def wait_plot(
    page: Any, elem_id: str, timeout_s: float, server: AppServer, min_subplots: int = 1, kind: str | None = None
) -> dict:
    """Wait for a plotly figure with data (the app's placeholders have no traces) and the panels asked for."""
    return wait_for(
        page,
        lambda: plotly_info(page, elem_id),
        lambda info: info["plots"] >= 1
        and info["subplots"] >= min_subplots
        and info["traces"] >= 1
        and (kind is None or kind in info["types"])
        and not is_busy(page, elem_id),
        timeout_s,
        f"#{elem_id} to render a plotly figure with data, >= {min_subplots} panel(s), trace type {kind}",
        server,
    )


def wait_rows(page: Any, elem_id: str, timeout_s: float, server: AppServer, min_rows: int = 1) -> tuple:
    return wait_for(
        page,
        lambda: dataframe(page, elem_id),
        lambda table: len(table[1]) >= min_rows and not is_busy(page, elem_id),
        timeout_s,
        f"#{elem_id} to show >= {min_rows} row(s)",
        server,
    )


def search(
    page: Any, server: AppServer, query: str, timeout_s: float
) -> tuple[list[str], list[list[str]], float]:
    """Type a query, click search, wait for a result table that answers this query; returns it and seconds."""
    before = dataframe(page, "ret-results")
    fill_text(page, "ret-query", query)
    start = time.monotonic()
    click(page, "ret-search")
    headers, rows = wait_for(
        page,
        lambda: dataframe(page, "ret-results"),
        lambda table: len(table[1]) >= 1 and table != before and not is_busy(page, "ret-results"),
        timeout_s,
        f"search results for {query!r}",
        server,
    )
    return headers, rows, time.monotonic() - start


def build_index(page: Any, server: AppServer, timeout_s: float) -> tuple[str, float]:
    """Click build; wait for the status to say the index is ready. Returns the status and seconds."""
    before = text_of(page, "ret-status")
    seen_busy = []

    def probe() -> str:
        if is_busy(page, "ret-status"):
            seen_busy.append(True)
            return ""
        return text_of(page, "ret-status")

    start = time.monotonic()
    click(page, "ret-build")
    status = wait_for(
        page,
        probe,
        lambda text: (text != before or bool(seen_busy)) and READY.search(text) is not None,
        timeout_s,
        "index build status",
        server,
    )
    return status, time.monotonic() - start


# --- test 1: every tab, one session -----------------------------------------------------------------------


def check_similarity(page: Any, server: AppServer, shots: Path) -> None:
    fill_text(page, "sim-a", "A man is playing a guitar on stage.")
    fill_text(page, "sim-b", "Someone performs music with a guitar.")
    before = text_of(page, "sim-score")
    click(page, "sim-run")
    text = wait_for(
        page,
        lambda: text_of(page, "sim-score"),
        lambda t: t != before and bool(numbers_in(t)) and re.search(r"[A-Za-z]{4,}", t) is not None
        and not is_busy(page, "sim-score"),
        QUICK,
        "#sim-score to show a number and a reading",
        server,
    )
    in_range = [n for n in numbers_in(text) if -1.0 <= n <= 1.0]
    assert in_range, f"no cosine in [-1, 1] in #sim-score: {text!r}"
    print(f"[browser] similarity: {text!r} (score read {in_range[0]})")
    fill_text(
        page,
        "sim-list",
        "The cat sleeps on the sofa.\nA kitten naps on the couch.\nStocks fell sharply today.\n"
        "The market dropped this morning.",
    )
    click(page, "sim-heatmap-run")
    info = wait_plot(page, "sim-heatmap", QUICK, server, kind="heatmap")
    print(f"[browser] heatmap: {info}")
    screenshot(page, shots, "1-similarity")


def check_retrieval(page: Any, server: AppServer, shots: Path) -> None:
    open_tab(page, "tab-retrieval", "ret-build")
    choose_radio(page, "ret-corpus-choice", r"bundled")
    status, took = build_index(page, server, INDEX_TIMEOUT)
    print(f"[browser] index built in {took:.1f} s: {status!r}")
    query = "How long should I simmer the tomato sauce for the pasta?"
    headers, rows, took = search(page, server, query, QUICK)
    print(f"[browser] search in {took:.2f} s; headers {headers}; first row {rows[0]}")
    topics = corpus_topics()
    cooking = {t for t in topics.values() if re.search(r"cook|food|recipe|cuisine|kitchen|culinar", t, re.I)}
    assert cooking, f"the bundled corpus has no cooking topic: {sorted(set(topics.values()))}"
    first = sentence_cell(headers, rows[0])
    topic_index = column(headers, r"topic")
    shown_topic = rows[0][topic_index] if topic_index is not None else None
    corpus_topic = topics.get(first.strip())
    assert corpus_topic is not None, f"first hit {first!r} is not a sentence of {CORPUS_CSV.name}"
    assert corpus_topic in cooking, f"first hit {first!r} has topic {corpus_topic!r}, expected {cooking}"
    if shown_topic is not None:
        assert shown_topic == corpus_topic, f"table says topic {shown_topic!r}, corpus says {corpus_topic!r}"
    screenshot(page, shots, "2-retrieval")


def check_finetune(page: Any, server: AppServer, shots: Path, downloads: Path) -> None:
    open_tab(page, "tab-finetune", "ft-start")
    choose_radio(page, "ft-data-choice", r"sample.*unsup|unsup.*sample")
    set_number(page, "ft-steps", FINETUNE_STEPS)
    set_number(page, "ft-batch", FINETUNE_BATCH)
    set_number(page, "ft-budget", FINETUNE_BUDGET_S)
    start = time.monotonic()
    click(page, "ft-start")
    status = wait_for(
        page,
        lambda: text_of(page, "ft-status"),
        lambda t: DONE.search(t) is not None and not is_busy(page, "ft-status"),
        FINETUNE_TIMEOUT,
        "#ft-status to report a finished run",
        server,
    )
    took = time.monotonic() - start
    print(f"[browser] fine-tune {FINETUNE_STEPS} steps finished in {took:.1f} s: {status!r}")
    info = wait_plot(page, "ft-loss-plot", QUICK, server)
    print(f"[browser] loss plot: {info}")
    links = wait_for(
        page,
        lambda: file_links(page, "ft-download-model"),
        lambda found: any(".zip" in href or ".zip" in text for text, href in found),
        QUICK,
        "#ft-download-model to offer a .zip",
        server,
    )
    with page.expect_download(timeout=QUICK * 1000) as pending:
        page.locator("#ft-download-model a[href]").first.click()
    saved = downloads / (pending.value.suggested_filename or "model.zip")
    pending.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
    print(f"[browser] download {links[0]} -> {saved.stat().st_size} bytes, {len(names)} files")
    assert any(n.endswith("config.json") for n in names), f"model zip has no config.json: {names[:20]}"
    weights = [n for n in names if re.search(r"\.(safetensors|bin)$", n)]
    assert weights, f"model zip has no weights: {names[:20]}"
    embeddings = file_links(page, "ft-download-emb")
    assert any(".npy" in href or ".csv" in href for _, href in embeddings), f"no embeddings file: {embeddings}"
    options = dropdown_options(page, "model-picker")
    assert any(FINE_TUNED.search(o) for o in options), f"no fine-tuned model offered after a run: {options}"
    screenshot(page, shots, "3-finetune")


def check_map(page: Any, server: AppServer, shots: Path) -> None:
    open_tab(page, "tab-map", "map-run")
    click(page, "map-run")
    info = wait_plot(page, "map-plot", INDEX_TIMEOUT, server, min_subplots=2)
    hist = wait_plot(page, "map-hist", QUICK, server, kind="bar")
    assert hist["traces"] >= 2, f"the histogram should show before and after: {hist}"
    print(f"[browser] map: {info}; histogram: {hist}; stats: {text_of(page, 'map-stats')!r}")
    screenshot(page, shots, "4-map")


def check_evaluate(page: Any, server: AppServer, shots: Path) -> None:
    open_tab(page, "tab-evaluate", "eval-run")
    start = time.monotonic()
    click(page, "eval-run")
    headers, rows = wait_rows(page, "eval-table", EVAL_TIMEOUT, server, min_rows=2)
    print(f"[browser] evaluation in {time.monotonic() - start:.1f} s: {headers} {rows}")
    model = column(headers, r"model") or 0
    base = [r for r in rows if re.search(r"base|bundled", r[model], re.IGNORECASE)]
    tuned = [r for r in rows if FINE_TUNED.search(r[model])]
    assert base and tuned, f"expected a base and a fine-tuned row: {rows}"
    for row in (base[0], tuned[0]):
        assert numbers_in(" ".join(row[1:])), f"row without numbers: {row}"
    spearman = column(headers, r"spearman")
    if spearman is not None:
        for row in (base[0], tuned[0]):
            value = numbers_in(row[spearman])
            assert value and -100 <= value[0] <= 100, f"Spearman x100 out of range in {row}"
    screenshot(page, shots, "5-evaluate")


def test_every_tab_end_to_end(server: AppServer, new_page: Any, shots: Path, tmp_path: Path) -> None:
    page = new_page()
    start = time.monotonic()
    open_app(page, server.url, PAGE_TIMEOUT)
    wait_for(page, lambda: plotly_info(page, "sim-heatmap")["plots"], bool, QUICK, "the heatmap placeholder", server)
    screenshot(page, shots, "0-landing")
    check_similarity(page, server, shots)
    check_retrieval(page, server, shots)
    check_finetune(page, server, shots, tmp_path)
    check_map(page, server, shots)
    check_evaluate(page, server, shots)
    print(f"[browser] all tabs in {time.monotonic() - start:.1f} s")


# --- test 2: two sessions at once -------------------------------------------------------------------------


def private_files(folder: Path) -> tuple[Path, Path]:
    """Session A's own corpus and training file; every line contains MARKER."""
    things = ("lantern", "orchard", "harbour", "violin", "glacier", "bakery", "comet", "ferry", "library",
              "kite")
    corpus = folder / "a_private_corpus.txt"
    corpus.write_text(
        "".join(f"The {MARKER} {thing} number {i} glows violet at dusk.\n" for i, thing in enumerate(things)),
        encoding="utf-8",
    )
    training = folder / "a_private_training.txt"
    lines = [f"Every {MARKER} {thing} in the old town is painted {colour}." for thing in things
             for colour in ("red", "green", "blue", "amber", "grey", "white")]
    training.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return corpus, training


def test_two_sessions_are_isolated_and_responsive(
    server: AppServer, new_page: Any, shots: Path, tmp_path: Path
) -> None:
    a_corpus, a_training = private_files(tmp_path)
    page_a, page_b = new_page(), new_page()
    open_app(page_a, server.url, PAGE_TIMEOUT)
    open_app(page_b, server.url, PAGE_TIMEOUT)

    # A: its own corpus, searchable (positive control for the isolation checks below).
    open_tab(page_a, "tab-retrieval", "ret-build")
    choose_radio(page_a, "ret-corpus-choice", r"upload")
    upload_file(page_a, "ret-upload", a_corpus)
    try:  # the app indexes an upload at once
        wait_for(page_a, lambda: text_of(page_a, "ret-status"),
                 lambda t: a_corpus.name in t and READY.search(t) is not None, 30, "auto-index of the upload")
    except AssertionError:
        build_index(page_a, server, QUICK)
    headers, rows, _ = search(page_a, server, f"{MARKER} lantern glowing violet", QUICK)
    assert MARKER in sentence_cell(headers, rows[0]).lower(), f"A's own corpus not searched: {rows[:3]}"

    # A: a long fine-tune on its own uploaded sentences.
    open_tab(page_a, "tab-finetune", "ft-start")
    choose_radio(page_a, "ft-data-choice", r"upload")
    upload_file(page_a, "ft-upload", a_training)
    set_number(page_a, "ft-steps", number_max(page_a, "ft-steps"))
    set_number(page_a, "ft-batch", 16)
    set_number(page_a, "ft-budget", min(600, number_max(page_a, "ft-budget")))
    click(page_a, "ft-start")
    running = wait_for(
        page_a,
        lambda: text_of(page_a, "ft-status"),
        lambda t: re.search(r"\bstep\b\D{0,20}[1-9]", t, re.IGNORECASE) is not None,
        FINETUNE_TIMEOUT,
        "A's #ft-status to show training progress",
        server,
    )
    print(f"[browser] A training: {running!r}")

    # B, while A trains: none of A's things, and a search answers within a bound.
    options = dropdown_options(page_b, "model-picker")
    assert not any(FINE_TUNED.search(o) for o in options), f"B is offered a fine-tuned model: {options}"
    open_tab(page_b, "tab-finetune", "ft-start")
    assert a_training.name not in text_of(page_b, "ft-upload"), "A's training file shows in B"
    open_tab(page_b, "tab-retrieval", "ret-build")
    assert a_corpus.name not in text_of(page_b, "ret-upload"), "A's corpus file shows in B"
    choose_radio(page_b, "ret-corpus-choice", r"bundled")
    status, build_s = build_index(page_b, server, INDEX_TIMEOUT)
    print(f"[browser] B built the bundled index in {build_s:.1f} s while A trains: {status!r}")
    query = f"{MARKER} lantern glowing violet"
    headers, rows, search_s = search(page_b, server, query, SEARCH_UNDER_LOAD_BOUND)
    print(f"[browser] B search took {search_s:.2f} s while A trains (bound {SEARCH_UNDER_LOAD_BOUND} s)")
    leaked = [r for r in rows if MARKER in " ".join(r).lower()]
    assert not leaked, f"A's private sentences in B's results: {leaked}"
    assert search_s < SEARCH_UNDER_LOAD_BOUND
    screenshot(page_b, shots, "6-session-b-retrieval")

    # A's index was not replaced by B's build; A is still training.
    open_tab(page_a, "tab-retrieval", "ret-search")
    headers, rows, _ = search(page_a, server, f"{MARKER} comet glowing violet", QUICK)
    assert MARKER in sentence_cell(headers, rows[0]).lower(), f"A's index was replaced: {rows[:3]}"
    assert not STOPPED.search(text_of(page_a, "ft-status")) and not DONE.search(text_of(page_a, "ft-status"))

    # A: stop the run.
    open_tab(page_a, "tab-finetune", "ft-stop")
    screenshot(page_a, shots, "7-session-a-training")
    start = time.monotonic()
    click(page_a, "ft-stop", timeout_s=QUICK)
    final = wait_for(
        page_a,
        lambda: text_of(page_a, "ft-status"),
        lambda t: STOPPED.search(t) is not None and not is_busy(page_a, "ft-status"),
        QUICK,
        "A's #ft-status to report the stop",
        server,
    )
    print(f"[browser] A stopped {time.monotonic() - start:.1f} s after the click: {final!r}")
    screenshot(page_a, shots, "8-session-a-stopped")
    own = dropdown_options(page_a, "model-picker")
    assert any(FINE_TUNED.search(o) for o in own), f"A's stopped run is not offered to A: {own}"
    options = dropdown_options(page_b, "model-picker")
    assert not any(FINE_TUNED.search(o) for o in options), f"B is offered A's model after the stop: {options}"
    assert MARKER not in text_of(page_b, "ft-status").lower(), "A's data shows in B's fine-tune status"


# --- test 3: a teacher's walk (issue 18): what the class sees moves, stays, and names its model ------------

TEACHER_VIEWPORT = {"width": 1280, "height": 800}


def error_badges(page: Any, elem_ids: tuple[str, ...]) -> list[str]:
    """The components among ``elem_ids`` on which Gradio shows its red "Error" state."""
    return page.evaluate(
        """(ids) => ids.filter(id => { const el = document.getElementById(id); if (!el) return false;
            const t = el.querySelector('[data-testid="status-tracker"]');
            return !!t && (t.classList.contains('error') || /\\bError\\b/.test(t.innerText)); })""",
        list(elem_ids),
    )


def shown_in(page: Any, elem_id: str) -> str:
    """Everything a component shows, its status (where Gradio writes a validation message) included."""
    return page.evaluate("(id) => { const el = document.getElementById(id); return el ? el.innerText : ''; }",
                         elem_id)


def sts_points(page: Any) -> int:
    """Points on the live STS chart (the longest trace)."""
    return page.evaluate(
        """() => { const p = document.querySelector('#ft-sts-plot .js-plotly-plot');
            return p && p.data ? Math.max(0, ...p.data.map(t => (t.x || []).length)) : 0; }""")


def picker_value(page: Any) -> str:
    return page.locator("#model-picker input[role='combobox']").first.input_value()


def test_a_teacher_walk(browser: Any, server: AppServer, shots: Path, tmp_path: Path) -> None:
    context = browser.new_context(viewport=TEACHER_VIEWPORT)
    context.set_default_timeout(PAGE_TIMEOUT * 1000)
    page = context.new_page()
    try:
        open_app(page, server.url, PAGE_TIMEOUT)
        base = picker_value(page)

        # Text over the limit is refused on its own box, not cut; the last score stays.
        click(page, "sim-run")
        score = wait_for(page, lambda: text_of(page, "sim-score"), lambda t: "Model:" in t, QUICK, "a score", server)
        long = "A sentence that goes on and on. " * 40  # 1,280 characters
        fill_text(page, "sim-a", long)
        typed = page.locator("#sim-a textarea").first.input_value()
        assert len(typed) == len(long), f"the box cut the text to {len(typed)} characters"
        click(page, "sim-run")
        wait_for(page, lambda: shown_in(page, "sim-a"), lambda t: "limit is 1,000" in t, QUICK,
                 "the sentence box to say its limit", server, fail_on=())
        assert text_of(page, "sim-score") == score and not error_badges(page, ("sim-score",))
        screenshot(page, shots, "teacher-1-similarity-too-long", settle_s=2)

        # Typing a dropout rate and pressing Enter redraws the twins.
        open_tab(page, "tab-inside", "twins-run")
        set_number(page, "twins-dropout", 0.3)
        wait_for(page, lambda: text_of(page, "twins-summary"), lambda t: "Dropout 0.30" in t, QUICK,
                 "the twins at the typed dropout", server)

        # Retrieval: the corpus choice takes effect when changed (no Build index needed).
        corpus, _ = private_files(tmp_path)
        open_tab(page, "tab-retrieval", "ret-build")
        choose_radio(page, "ret-corpus-choice", r"upload")
        upload_file(page, "ret-upload", corpus)
        wait_for(page, lambda: text_of(page, "ret-status"), lambda t: corpus.name in t, INDEX_TIMEOUT,
                 "the upload to be read", server)
        choose_radio(page, "ret-corpus-choice", r"bundled")
        wait_for(page, lambda: text_of(page, "ret-status"), lambda t: "Bundled" in t, QUICK,
                 "the status to name the bundled corpus", server)
        headers, rows, _ = search(page, server, f"{MARKER} lantern glowing violet", INDEX_TIMEOUT)
        assert not [r for r in rows if MARKER in " ".join(r).lower()], f"searched the old upload: {rows[:3]}"

        # A broken training file is marked on the upload box only; plots and status stay clean.
        open_tab(page, "tab-finetune", "ft-start")
        bad = tmp_path / "four_columns.csv"
        bad.write_text("a,b,c,d\nw,x,y,z\nq,r,s,t\n", encoding="utf-8")
        choose_radio(page, "ft-data-choice", r"upload")
        page.locator("#ft-upload input[type='file']").first.set_input_files(str(bad))
        wait_for(page, lambda: shown_in(page, "ft-upload"), lambda t: "column" in t.lower(), QUICK,
                 "the upload box to say what is wrong", server, fail_on=())
        page.wait_for_timeout(1000)
        watched = ("ft-status", "ft-loss-plot", "ft-sts-plot", "ft-au-plot", "ft-mode")
        assert not error_badges(page, watched), error_badges(page, watched)

        # A live run: the STS chart moves while it trains, and the status names the step measured.
        choose_radio(page, "ft-data-choice", r"sample.*unsup|unsup.*sample")
        set_number(page, "ft-steps", 200)
        set_number(page, "ft-batch", 16)
        set_number(page, "ft-budget", 60)
        click(page, "ft-start")
        moving = wait_for(
            page, lambda: (sts_points(page), text_of(page, "ft-status")),
            lambda seen: seen[0] >= 2 or DONE.search(seen[1]) is not None, FINETUNE_TIMEOUT,
            "a second point on the STS chart", server)
        assert moving[0] >= 2 and not DONE.search(moving[1]), f"the chart did not move during the run: {moving}"
        step = re.search(r"measured at step (\d+)", moving[1])
        assert step and int(step.group(1)) > 0, moving[1]
        screenshot(page, shots, "teacher-2-finetune-live", settle_s=0)
        final = wait_for(page, lambda: text_of(page, "ft-status"),
                         lambda t: DONE.search(t) is not None and not is_busy(page, "ft-status"),
                         FINETUNE_TIMEOUT, "the run to finish", server)
        assert sts_points(page) >= 4, sts_points(page)
        # The finished run is offered, not switched to.
        assert picker_value(page) == base and "still use the model you picked" in final
        assert any(FINE_TUNED.search(o) for o in dropdown_options(page, "model-picker"))
        screenshot(page, shots, "teacher-3-finetune-done")

        # Leaving the page now asks first (the runs live in this tab).
        page.on("dialog", lambda dialog: dialog.accept())
        with page.expect_event("dialog", timeout=15_000) as asked:
            page.close(run_before_unload=True)
        assert asked.value.type == "beforeunload"
    finally:
        context.close()
