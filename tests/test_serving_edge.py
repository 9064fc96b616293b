"""The serving layer's hostile holes and fairness (issue 26): whose address a run counts against, runs per person
(a browser) with the address as a backstop, memory returned after runs, a server-wide cap on kept runs, an
uploaded line shown as text, an unknown event refused with a message. No model is loaded here."""

from __future__ import annotations

import ctypes
import threading
import time
from pathlib import Path

import gradio as gr
import pytest

from ui.serving.errors import InputError, as_markdown_text, guarded
from ui.serving.people import People, new_person_id, valid_person_id
from ui.serving.server import client_address, distrust_proxy_headers
from ui.serving.session import FineTuneRecord, Session, close_session, start_browser_session
from ui.serving.training_queue import TrainingQueue

PROXY = "203.0.113.7"  # the address the school's proxy (or NAT) shows


def request(forwarded: str | None = None, peer: str = "127.0.0.1") -> gr.Request:
    """A queued event's request, as gradio hands it to a handler."""
    headers = {"x-forwarded-for": forwarded} if forwarded is not None else {}
    return gr.Request(headers=headers, client={"host": peer, "port": 5000})


# --- 1. the address is the proxy's word, never the client's ---------------------------------------------------
def test_twelve_forged_prefixes_behind_one_proxy_address_count_as_one_address() -> None:
    forged = [request(f"10.66.0.{k}, {PROXY}") for k in range(12)]
    assert {client_address(r, trusted_proxy=1) for r in forged} == {PROXY}
    assert client_address(request(f"1.1.1.1, 2.2.2.2:4431, {PROXY}:80"), trusted_proxy=1) == PROXY  # ports dropped
    assert client_address(request(f"spoof, {PROXY}, 10.0.0.2"), trusted_proxy=2) == PROXY  # two hops: one more in
    assert client_address(request(PROXY), trusted_proxy=3) == PROXY  # fewer entries than hops: the left-most
    assert client_address(request(None, peer="192.0.2.1"), trusted_proxy=1) == "192.0.2.1"  # no header: the peer
    assert client_address(request(f"10.0.0.1,, ,{PROXY}"), trusted_proxy=True) == PROXY  # the old flag: one hop


def test_several_forwarded_headers_are_read_in_order() -> None:
    from starlette.requests import Request

    scope = {"type": "http", "method": "GET", "path": "/", "client": ("127.0.0.1", 5000),
             "headers": [(b"x-forwarded-for", b"10.66.0.1, 10.66.0.2"), (b"x-forwarded-for", PROXY.encode())]}
    assert client_address(gr.Request(Request(scope)), trusted_proxy=1) == PROXY


def test_without_a_trusted_proxy_the_header_is_ignored() -> None:
    assert client_address(request(f"10.66.0.1, {PROXY}", peer="192.0.2.9"), trusted_proxy=0) == "192.0.2.9"
    assert client_address(None, 0) == "local"


