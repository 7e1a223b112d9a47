"""The worker's HTTP/1.1 protocol: uvicorn's httptools protocol with three additions.

- **A header timeout** (``header_timeout_s``): uvicorn closes idle kept-alive connections after
  ``timeout_keep_alive`` but waits for ever for a request's headers. A connection whose request
  headers are not complete that long after it opened, or after the request's first byte, is
  closed; so is one whose refused request's body stops arriving.
- **Shedding** (``shedding``): once a request's headers are in, a ``Refuser`` may answer it
  with a refusal; the protocol then discards its body and writes the answer when the body has
  arrived, and no ASGI request cycle is created for it. A connection with a response still in
  progress (a pipelined request) is never shed, so answers stay in order. While the event loop
  is saturated, a connection just refused is left unread for ``Refuser.unread_s``: its next
  request waits in the kernel rather than costing the worker another refusal.
- **Malformed requests get JSON**: httptools' parse errors are answered ``400`` with
  ``{"error": ...}`` like every other error, not uvicorn's plain text.

The worker process imports this module (through ``uvicorn_worker``) before BentoML configures
logging, whose ``dictConfig`` disables every logger that exists by then: importing the worker's
modules here would silence their logs (``tests/reliability/test_tampering.py`` reads one).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Protocol

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from loopline.errors import bounded

if TYPE_CHECKING:  # at run time this module must import nothing of the worker's (see below)
    from loopline.serving.shedding import Refusal

RECEIVED = "loopline.received"
"""Scope extension: ``time.perf_counter()`` when the request's headers were in."""


class Refuser(Protocol):
    def refusal(
        self, method: bytes, url: bytes, headers: list[tuple[bytes, bytes]]
    ) -> Refusal | None: ...

    def answered(self, refusal: Refusal, seconds: float) -> None: ...

    def unread_s(self) -> float: ...


class PredictorProtocol(HttpToolsProtocol):
    header_timeout_s = 10.0
    refuser: Refuser | None = None
    """Set by the worker once it serves (``DrainingServer.shed_with``)."""
    _header_timer: asyncio.TimerHandle | None = None
    _refusing: Refusal | None = None
    _refused_at = 0.0
    _in_headers = False
    _headers_for: tuple[list[tuple[bytes, bytes]], bytes] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Arms the header (or refused body) timer only when a read leaves a request's headers,
        or a refused request's body, incomplete: a whole request in one read, the usual case,
        costs no timer."""
        super().data_received(data)
        unfinished = self._in_headers or self._refusing is not None
        if unfinished and self._header_timer is None and not self.transport.is_closing():
            self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._disarm()
        received = time.perf_counter()
        self.scope["extensions"] = {RECEIVED: received}  # type: ignore[dict-item]
        refuser = self.refuser
        idle = self.cycle is None or self.cycle.response_complete
        if refuser is not None and idle and not self.expect_100_continue:
            self._refusing = refuser.refusal(self.parser.get_method(), self.url, self.headers)
            if self._refusing is not None:
                self._refused_at = received
                return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refusing is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        refusal = self._refusing
        if refusal is None:
            super().on_message_complete()
            return
        self._refusing = None
        self._disarm()
        keep_alive = self.parser.should_keep_alive() and not refusal.close
        close = b"" if keep_alive or refusal.close else b"connection: close\r\n"
        head = STATUS_LINE[refusal.status] + self._server_headers() + refusal.head + close
        self.transport.write(head + b"\r\n" + refusal.body)
        self.server_state.total_requests += 1
        unread_s = 0.0
        if self.refuser is not None:
            self.refuser.answered(refusal, time.perf_counter() - self._refused_at)
            unread_s = self.refuser.unread_s()
        if not keep_alive:
            self.transport.close()
        elif not self.transport.is_closing():
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
            if unread_s:
                self.flow.pause_reading()
                self.loop.call_later(unread_s, self._resume_reading)

    def _resume_reading(self) -> None:
        if not self.transport.is_closing():
            self.flow.resume_reading()

    def send_400_response(self, msg: str) -> None:
        body = orjson.dumps({"error": bounded(f"malformed HTTP request: {msg}")})
        head = b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n"
        self.transport.write(
            STATUS_LINE[400] + self._server_headers() + head % len(body) + b"\r\n" + body
        )
        self.transport.close()

    def _server_headers(self) -> bytes:
        """uvicorn's own headers (``date``, ``server``), as it sends them on every answer
        (uvicorn replaces the list when the date changes, once a second)."""
        headers = self.server_state.default_headers
        cached = PredictorProtocol._headers_for
        if cached is None or cached[0] is not headers:
            encoded = b"".join(n + b": " + v + b"\r\n" for n, v in headers)
            cached = PredictorProtocol._headers_for = (headers, encoded)
        return cached[1]

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()
