"""The server's edge: who a client is (their address), what proxy headers are believed, the cap on a request body
before it is parsed, each address's share of uploads, unknown events refused with a message, /call events nobody
reads cancelled, and the files gradio keeps (its cache: uploads, which expire soon, and copies of downloads).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import shutil
import time
from collections import deque
from collections.abc import Callable, Collection
from pathlib import Path

import gradio as gr

logger = logging.getLogger(__name__)

UPLOAD_ROUTE = "/upload"  # gradio's own upload route: capped by max_file_size while it streams in
ADDRESS_CHARS = 64  # longest address kept (an IPv6 address with a zone fits)


def client_address(request: gr.Request | None, trusted_proxy: int = 0) -> str:
    """The address a run counts against.

    Without a trusted proxy (``trusted_proxy`` 0, the default) it is the connection's peer and no proxy header is
    believed (see :func:`distrust_proxy_headers`: uvicorn would otherwise rewrite the peer from X-Forwarded-For).
    Behind ``trusted_proxy`` = N reverse proxies that each append the address they saw to X-Forwarded-For, it is
    the N-th entry from the right: the one the outermost trusted proxy wrote. Entries further left were written by
    the client (or by proxies nobody vouches for), so a forged prefix changes nothing. A header with fewer than N
    entries gives its left-most; no header, the peer (the proxy's own address).
    """
    if request is None:
        return "local"
    hops = max(0, int(trusted_proxy))  # True (the old flag) is one hop
    if hops:
        forwarded = forwarded_for(request)
        if forwarded:
            return forwarded[-min(hops, len(forwarded))]
    client = getattr(request, "client", None)
    return (getattr(client, "host", None) or "unknown")[:ADDRESS_CHARS]


def forwarded_for(request: gr.Request) -> list[str]:
    """The addresses of a request's X-Forwarded-For headers, left to right (several headers read in order), each
    without its port; empty entries dropped (only a client writes those, on the left)."""
    headers = getattr(request, "headers", None)
    if headers is None:
        return []
    getlist = getattr(headers, "getlist", None)  # starlette's Headers; a queued event's copy is a plain mapping
    values = getlist("x-forwarded-for") if callable(getlist) else [headers.get("x-forwarded-for") or ""]
    entries = [entry.strip() for value in values for entry in str(value).split(",")]
    return [_without_port(entry)[:ADDRESS_CHARS] for entry in entries if entry]


def _without_port(entry: str) -> str:
    """``1.2.3.4:5678`` -> ``1.2.3.4``; ``[::1]:80`` -> ``::1``; anything else unchanged (lower case)."""
    entry = entry.lower()
    if entry.startswith("[") and "]" in entry:
        return entry[1:entry.index("]")]
    if entry.count(":") == 1:
        return entry.split(":", 1)[0]
    return entry


def distrust_proxy_headers() -> None:
    """Make uvicorn believe no proxy header: :func:`client_address` is the one place X-Forwarded-For is read.

    Gradio's ``launch`` builds its ``uvicorn.Config`` without ``forwarded_allow_ips``, so uvicorn reads
    FORWARDED_ALLOW_IPS (default ``127.0.0.1,::1``) and, for a peer on loopback, replaces the connection's address
    with X-Forwarded-For's: any local client (or a proxy on this machine passing the header on) could then write
    its own address. An empty list trusts no peer. The scheme is unaffected: gradio reads X-Forwarded-Proto itself.
    Call before ``launch``.
    """
    if os.environ.get("FORWARDED_ALLOW_IPS"):
        logger.info("FORWARDED_ALLOW_IPS=%s ignored: proxies are trusted only with --trusted-proxy",
                    os.environ["FORWARDED_ALLOW_IPS"])
    os.environ["FORWARDED_ALLOW_IPS"] = ""


class BodySizeLimit:
    """ASGI middleware: a request body over ``max_bytes`` is refused (HTTP 413, a message) before the app
    parses it. Uploads are exempt: gradio refuses those over ``max_file_size`` as they stream in.

    The body (at most ``max_bytes``) is read here and handed on unchanged; later messages (a disconnect) pass
    straight through.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH")
                or scope.get("path", "").rstrip("/").endswith(UPLOAD_ROUTE)):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send, size)
                return
            if not message.get("more_body", False):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send, size: int) -> None:
        text = (f"Request: the body has {size:,} bytes or more; the limit is {self.max_bytes:,}. Send shorter text "
                "(files go through the upload, up to its own limit).")
        await _respond(send, 413, text)


