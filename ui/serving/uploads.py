"""Uploads (gradio's /upload route, before any session or person exists) count against the network address they
come from, and are deleted soon after they arrive: a class's training files fit, a script filling the disk does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ui.serving.server import UPLOAD_ROUTE, _header, _respond_text, client_address

logger = logging.getLogger(__name__)


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