def test_uvicorn_believes_no_proxy_header_once_the_app_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradio's launch builds uvicorn's Config without forwarded_allow_ips: uvicorn reads FORWARDED_ALLOW_IPS,
    which by default lets any loopback client write its own address in X-Forwarded-For."""
    import asyncio

    import uvicorn
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "127.0.0.1")  # as an operator might have it; restored after
    seen = []

    async def app(scope, receive, send) -> None:
        seen.append(scope["client"][0])

    def peer_seen(trusted) -> str:
        scope = {"type": "http", "client": ("127.0.0.1", 5000), "headers": [(b"x-forwarded-for", b"10.66.0.1")]}
        asyncio.run(ProxyHeadersMiddleware(app, trusted_hosts=trusted)(scope, None, None))
        return seen[-1]

    assert peer_seen(uvicorn.Config(app).forwarded_allow_ips) == "10.66.0.1"  # the hole, before
    distrust_proxy_headers()
    assert peer_seen(uvicorn.Config(app).forwarded_allow_ips) == "127.0.0.1"


# --- 2. fair per person: a browser's id, the address only a backstop --------------------------------------------
def test_a_browser_keeps_its_person_id_and_a_forged_one_is_replaced() -> None:
    people = People()
    mine = new_person_id()
    session, stored = start_browser_session(people, mine)
    assert (session.person, stored, session.people) == (mine, mine, people)  # a reload, another tab: same person
    for forged in (None, "", "x" * 32, mine.upper(), 12, {"a": 1}, mine + "0"):
        session, stored = start_browser_session(people, forged)
        assert valid_person_id(stored) == stored == session.person != mine


def test_runs_count_per_person_across_their_tabs_and_end_once() -> None:
    people = People(max_runs_per_person=2)
    person = new_person_id()
    tabs = [Session(person=person, people=people) for _ in range(3)]
    tabs[0].begin_training()
    tabs[1].begin_training()
    with pytest.raises(InputError, match="limit per person is 2"):
        tabs[2].begin_training()
    assert tabs[2].training_idle.is_set()  # refused: nothing to end
    with pytest.raises(InputError, match="already have a run training"):
        tabs[0].begin_training()  # one run per session, as before
    Session(person=new_person_id(), people=people).begin_training()  # someone else: not counted against them
    for _ in range(3):
        tabs[0].end_training()  # the lifecycle may end a run on several paths: counted once
    assert people.active(person) == 1
    tabs[2].begin_training()
    assert people.active(person) == 2


def test_twelve_browsers_behind_one_address_all_get_a_run_or_a_place_in_line() -> None:
    """A class behind one NAT: each browser is a person; only the address backstop (10) and the line bound them."""
    people, queue = People(max_runs_per_person=2), TrainingQueue(slots=1, max_waiting=10, max_per_client=10)
    admitted, refused = [], []
    for _ in range(12):
        session = Session(people=people)
        session.begin_training()
        try:
            admitted.append(queue.join(60, client=PROXY))
        except InputError as err:
            refused.append(str(err))
            session.end_training()
    assert len(admitted) == 10 and len(refused) == 2  # >= 4 admitted, <= the backstop
    assert queue.counts() == (1, 9)
    for ticket in admitted:
        queue.leave(ticket)


def test_the_address_backstop_and_person_limit_are_the_running_configs() -> None:
    from app import parse_args
    from ui.serving.config import StudioConfig
    from ui.serving.studio import Studio

    args = parse_args(["--trusted-proxy", "--runs-per-address", "25", "--runs-per-person", "3", "--kept-runs", "7"])
    assert (args.trusted_proxy, args.runs_per_address, args.runs_per_person, args.kept_runs) == (1, 25, 3, 7)
    assert parse_args(["--trusted-proxy", "2"]).trusted_proxy == 2
    assert parse_args([]).trusted_proxy == 0 and parse_args([]).runs_per_address == 10
    studio = Studio(StudioConfig(max_runs_per_person=3, max_runs_per_address=25, max_kept_runs=7), registry=object())
    assert (studio.people.max_runs_per_person, studio.training_queue.max_per_client) == (3, 25)
    assert studio.people.max_kept_runs == 7


def test_a_page_load_makes_the_session_of_the_browsers_person() -> None:
    from ui.serving.config import StudioConfig
    from ui.serving.session import session_state

    people = People()
    with gr.Blocks() as demo:
        state = session_state(StudioConfig(), demo, people)
    browser = [b for b in demo.blocks.values() if isinstance(b, gr.BrowserState)]
    assert len(browser) == 1 and browser[0].storage_key == "simcse-studio-person"
    load = next(fn for fn in demo.fns.values() if fn.targets and fn.targets[0][1] == "load")
    assert [b._id for b in load.inputs] == [browser[0]._id] and load.outputs == [state, browser[0]]
    assert load.api_visibility == "private"
    session, stored = load.fn(None)
    assert session.people is people and stored == session.person
    assert state.value().people is people  # an API client's session (gradio's initial value) is counted too


# --- 3. memory comes back -------------------------------------------------------------------------------------
def test_every_end_of_a_run_gives_memory_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import ui.serving.session

    calls = []
    monkeypatch.setattr(ui.serving.session, "release_memory_soon", lambda: calls.append(time.monotonic()))
    session = Session(people=People())
    for _ in range(3):  # finished, stopped, failed: the lifecycle ends each through end_training
        session.begin_training()
        session.end_training()
        session.end_training()  # a second path of the same end: no second trim
    assert len(calls) == 3
    close_session(session)
    assert len(calls) == 4


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_release_memory_returns_freed_heap_to_the_system() -> None:
    """glibc keeps freed small allocations; one survivor in fifty pins the heap's top (no automatic trim)."""
    from ui.serving.memory import release_memory

    try:
        ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    for pending in [t for t in threading.enumerate() if t.name == "release-memory"]:
        pending.join()  # earlier tests' runs ended: their trims would run in the middle of this measurement
    release_memory()
    blocks = [bytes(2000) for _ in range(100_000)]  # 200 MB in malloc's heap (over pymalloc's 512-byte limit)
    survivors = blocks[::50]
    del blocks
    held = _rss_bytes()
    assert release_memory()
    assert held - _rss_bytes() > 100 * 2**20
    del survivors


