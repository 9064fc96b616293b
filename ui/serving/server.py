"""The server's edge: who a client is (their address), what proxy headers are believed, the cap on a request body
before it is parsed, unknown events refused with a message, and the files gradio keeps (copies of downloads).
Uploads' quota and life: :mod:`ui.serving.uploads`; /call events nobody reads: :mod:`ui.serving.calls`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
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
