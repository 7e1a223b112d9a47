"""A small asyncio Redis client for the serving hot path: one connection, pipelined commands.

The predictor reads a batch's features with one pipeline of HMGETs. Reading it with a blocking
client stalls the worker's event loop for the whole round trip, during which it can neither
parse new requests nor run the previous batch's model (docs/decisions.md, §4).
``RedisPipeline.call`` writes the commands at once and returns a future, so the loop goes on;
replies are parsed by hiredis as they arrive and handed out in order, so several batches may be
in flight on the one connection. redis-py's asyncio client carries features (pools,
retries, pub/sub) the hot path does not use.

A failure (refused, reset, timeout, error reply) fails every call waiting on the connection with
``StoreUnavailable`` and closes it; the next call connects afresh.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any

import hiredis
from redis.connection import SSLConnection, parse_url

Command = tuple[str | bytes, ...]


class StoreUnavailable(Exception):
    """The online store could not be read (connection refused, timeout, error reply)."""


class _Call:
    __slots__ = ("expected", "future", "replies", "timer")

    def __init__(self, future: asyncio.Future[list[Any]], expected: int) -> None:
        self.future = future
        self.expected = expected
        self.replies: list[Any] = []
        self.timer: asyncio.TimerHandle | None = None


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self._parser = hiredis.Reader()
        self._calls: deque[_Call] = deque()
        self._transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses

    @property
    def open(self) -> bool:
        return self._transport is not None and not bool(self._transport.is_closing())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop may call this after ``create_connection`` has returned: ``_connect`` sets it too.
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed(data)
            while self._calls:
                reply = self._parser.gets()
                if reply is False:
                    return
                call = self._calls[0]
                call.replies.append(reply)
                if len(call.replies) == call.expected:
                    self._calls.popleft()
                    self._finish(call)
        except hiredis.ProtocolError as error:
            self.abort(f"protocol error: {error}")

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "connection closed"
        while self._calls:
            call = self._calls.popleft()
            self._fail(call, reason)

    def call(self, payload: bytes, expected: int, timeout: float) -> asyncio.Future[list[Any]]:
        loop = asyncio.get_running_loop()
        call = _Call(loop.create_future(), expected)
        call.timer = loop.call_later(timeout, self.abort, f"no reply in {timeout * 1000:.0f} ms")
        self._calls.append(call)
        self._transport.write(payload)
        return call.future

    def abort(self, reason: str) -> None:
        """Fail every waiting call and drop the connection (its replies would be out of step)."""
        while self._calls:
            self._fail(self._calls.popleft(), reason)
        if self._transport is not None:
            self._transport.abort()

    def _finish(self, call: _Call) -> None:
        if call.timer is not None:
            call.timer.cancel()
        errors = [reply for reply in call.replies if isinstance(reply, hiredis.ReplyError)]
        if call.future.done():
            return
        if errors:
            call.future.set_exception(StoreUnavailable(f"Redis replied {errors[0]}"))
        else:
            call.future.set_result(call.replies)

    @staticmethod
    def _fail(call: _Call, reason: str) -> None:
        if call.timer is not None:
            call.timer.cancel()
        if not call.future.done():
            call.future.set_exception(StoreUnavailable(reason))


class RedisPipeline:
    """One connection to the Redis at ``url`` (``redis://``, ``rediss://`` or ``unix://``, with
    username, password and database as redis-py reads them), used from one event loop."""

    def __init__(self, url: str, timeout: float) -> None:
        self._options = parse_url(url)
        self._timeout = timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None

    def call(self, commands: list[Command]) -> asyncio.Future[list[Any]]:
        """Send ``commands`` now; the future gives their replies, in order."""
        payload = _pack(commands)
        connection = self._connection
        if connection is not None and connection.open:
            return connection.call(payload, len(commands), self._timeout)
        return asyncio.ensure_future(self._connect_then_call(payload, len(commands)))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.abort("client closed")

    async def _connect_then_call(self, payload: bytes, expected: int) -> list[Any]:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            connection = await connecting
        finally:
            if self._connecting is connecting:  # failed or done: the next call starts afresh
                self._connecting = None
        return await connection.call(payload, expected, self._timeout)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        options = self._options
        try:
            async with asyncio.timeout(self._timeout):
                if "path" in options:
                    transport, connection = await loop.create_unix_connection(
                        _Connection, options["path"]
                    )
                else:
                    secure = options.get("connection_class") is SSLConnection
                    transport, connection = await loop.create_connection(
                        _Connection,
                        options.get("host", "localhost"),
                        options.get("port", 6379),
                        ssl=ssl.create_default_context() if secure else None,
                    )
        except (OSError, TimeoutError) as error:
            raise StoreUnavailable(f"cannot connect: {error!r}") from error
        connection.connection_made(transport)
        setup: list[Command] = []
        if options.get("password"):
            credentials = [options.get("username") or "default", options["password"]]
            setup.append(("AUTH", *credentials))
        if options.get("db"):
            setup.append(("SELECT", str(options["db"])))
        if setup:
            await connection.call(_pack(setup), len(setup), self._timeout)
        self._connection = connection
        return connection


def _pack(commands: list[Command]) -> bytes:
    # hiredis's stub types the argument as a 1-tuple; it takes a command of any length.
    return b"".join(hiredis.pack_command(command) for command in commands)  # type: ignore[arg-type]
