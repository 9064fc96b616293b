"""Events nobody reads: gradio runs an event whether or not anyone reads its results, so a posted run that is never
read would keep its place or training slot for its whole budget; this cancels it instead. Both of gradio's ways
in are watched: ``/call`` (read at ``GET /call/<api>/<event_id>``) and the queue protocol a browser uses
(``POST /queue/join``, read at ``GET /queue/data?session_hash=...``, one stream for all of a session's events).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import defaultdict, deque
from urllib.parse import parse_qs

from ui.serving.server import _respond

logger = logging.getLogger(__name__)


CALL_POST = re.compile(r"/call/(?:v2/)?[^/]+/?$")  # POST: an event is queued; the answer is its event_id
CALL_READ = re.compile(r"/call/(?:v2/)?[^/]+/([^/]+)/?$")  # GET: the event's results, as a stream
QUEUE_JOIN = re.compile(r"/queue/join/?$")  # POST: an event of a session is queued; the answer is its event_id
QUEUE_READ = re.compile(r"/queue/data/?$")  # GET ?session_hash=: the stream of every event of that session
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
        self._joined: dict[str, set[str]] = defaultdict(set)  # session -> its joined events no stream reads yet
        self._reading: dict[str, int] = defaultdict(int)  # session -> its open /queue/data streams
        self._cancelled: deque[str] = deque(maxlen=FORGET_CANCELLED)
        self._tasks: set[asyncio.Task] = set()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope.get("method") == "GET" and QUEUE_READ.search(scope.get("path", "")):
            await self._reading_session(scope, receive, send)
            return
        if scope["type"] == "http" and scope.get("method") == "POST" and QUEUE_JOIN.search(scope.get("path", "")):
            send = self._watching(scope.get("app"), send, joined=True)
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

    async def _reading_session(self, scope, receive, send) -> None:
        """A session's /queue/data stream: while it is open, the session's events are read (a join then needs no
        timer); its opening stands down the timers of the events it will carry."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        session = (query.get("session_hash") or [""])[0]
        if session:
            self._reading[session] += 1
            for event_id in self._joined.pop(session, set()):
                timer = self._unread.pop(event_id, None)
                if timer is not None:
                    timer.cancel()
                self._due.discard(event_id)
        try:
            await self.app(scope, receive, send)
        finally:
            if session:
                self._reading[session] -= 1
                if self._reading[session] <= 0:
                    del self._reading[session]

    def _watching(self, app, send, joined: bool = False):
        """``send``, noting the event id of a successful answer (before the client can have it); for a queue
        join, only when no stream of its session is open."""
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
                        session = _session_of(app, event_id) if joined else None
                        if joined and (session is None or self._reading.get(session)):
                            pass  # its session's stream is open: read (gradio notices when it closes)
                        else:
                            if session is not None:
                                self._joined[session].add(event_id)
                            self._unread[event_id] = asyncio.get_running_loop().call_later(
                                self.read_within_s, self._expired, app, event_id)
            await send(message)

        return watched

    def _expired(self, app, event_id: str) -> None:
        if self._unread.pop(event_id, None) is None:
            return
        for session, events in list(self._joined.items()):
            events.discard(event_id)
            if not events:
                del self._joined[session]
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


def _session_of(app, event_id: str) -> str | None:
    """The session a joined event belongs to, from gradio's queue (None once it has left it)."""
    event = app.get_blocks()._queue.event_ids_to_events.get(event_id)
    return None if event is None else event.session_hash


def _event_id(body: bytes) -> str | None:
    try:
        value = json.loads(body).get("event_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None
