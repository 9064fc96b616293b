"""The server's edge: who a client is (their address), the cap on a request body before it is parsed, and the
files gradio keeps (its cache: uploads and copies of downloads).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import gradio as gr

logger = logging.getLogger(__name__)

UPLOAD_ROUTE = "/upload"  # gradio's own upload route: capped by max_file_size while it streams in


def client_address(request: gr.Request | None, trusted_proxy: bool) -> str:
    """The address a run counts against: the connection's peer, or behind a trusted reverse proxy the first
    address of its ``X-Forwarded-For`` (a client could write that header itself, so only when the operator
    says a proxy sets it)."""
    if request is None:
        return "local"
    if trusted_proxy:
        forwarded = (request.headers.get("x-forwarded-for") or "").split(",")[0].strip()
        if forwarded:
            return forwarded[:64]
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or "unknown"


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
        body = json.dumps({"error": text, "detail": text}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


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
