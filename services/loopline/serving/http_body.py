"""An inference request's body, read for the app (``http``) in the order its errors are due.

``Content-Type`` first (415 unless JSON, or binary with the binary extension's header on
``infer``), then the size from ``Content-Length`` before reading and again while reading (413),
the whole body within ``timeout_s`` (408: a slow client holds no admission slot meanwhile), and
only then a first admission check, so a request is counted once its body is in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from loopline.errors import (
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    clip,
)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
JSON = b"application/json"


class BodyReader:
    def __init__(self, limit: int, timeout_s: float, check_admission: Callable[[], None]) -> None:
        self._limit = limit
        self._timeout_s = timeout_s
        self._check_admission = check_admission

    def check_media(self, scope: Scope, binary: bool = False) -> None:
        """415 for a body that says it is not JSON; no ``Content-Type`` is taken as JSON (some
        clients send none), and binary with the binary extension's header on ``infer``."""
        content_type = header(scope, b"content-type")
        if content_type is None:
            return
        media = content_type.split(b";", 1)[0].strip().lower()
        if media == JSON or media.endswith(b"+json"):
            return
        binary_header = header(scope, b"inference-header-content-length")
        if binary and media == b"application/octet-stream" and binary_header is not None:
            return
        raise UnsupportedMediaType(
            f"Content-Type {clip(content_type.decode('latin-1'))}: expected application/json"
        )

    async def read(self, scope: Scope, receive: Receive, admit: bool = True) -> bytes:
        """The whole body within ``timeout_s`` (408), then a first admission check (``admit``:
        the model's; events do not wait for it)."""
        if scope["method"] != "POST":
            raise NotFound(f"{scope['method']} {scope['path']}: use POST")
        length = header(scope, b"content-length")
        if length is not None and int(length) > self._limit:
            raise PayloadTooLarge(
                f"body of {int(length)} bytes is over the {self._limit}-byte limit"
            )
        try:
            async with asyncio.timeout(self._timeout_s):
                body = await self._chunks(receive)
        except TimeoutError:
            raise RequestTimeout(f"the body did not arrive within {self._timeout_s:g} s") from None
        if admit:
            self._check_admission()
        return body

    async def _chunks(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                raise PayloadTooLarge(f"body is over the {self._limit}-byte limit")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


def header(scope: Scope, name: bytes) -> bytes | None:
    """A request header's value (names arrive lower-cased); a scan of the few there are."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None
