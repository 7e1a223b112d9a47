"""The replay's HTTP client: JSON ``POST``s to one server over keep-alive HTTP/1.1 connections.

A replay is one round trip after another (events in, then the slice's requests), so the client's
own cost per request is on the replay's critical path. aiohttp, the client before this one, took
260-350 µs of CPU and 450-680 µs of wall time a request against the server here; this takes
80 µs and 260 µs (docs/decisions.md, 26). It speaks only what the replay needs: a ``POST`` with
a body, answered with a ``Content-Length`` (every answer of Loopline's API has one; an answer
without one is refused with a clear error, not guessed at), ``Connection: close`` honoured by
opening another connection. A test holds its answers to aiohttp's on a real server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit


class HttpError(Exception):
    """The server could not be reached, or its answer could not be read."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    """Lower-case names; a repeated header keeps its last value."""
    body: bytes


class _Connection(asyncio.Protocol):
    """One connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Answer] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)  # uvloop's are not subclasses

    def send(self, request: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            answer = self._answer()
        except HttpError as error:
            waiter.set_exception(error)
            self.close()
            return
        if answer is not None:
            self._waiter = None
            waiter.set_result(answer)

    def _answer(self) -> Answer | None:
        """The answer in the buffer once it is whole (None until then)."""
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            raise HttpError(f"not an HTTP/1.1 answer: {lines[0][:80]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length")
        if length is None or not length.isdigit():
            raise HttpError(f"an answer without Content-Length ({rest[:40]!r}) is not read")
        start, stop = end + 4, end + 4 + int(length)
        if len(self._buffer) < stop:
            return None
        body = bytes(self._buffer[start:stop])
        del self._buffer[:stop]
        return Answer(int(rest[:3]), headers, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            reason = f": {exc}" if exc else ""
            self._waiter.set_exception(HttpError(f"the server closed the connection{reason}"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class JsonClient:
    """``post`` JSON bodies to ``url``'s server, at most ``connections`` at once."""

    def __init__(
        self, url: str, connections: int, headers: Mapping[str, str], timeout_s: float
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise HttpError(f"the replay speaks plain http to a host, not {url!r}")
        self._host, self._port = parts.hostname, parts.port or 80
        self._prefix = parts.path.rstrip("/")
        fixed = {"host": parts.netloc, "content-type": "application/json", **headers}
        self._head = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._timeout_s = timeout_s
        self._gate = asyncio.Semaphore(connections)
        self._idle: list[_Connection] = []

    async def post(self, path: str, body: bytes) -> Answer:
        async with self._gate:
            connection = await self._connection()
            request = (
                f"POST {self._prefix}{path} HTTP/1.1\r\n{self._head}"
                f"content-length: {len(body)}\r\n\r\n"
            ).encode("latin-1")
            try:
                answer = await asyncio.wait_for(connection.send(request + body), self._timeout_s)
            except TimeoutError:
                connection.close()
                raise HttpError(f"no answer to POST {path} within {self._timeout_s:g} s") from None
            except HttpError:
                connection.close()
                raise
            if answer.headers.get("connection", "").lower() == "close":
                connection.close()
            else:
                self._idle.append(connection)
            return answer

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(_Connection, self._host, self._port)
        except OSError as error:
            raise HttpError(f"cannot connect to {self._host}:{self._port}: {error}") from None
        return connection

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()
