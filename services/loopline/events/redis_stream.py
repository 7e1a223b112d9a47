"""``EventStream`` on Redis Streams: consumer groups, at-least-once delivery, atomic commits.

Keys, under ``prefix`` (``loopline:events``; docs/events.md):

=========================  ===================================================================
``<prefix>:in``            the input stream; one field ``event`` (group ``repartition``)
``<prefix>:shard:<i>``     shard ``i``: fields ``event`` and ``source`` (group ``ingest``)
``<prefix>:dead``          malformed input: ``source``, ``field``, ``error``, ``entry``
``<prefix>:state:<i>``     shard ``i``'s checkpoint
``<prefix>:seen:<i>``      its applied event ids (sorted set, scored by event time)
``<prefix>:offline:<i>``   its committed rows not yet in a parquet file (list), and
``<prefix>:offline-n:<i>`` the number of its next file
=========================  ===================================================================

Every multi-key step is one ``MULTI``/``EXEC`` transaction, or one script (``route``, which
writes an entry per event: one command instead of a thousand). A consumed entry is acknowledged and
deleted in the transaction that records its effect, so the streams hold only work not yet done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis

from loopline.events.record import Event, encode
from loopline.events.stream import (
    DEAD_LETTER_BYTES,
    Backlog,
    Commit,
    DeadLetter,
    Entry,
    Routed,
    StreamUnavailable,
    dead_letter_stream,
    input_stream,
    shard_stream,
)

REPARTITION_GROUP = "repartition"
SHARD_GROUP = "ingest"
MAX_BLOCK_MS = 1000
DEAD_LETTER_MAX = 100_000
"""Dead letters kept (approximately): the oldest are trimmed past this."""
T = TypeVar("T")
ROUTE = """
local group, keep, at = ARGV[1], ARGV[2], 4
for _ = 1, tonumber(ARGV[3]) do
  local stream = KEYS[3 + tonumber(ARGV[at])]
  redis.call('XADD', stream, '*', 'event', ARGV[at + 1], 'source', ARGV[at + 2])
  at = at + 3
end
local dead = tonumber(ARGV[at])
at = at + 1
for _ = 1, dead do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', keep, '*', 'source', ARGV[at],
             'field', ARGV[at + 1], 'error', ARGV[at + 2], 'entry', ARGV[at + 3])
  at = at + 4