# Gradio's routes that name an event by ``fn_index`` (a browser's queue, the old run/api routes).
EVENT_ROUTES = re.compile(r"/(queue/join|run/[^/]+|api/[^/]+)/?$")


class UnknownEventGuard:
    """ASGI middleware: a request naming an event this app does not have (``fn_index``) gets HTTP 404 and a
    message, instead of gradio's KeyError and a bare HTTP 500.

    ``known`` returns the app's event ids (``Blocks.fns``). Only the routes of :data:`EVENT_ROUTES` are read;
    their body is already capped by :class:`BodySizeLimit`, and handed on unchanged.
    """

    def __init__(self, app, known: Callable[[], Collection[int]]) -> None:
        self.app, self.known = app, known

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not EVENT_ROUTES.search(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        index = _event_index(body)
        if index is not None and index not in self.known():
            text = (f"Request: there is no event number {index} in this app. Call an event by its name "
                    "(its api_name; the app's page lists them under 'Use via API').")
            await _respond(send, 404, text)
            return

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _event_index(body: bytes) -> int | None:
    """The ``fn_index`` a request body names, read as gradio's validation reads it (an integer, a whole float, a
    numeric string); None when there is none or gradio will refuse it itself (HTTP 422)."""
    try:
        value = json.loads(body).get("fn_index")
    except (ValueError, AttributeError):  # not JSON, or not an object: gradio answers 422
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    return value if isinstance(value, int) else None


async def _respond(send, status: int, text: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps({"error": text, "detail": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


async def _respond_text(send, status: int, text: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """Plain text, as gradio answers a refused upload (its browser client shows "HTTP <status>: <text>")."""
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def _header(scope, name: bytes) -> bytes | None:
    return dict(scope.get("headers") or ()).get(name)


# --- uploads: each address's share, and a short life -------------------------------------------------------------
class UploadQuota:
    """ASGI middleware: uploads count against the address they come from, at most ``max_bytes`` in any
    ``window_s`` seconds; beyond it HTTP 429 with a message naming the limit (and Retry-After).

    Gradio's /upload comes before any event, so it carries no session and no person id (the browser keeps that
    in its localStorage; the upload sends no cookie of this app): the address (:func:`client_address`, with
    ``trusted_proxy`` hops; an IPv6 address's /64) is the only identity to count. An upload must say its length
    (Content-Length, as browsers and gradio_client do; HTTP 411 otherwise), which is what it is charged; uvicorn
    reads no byte past it. A refused upload (too big for ``max_file_size``, malformed: HTTP 4xx, nothing kept) is
    refunded. The counts live on the server's event loop, where every ASGI call runs, so they need no lock.
    """

    def __init__(self, app, max_bytes: int, window_s: float, trusted_proxy: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app, self.max_bytes, self.window_s = app, int(max_bytes), float(window_s)
        self.trusted_proxy, self.clock = trusted_proxy, clock
        self._sent: dict[str, deque[list[float]]] = {}  # address -> [arrival time, bytes] in the window, oldest first

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or scope.get("method") != "POST"
                or not scope.get("path", "").rstrip("/").endswith(UPLOAD_ROUTE)):
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request

        declared = _header(scope, b"content-length")
        if declared is None or not declared.isdigit():
            await _respond_text(send, 411, "Upload: the request must say its length (a Content-Length header), as "
                                           "browsers and gradio_client do.")
            return
        size, address = int(declared), _network(client_address(Request(scope), self.trusted_proxy))
        sent = self.sent_from(address)
        used = sum(bytes_ for _, bytes_ in sent)
        if used + size > self.max_bytes:
            wait_s = self._wait_s(sent, size)
            await _respond_text(send, 429, self._refusal(used, size, wait_s),
                                ((b"retry-after", str(math.ceil(wait_s)).encode()),) if wait_s is not None else ())
            return
        entry = [self.clock(), size]
        sent.append(entry)
        status = 0

        async def watched(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            if 400 <= status < 500:  # gradio refused it and kept nothing: it does not count
                with contextlib.suppress(ValueError):
                    sent.remove(entry)

    def sent_from(self, address: str) -> deque[list[float]]:
        """The uploads of ``address`` in the window (older ones forgotten; addresses with none dropped)."""
        start = self.clock() - self.window_s
        for other in list(self._sent):
            entries = self._sent[other]
            while entries and entries[0][0] <= start:
                entries.popleft()
            if not entries and other != address:
                del self._sent[other]
        return self._sent.setdefault(address, deque())

    def _wait_s(self, sent: deque[list[float]], size: int) -> float | None:
        """Seconds until enough of ``sent`` leaves the window for ``size`` more bytes (None: never)."""
        if size > self.max_bytes:
            return None
        left = sum(bytes_ for _, bytes_ in sent)
        for arrived, bytes_ in sent:
            left -= bytes_
            if left + size <= self.max_bytes:
                return max(1.0, arrived + self.window_s - self.clock())
        return 1.0

    def _refusal(self, used: int, size: int, wait_s: float | None) -> str:
        limit = f"{_megabytes(self.max_bytes)} per {_minutes(self.window_s)} from one network address"
        if wait_s is None:
            return f"Upload: this upload has {_megabytes(size)}; the limit is {limit}. Send a smaller file."
        return (f"Upload: {_megabytes(used)} came from your network address in the last {_minutes(self.window_s)} "
                f"(everyone on it together, e.g. a school), and this upload has {_megabytes(size)}; the limit is "
                f"{limit}. Try again in about {_minutes(wait_s)}.")


def _network(address: str) -> str:
    """What one uploader is: an IPv4 address, or an IPv6 address's /64 (one host or home gets a whole /64)."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return address
    if ip.ipv4_mapped is not None:  # an IPv4 client of a dual-stack server
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


def _megabytes(size: float) -> str:
    return f"{size / 1e6:,.1f} MB"


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} min"


def expire_uploads(files: set[str], ttl_s: float, now: float | None = None) -> int:
    """Delete the uploads in ``files`` (gradio's ``Blocks.upload_file_set``) that arrived over ``ttl_s`` seconds
    ago, with their folder once it is empty, and forget them; the bytes freed. Gradio ages its cache by ctime, and
    so does this."""
    now = time.time() if now is None else now
    freed = 0
    for name in set(files):  # a copy: the upload route adds to the set meanwhile
        path = Path(name)
        try:
            stat = path.lstat()
            if now - stat.st_ctime <= ttl_s:
                continue
            path.unlink()
            freed += stat.st_size
        except FileNotFoundError:
            pass
        files.discard(name)
        with contextlib.suppress(OSError):  # gradio keeps each upload in a folder named by its hash
            path.parent.rmdir()
    return freed


def upload_sweeper(ttl_s: float, every_s: float | None = None):
    """A lifespan for gradio's app (``app_kwargs["lifespan"]``; gradio runs it beside its own): every ``every_s``
    seconds (default a tenth of ``ttl_s``, 1-60 s), uploads older than ``ttl_s`` are deleted
    (:func:`expire_uploads`), instead of living as long as gradio's ``delete_cache`` age (an hour here)."""
    every_s = every_s or min(60.0, max(1.0, ttl_s / 10))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async def sweep() -> None:
            while True:
                await asyncio.sleep(every_s)
                try:
                    freed = await asyncio.to_thread(expire_uploads, app.get_blocks().upload_file_set, ttl_s)
                except Exception:  # noqa: BLE001 - the next sweep tries again
                    logger.exception("Could not delete expired uploads")
                    continue
                if freed:
                    logger.info("Deleted %s of uploads older than %.0f s", _megabytes(freed), ttl_s)

        task = asyncio.create_task(sweep())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan


# --- /call events nobody reads -----------------------------------------------------------------------------------
CALL_POST = re.compile(r"/call/(?:v2/)?[^/]+/?$")  # POST: an event is queued; the answer is its event_id
CALL_READ = re.compile(r"/call/(?:v2/)?[^/]+/([^/]+)/?$")  # GET: the event's results, as a stream
FORGET_CANCELLED = 1_000  # cancelled event ids remembered, to answer a late reader with a message
STALL_GRACE_S = 1.0  # loop time a due cancel waits, so a reader's request that came in while the loop was busy
# (its bytes waiting in the socket, not yet parsed) is seen before the event is cancelled


class UnreadCallGuard:
    """ASGI middleware: a ``/call`` event whose results nobody opens within ``read_within_s`` seconds of its POST
    is cancelled, as gradio cancels the event of a browser tab that closes: it leaves gradio's queue, or, running,
    its generator is closed at its next update, so a run gives its place or training slot to the next in line
    (ui.serving.runs ends it there). A call that sent no session_hash has a session of its own, which ends too, as a
    closed tab's does: the run keeps nothing. Its undelivered messages are dropped. A late GET gets HTTP 410 and a
    message.

    Why here: gradio runs an event whether or not anyone reads it, pulling a generator's updates as fast as they
    come and keeping them for the reader that may come; only a reader that opened the stream and then left is
    noticed (its disconnect cancels the event). So a run sees nothing of a client that posts and never reads, and
    kept its slot for its whole time budget. A stream opened, even late, within the time is read; gradio itself
    notices when it closes. Timers and ids live on the server's event loop.
    """

    def __init__(self, app, read_within_s: float) -> None:
        self.app, self.read_within_s = app, float(read_within_s)
        self._unread: dict[str, asyncio.TimerHandle] = {}
        self._due: set[str] = set()  # timed out, cancelled after STALL_GRACE_S unless a reader comes first
        self._cancelled: deque[str] = deque(maxlen=FORGET_CANCELLED)
        self._tasks: set[asyncio.Task] = set()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope.get("method") == "GET":
            read = CALL_READ.search(scope.get("path", ""))
            if read is not None:
                event_id = read.group(1)
                timer = self._unread.pop(event_id, None)
                if timer is not None:
                    timer.cancel()
                elif event_id in self._due:
                    self._due.discard(event_id)  # read after all: its cancel stands down
                elif event_id in self._cancelled:
                    await _respond(send, 410, self._late(event_id))
                    return
        elif scope["type"] == "http" and scope.get("method") == "POST" and CALL_POST.search(scope.get("path", "")):
            send = self._watching(scope.get("app"), send)
        await self.app(scope, receive, send)

    def _watching(self, app, send):
        """``send``, noting the event id of a successful answer (before the client can have it)."""
        status, body = 0, b""

        async def watched(message) -> None:
            nonlocal status, body
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 200 and len(body) < 4096:
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    event_id = _event_id(body)
                    if event_id is not None and app is not None:
                        self._unread[event_id] = asyncio.get_running_loop().call_later(
                            self.read_within_s, self._expired, app, event_id)
            await send(message)

        return watched

    def _expired(self, app, event_id: str) -> None:
        if self._unread.pop(event_id, None) is None:
            return
        self._due.add(event_id)
        task = asyncio.ensure_future(self._cancel_unless_read(app, event_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cancel_unless_read(self, app, event_id: str) -> None:
        """Cancel ``event_id`` unless its reader arrives within STALL_GRACE_S of loop time. A timer runs before
        requests that arrived while the loop was held up (a slow handler, a starved machine): those are parsed
        during the wait."""
        await asyncio.sleep(STALL_GRACE_S)
        if event_id not in self._due:
            return
        self._due.discard(event_id)
        self._cancelled.append(event_id)  # from now on a reader is told
        await self._cancel(app, event_id)

    async def _cancel(self, app, event_id: str) -> None:
        queue = app.get_blocks()._queue
        event = queue.event_ids_to_events.get(event_id)
        if event is not None:
            logger.info("Cancelled /call event %s (%s): nobody opened its results within %.0f s", event_id,
                        getattr(event.fn, "api_name", "?"), self.read_within_s)
        if event_id in app.state_holder:  # the call's own session (it sent no session_hash): it ends, as a closed
            # tab's does (ui.serving.session.close_session): a run stops at its next step and keeps nothing
            await asyncio.to_thread(app.state_holder.delete_state, event_id)
        await queue.clean_events(event_id=event_id)  # out of the queue; a running one stops at its next update
        if event is not None:
            event.alive = False  # also one between the queue and its worker: it sends nothing more
        if event_id in queue.pending_messages_per_session:  # no session of its own: its id keys its messages
            async with queue.pending_message_lock:
                queue.pending_messages_per_session.pop(event_id, None)
                queue.pending_event_ids_session.pop(event_id, None)

    def _late(self, event_id: str) -> str:
        return (f"Call: event {event_id} was cancelled: nobody opened its results within "
                f"{self.read_within_s:.0f} s of the POST (a run would otherwise hold its place for nobody). Open "
                "GET /call/<api_name>/<event_id> right after the POST, and keep reading until it completes.")


def _event_id(body: bytes) -> str | None:
    try:
        value = json.loads(body).get("event_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def remove_cached_copy(path: str | Path, cache_dir: str | Path | None = None) -> None:
    """Remove gradio's cached copy of ``path`` (a download it served), if it made one; then ``path`` itself."""
    from gradio.processing_utils import hash_file
    from gradio.utils import get_upload_folder

    path = Path(path)
    if not path.is_file():
        return
    cache = Path(cache_dir or get_upload_folder())
    try:
        copy = cache / hash_file(path)
    except OSError:
        copy = None
    if copy is not None and copy.is_dir() and copy.resolve() != path.parent.resolve():
        shutil.rmtree(copy, ignore_errors=True)
        logger.info("Removed gradio's copy of %s", path.name)
    path.unlink(missing_ok=True)


def folder_bytes(folder: Path | None) -> int:
    """Bytes of the files under ``folder`` (0 if it does not exist)."""
    if folder is None or not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