def test_release_memory_soon_runs_in_a_thread_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    import ui.serving.memory

    ran = threading.Event()
    monkeypatch.setattr(ui.serving.memory, "release_memory", lambda: ran.set() or True)
    timer = ui.serving.memory.release_memory_soon(delay_s=0.01)
    assert timer.daemon and ran.wait(5)


# --- a server-wide cap on kept runs -----------------------------------------------------------------------------
def _record(run_id: int) -> FineTuneRecord:
    return FineTuneRecord(run_id=run_id, encoder=None, base_name="tiny", base_pooler="mean", summary="")


def test_beyond_the_servers_cap_the_oldest_run_of_an_idle_session_goes_and_its_owner_is_told(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import ui.serving.session

    monkeypatch.setattr(ui.serving.session, "release_memory_soon", lambda: None)
    people = People(max_kept_runs=3)
    idle, busy, newcomer = (Session(people=people) for _ in range(3))
    busy.add_run(_record(1), keep=3)  # the oldest, but its owner is training
    idle.add_run(_record(1), keep=3)
    idle.add_run(_record(2), keep=3)
    busy.begin_training()
    newcomer.add_run(_record(1), keep=3)
    assert (list(idle.runs), list(busy.runs), list(newcomer.runs)) == ([2], [1], [1])
    assert people.kept_count() == 3
    [notice] = idle.take_notices()
    assert "run 1" in notice and "at most 3 runs" in notice and idle.take_notices() == []
    newcomer.add_run(_record(2), keep=3)
    newcomer.add_run(_record(3), keep=3)  # idle runs go first, the newcomer's own older one too
    assert (list(idle.runs), list(busy.runs), list(newcomer.runs)) == ([], [1], [2, 3])
    assert len(newcomer.take_notices()) == 1  # its own run went for the server's cap: told why, like the others
    busy.end_training()
    newcomer.add_run(_record(4), keep=3)  # now idle, and the oldest
    assert (list(busy.runs), list(newcomer.runs)) == ([], [2, 3, 4]) and len(busy.take_notices()) == 1


def test_a_handler_shows_the_servers_messages_to_its_visitor(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = []
    monkeypatch.setattr(gr, "Warning", shown.append)
    session = Session()
    session.notify("Your <b>run 1</b> was removed")

    @guarded
    def handler(text: str, session: Session) -> str:
        return text

    assert handler("hi", session=session) == "hi" and handler("again", session) == "again"
    assert shown == ["Your &lt;b&gt;run 1&lt;/b&gt; was removed"]


# --- 4. an uploaded line shows as text ---------------------------------------------------------------------------
def test_markup_for_markdown_shows_as_text() -> None:
    shown = as_markdown_text("<img src=x onerror=alert(1)> **bold** [link](javascript:alert(1)) `x` # h")
    assert "<img" not in shown and "&lt;img src=x onerror=alert\\(1\\)&gt;" in shown
    assert "**" not in shown and "](" not in shown and "`x`" not in shown


def test_the_data_summary_shows_an_uploaded_first_line_as_text(tmp_path: Path) -> None:
    from ui.present import text
    from ui.tabs import finetune

    upload = tmp_path / "evil.txt"
    upload.write_text("<img src=x onerror=alert(1)> first\nsecond line\nthird line\n", encoding="utf-8")
    summary = finetune.describe_data(choice=text.UPLOAD_TRAINING, upload=str(upload))["data_info"]
    assert "<img" not in summary and "&lt;img" in summary


# --- 5. an unknown event is a 4xx with a message -----------------------------------------------------------------
def test_an_unknown_event_number_is_refused_with_a_message() -> None:
    from fastapi.testclient import TestClient

    from app import launch_limits
    from ui.serving.config import StudioConfig

    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(lambda value: value, box, box, api_name="echo")
    demo.queue()
    app = gr.routes.App.create_app(demo, app_kwargs=launch_limits(StudioConfig(), demo)["app_kwargs"])
    client = TestClient(app, raise_server_exceptions=False)
    known = next(iter(demo.fns))
    for route in ("/gradio_api/queue/join", "/gradio_api/run/predict", "/gradio_api/api/predict"):
        for index in (999, -5, "999", 999.0):
            answer = client.post(route, json={"data": ["a"], "fn_index": index, "session_hash": "h1"})
            assert answer.status_code == 404, (route, index, answer.text)
            assert f"no event number {int(index)}" in answer.json()["error"]
    assert client.post("/gradio_api/queue/join", json={"data": ["a"], "fn_index": "x", "session_hash": "h1"}
                       ).status_code == 422  # gradio's own answer to a malformed number
    answer = client.post("/gradio_api/run/predict", json={"data": ["a"], "fn_index": known, "session_hash": "h2"})
    assert answer.status_code == 200 and answer.json()["data"] == ["a"]
    assert client.post("/gradio_api/run/predict", content=b"[not json").status_code == 422


# --- the limits through a real run's lifecycle (tiny model) --------------------------------------------------------
@pytest.fixture
def tiny_studio(tiny_model_dir: Path, tmp_path: Path):
    from ui.serving.config import StudioConfig
    from ui.serving.studio import Studio

    config = StudioConfig(model=str(tiny_model_dir), device="cpu", precision="fp32", live_eval_pairs=24,
                          temp_root=str(tmp_path))
    return Studio(config)


def _finetune(studio, session: Session, client: str):
    from ui.present import text
    from ui.tabs import finetune

    form = finetune.FinetuneForm(data_choice=text.SAMPLE_UNSUP, upload=None, mode="unsup", steps=2, batch_size=8,
                                 lr=1e-3, temperature=0.05, dropout=0.1, pooler="mean", max_length=16, budget=60,
                                 picker=studio.config.base_label, start="picked")
    return finetune.run_finetune(studio, form=form, session=session, client=client)


@pytest.mark.slow
def test_a_persons_third_tab_is_refused_and_a_classmate_on_the_same_address_waits_in_line(tiny_studio) -> None:
    queue, people = tiny_studio.training_queue, tiny_studio.people
    blocker = queue.join(60, "someone else")  # keeps the runs below waiting
    person = new_person_id()
    tabs = [Session(person=person, people=people) for _ in range(3)]
    classmate = Session(people=people)
    waiting = []
    try:
        for tab in tabs[:2]:
            waiting.append(_finetune(tiny_studio, tab, PROXY))
            assert "number" in next(waiting[-1])["status"]
        with pytest.raises(gr.Error, match="limit per person is 2"):
            next(_finetune(tiny_studio, tabs[2], PROXY))
        waiting.append(_finetune(tiny_studio, classmate, PROXY))  # same address, another browser: a place in line
        assert "number 3" in next(waiting[-1])["status"]
        assert people.active(person) == 2 and people.active(classmate.person) == 1
    finally:
        for session in (*tabs, classmate):
            session.stop_requested.set()
        queue.leave(blocker)
    for updates in waiting:
        list(updates)  # each leaves the line at its next poll
    assert people.active(person) == 0 and people.active(classmate.person) == 0 and queue.counts() == (0, 0)


# --- 6. runs survive a reload ---------------------------------------------------------------------------------
def _session_with_a_run(people: People, tmp_path: Path, person: str | None = None) -> Session:
    session, _ = start_browser_session(people, person)
    session.workdir = tmp_path / f"session-{session.person[:6]}"
    session.workdir.mkdir()
    (session.workdir / "run1.zip").write_bytes(b"zip")
    session.run_count = 1
    session.runs[1] = FineTuneRecord(1, object(), "raw-bert", "avg_first_last", "4 steps", steps=4,
                                     model_zip=str(session.workdir / "run1.zip"))
    return session


def test_a_reload_brings_the_runs_back_and_a_tab_nobody_reopens_lets_them_go(tmp_path: Path) -> None:
    """Closing (or reloading) a tab parks its kept runs for its person: the browser's next page load takes them
    back, with their downloads, and the picker lists them; another person never sees them; unclaimed, they go after
    park_s with their folder."""
    people = People(park_s=30)
    before = _session_with_a_run(people, tmp_path)
    close_session(before)  # gradio's delete_callback: the tab was reloaded
    assert not before.runs and people.kept_count() == 1
    stranger, _ = start_browser_session(people, None)
    assert not stranger.runs
    after, stored = start_browser_session(people, before.person)  # the same browser's new page
    assert stored == before.person and [r.label for r in after.runs.values()] == ["run 1 · unsup · 4 steps"]
    assert after.run_count == 1 and Path(after.runs[1].model_zip).read_bytes() == b"zip"
    assert after.workdir == tmp_path / f"session-{before.person[:6]}"
    assert any("back" in notice for notice in after.take_notices())
    assert people.claim(before.person) is None  # claimed once

    api = Session(people=people)  # an API client's session (no page load): it cannot reload, its runs go at once
    api.workdir = tmp_path / "api"
    api.workdir.mkdir()
    api.runs[1] = FineTuneRecord(1, object(), "raw-bert", "avg_first_last", "4 steps", steps=4)
    close_session(api)
    assert not api.workdir and not (tmp_path / "api").exists() and people.claim(api.person) is None

    people = People(park_s=0.2)
    gone = _session_with_a_run(people, tmp_path)
    folder = gone.workdir
    close_session(gone)
    time.sleep(0.6)
    assert not folder.exists() and people.kept_count() == 0
    assert not start_browser_session(people, gone.person)[0].runs


def test_after_a_page_load_the_picker_lists_the_runs_a_reload_brought_back(tmp_path: Path) -> None:
    from app import page_loaded
    from ui.serving.config import StudioConfig
    from ui.serving.studio import Studio

    studio = Studio(StudioConfig(park_runs_s=30))
    before = _session_with_a_run(studio.people, tmp_path)
    close_session(before)
    after, _ = start_browser_session(studio.people, before.person)
    choices = [c[0] if isinstance(c, tuple) else c for c in page_loaded(studio, session=after)["picker"]["choices"]]
    assert "run 1 · unsup · 4 steps" in choices
    assert page_loaded(studio, session=Session()) == {}  # nothing came back: the picker stays as it is


def test_objects_kept_for_life_are_left_out_of_later_collections() -> None:
    """A full garbage collection holds the GIL while it runs: what the server keeps for its life (the page, the
    base model, the corpus index) is frozen once, so later collections look only at what visitors made."""
    import gc

    from ui.serving.memory import keep_for_life

    kept = [{"page": i} for i in range(1000)]
    try:
        keep_for_life()
        assert gc.get_freeze_count() >= len(kept)
        assert not any(obj is kept for gen in range(3) for obj in gc.get_objects(generation=gen))
    finally:
        gc.unfreeze()