end
while at <= #ARGV do
  local last = math.min(at + 999, #ARGV)
  redis.call('XACK', KEYS[1], group, unpack(ARGV, at, last))
  redis.call('XDEL', KEYS[1], unpack(ARGV, at, last))
  at = last + 1
end
"""
"""``route`` in one script: one round trip and one atomic step, where a transaction would
cost an ``XADD`` command per event. KEYS: the input, the dead letters, shard 0, 1, ...; ARGV:
the group, the dead letters kept, the number routed, then (shard, event, source) each, the
number of dead letters, then (source, field, error, entry) each, then the ids to acknowledge
(in slices: Lua unpacks a few thousand values at most)."""


class RedisEventStream:
    def __init__(
        self, url: str, prefix: str, shards: int, timeout_s: float, block_ms: int = MAX_BLOCK_MS
    ) -> None:
        """``block_ms``: the longest a read waits for new entries (0 for a producer, which
        never reads: its calls then time out after ``timeout_s``)."""
        self.shards = shards
        self._block_ms = block_ms
        self._prefix = prefix
        # A blocking read waits up to ``block_ms``: the socket timeout outlasts it.
        self._client: Any = redis.Redis.from_url(
            url, socket_timeout=timeout_s + block_ms / 1000, socket_connect_timeout=timeout_s
        )
        self._input = input_stream(prefix)
        self._route = self._client.register_script(ROUTE)
        self._groups: set[str] = set()
        self._recovered: set[str] = set()
        """Streams whose own pending entries have been read again since this process began."""

    def _call(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except (redis.RedisError, OSError) as error:
            raise StreamUnavailable(f"Redis: {error}") from None

    def publish(self, events: Sequence[Event]) -> None:
        def write() -> None:
            with self._client.pipeline(transaction=True) as pipe:
                for event in events:
                    pipe.xadd(self._input, {"event": encode(event)})
                pipe.execute()

        self._call(write)

    def _group(self, stream: str, group: str) -> None:
        if stream in self._groups:
            return
        try:
            self._client.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._groups.add(stream)

    def _read(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int
    ) -> list[Entry]:
        def read() -> list[Entry]:
            self._group(stream, group)
            recovering = stream not in self._recovered
            reply: Any = self._client.xreadgroup(
                group,
                consumer,
                {stream: "0" if recovering else ">"},
                count=count,
                block=None if recovering else min(block_ms, self._block_ms),
            )
            entries = [
                Entry(entry_id.decode(), fields)
                for _, items in reply or []
                for entry_id, fields in items
                if fields  # an entry deleted while pending reads back empty: nothing to do
            ]
            if recovering and not entries:
                self._recovered.add(stream)
            return entries

        return self._call(read)

    def read_input(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        return self._read(self._input, REPARTITION_GROUP, consumer, count, block_ms)

    def read_shard(self, shard: int, count: int, block_ms: int) -> list[Entry]:
        stream = shard_stream(self._prefix, shard)
        return self._read(stream, SHARD_GROUP, f"shard-{shard}", count, block_ms)

    def route(
        self, routed: Sequence[Routed], dead: Sequence[DeadLetter], acked: Sequence[str]
    ) -> None:
        streams = [shard_stream(self._prefix, shard) for shard in range(self.shards)]
        arguments: list[str | bytes | int] = [REPARTITION_GROUP, DEAD_LETTER_MAX, len(routed)]
        for item in routed:
            arguments += [item.shard, item.event, item.source]
        arguments.append(len(dead))
        for letter in dead:
            arguments += [letter.source, letter.field, letter.error]
            arguments.append(letter.entry[:DEAD_LETTER_BYTES])
        arguments += acked
        keys = [self._input, dead_letter_stream(self._prefix), *streams]
        self._call(lambda: self._route(keys=keys, args=arguments))

    def _key(self, name: str, shard: int) -> str:
        return f"{self._prefix}:{name}:{shard}"

    def seen(self, shard: int, event_ids: Sequence[str]) -> set[str]:
        if not event_ids:
            return set()
        scores = self._call(lambda: self._client.zmscore(self._key("seen", shard), list(event_ids)))
        return {
            event_id for event_id, score in zip(event_ids, scores, strict=True) if score is not None
        }

    def load(self, shard: int) -> bytes | None:
        value = self._call(lambda: self._client.get(self._key("state", shard)))
        return bytes(value) if value is not None else None

    def commit(self, shard: int, commit: Commit) -> None:
        stream = shard_stream(self._prefix, shard)
        seen = self._key("seen", shard)

        def write() -> None:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.set(self._key("state", shard), commit.checkpoint)
                if commit.seen:
                    pipe.zadd(seen, dict(commit.seen))
                pipe.zremrangebyscore(seen, "-inf", f"({commit.forget_before}")
                if commit.offline:
                    pipe.rpush(self._key("offline", shard), *commit.offline)
                if commit.acked:
                    pipe.xack(stream, SHARD_GROUP, *commit.acked)
                    pipe.xdel(stream, *commit.acked)
                pipe.execute()

        self._call(write)

    def offline_count(self, shard: int) -> int:
        return int(self._call(lambda: self._client.llen(self._key("offline", shard))))

    def offline_rows(self, shard: int, limit: int) -> tuple[int, list[bytes]]:
        def read() -> tuple[int, list[bytes]]:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.get(self._key("offline-n", shard))
                pipe.lrange(self._key("offline", shard), 0, limit - 1)
                number, rows = pipe.execute()
            return int(number or 0), [bytes(row) for row in rows]

        return self._call(read)

    def offline_written(self, shard: int, count: int) -> None:
        def write() -> None:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.ltrim(self._key("offline", shard), count, -1)
                pipe.incr(self._key("offline-n", shard))
                pipe.execute()

        self._call(write)

    def backlog(self, shard: int | None) -> Backlog:
        stream = self._input if shard is None else shard_stream(self._prefix, shard)
        group = REPARTITION_GROUP if shard is None else SHARD_GROUP

        def read() -> Backlog:
            try:
                info = self._client.xinfo_stream(stream)
                groups = self._client.xinfo_groups(stream)
            except redis.ResponseError:  # no such stream yet: nothing behind
                return Backlog(0, 0.0)
            mine = next((g for g in groups if g["name"].decode() == group), None)
            if mine is None:
                return Backlog(int(info["length"]), 0.0)
            entries = int(mine.get("lag") or 0) + int(mine["pending"])
            head = _millis(info["last-generated-id"])
            delivered = _millis(mine["last-delivered-id"])
            return Backlog(entries, max(0.0, head - delivered) / 1000 if entries else 0.0)

        return self._call(read)

    def close(self) -> None:
        self._client.close()


def _millis(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])
