"""Load shedding at the protocol: refusals that cost a fraction of a request.

Under overload most of what a worker does is refuse. Refused through the ASGI app, a request
costs about 190 µs of the worker's one CPU here (uvicorn's request cycle, a task, the app's
routing, the body's messages; a prediction is ~340 µs), so at 1.5x capacity refusing alone
keeps the event loop busy enough that refusals, and the requests it admits, wait tens of
milliseconds to be read. ``Shedder.refusal`` decides from the request line and headers alone,
when they are complete (``http_protocol``): an inference ``POST`` that admission would refuse
now (``Runtime.check_admission``: 429 queue full in rows or in time, 503 not ready or the log
queue full) is answered by the protocol with the same status, ``Retry-After`` and JSON body as
the app would give, and its body is discarded unread by the app. Measured in
``bench/overload.py``; see docs/decisions.md.

Only requests that would certainly be refused are answered here: an unknown model, a missing or
wrong bearer token, anything but ``POST`` on an inference route go on to the app and get their
own 404, 401 or 405. A request's own content is not looked at, so under overload a malformed
request may be refused with 429 before it would have got its 400.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import NamedTuple
from urllib.parse import unquote

import orjson

from loopline.errors import RequestError, Unauthorized, bounded
from loopline.serving.endpoints import Endpoints
from loopline.serving.runtime import Runtime

_INFER = re.compile(rb"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
_NATIVE = {b"/predict": "predict", b"/predict_batch": "predict_batch"}
MIN_UNREAD_S, MAX_UNREAD_S = 0.005, 0.1


class Refusal(NamedTuple):
    status: int
    endpoint: str
    head: bytes
    """The response's headers but the server's own (``date``, ``server``), each ``\\r\\n``-ended."""
    body: bytes
    close: bool
    """Close the connection after it (the worker is draining)."""


class LoopLag:
    """How late the event loop runs a timer, smoothed: above ``saturated_ms`` it has more
    ready work than it gets through, so whatever it reads now waits behind that.

    A heartbeat every ``interval_s`` measures its own lateness; ``lag_s`` is an exponentially
    weighted mean over roughly the last ``window_s``.
    """

    def __init__(self, saturated_ms: float, interval_s: float = 0.005, window_s: float = 0.05):
        self.saturated_s = saturated_ms / 1000
        self.lag_s = 0.0
        self._interval_s = interval_s
        self._weight = interval_s / window_s
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    @property
    def saturated(self) -> bool:
        return self.lag_s > self.saturated_s

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def _schedule(self) -> None:
        self._due = time.monotonic() + self._interval_s
        self._handle = self._loop.call_at(self._loop.time() + self._interval_s, self._tick)

    def _tick(self) -> None:
        late = max(0.0, time.monotonic() - self._due)
        self.lag_s += self._weight * (late - self.lag_s)
        self._schedule()


class Shedder:
    def __init__(self, runtime: Runtime, endpoints: Endpoints, lag: LoopLag) -> None:
        self._runtime = runtime
        self._token = endpoints.token
        self._version = runtime.served.version
        self.lag = lag

    def refusal(
        self, method: bytes, url: bytes, headers: list[tuple[bytes, bytes]]
    ) -> Refusal | None:
        """The answer to a request that admission refuses now, or None to serve it as usual."""
        if method != b"POST":
            return None
        endpoint = self._endpoint(url.partition(b"?")[0])
        if endpoint is None:
            return None
        try:
            self._token.check(next((v for k, v in headers if k == b"authorization"), None))
        except Unauthorized:
            return None
        try:
            self._runtime.check_admission()
        except RequestError as error:
            body = orjson.dumps({"error": bounded(str(error))})
            head = b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body)
            head += b"".join(name + b": " + value + b"\r\n" for name, value in error.headers)
            close = self._runtime.draining
            if close:
                head += b"connection: close\r\n"
            return Refusal(error.status, endpoint, head, body, close)
        return None

    def unread_s(self) -> float:
        """How long a connection just refused should go unread (0: not at all). While the loop
        is saturated, reading it again soon would only buy another refusal that waits behind
        the backlog: its next request waits in the kernel instead (back-pressure), for about
        twice the loop's lag."""
        if not self.lag.saturated:
            return 0.0
        return min(MAX_UNREAD_S, max(MIN_UNREAD_S, 2 * self.lag.lag_s))

    def answered(self, refusal: Refusal, seconds: float) -> None:
        """Count a refusal as the app counts its answers."""
        self._runtime.metrics.observe_request(
            refusal.endpoint, self._version, refusal.status, seconds
        )

    def _endpoint(self, path: bytes) -> str | None:
        native = _NATIVE.get(path)
        if native is not None:
            return native
        match = _INFER.fullmatch(path)
        if match is None:
            return None
        name, version = match.groups()
        try:
            self._runtime.check_model(
                unquote(name.decode("latin-1")),
                None if version is None else unquote(version.decode("latin-1")),
            )
        except RequestError:
            return None
        return "v2_infer"
