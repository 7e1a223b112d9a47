"""The event stream behind one small interface, and how events are re-keyed into shards.

Producers append to one input stream (``publish``, or a direct ``XADD`` of one field ``event``).
Ingest then works in two stages, as a Kafka Streams topology with a repartition topic would:

1. **repartition**: the input is read in one consumer group shared by every ingest process;
   each valid event is copied to the shard of every aggregate key it feeds (a departure to the
   shard of its origin and to the shard of its carrier), and a malformed entry goes to the
   dead-letter stream. The copies, the dead letters and the input's acknowledgement are one
   atomic step (``route``), so an input entry is routed exactly once.
2. **shard**: shard ``i``'s consumer alone reads shard stream ``i``, so every aggregate key has
   exactly one writer. Its state, its dedup ids, its offline rows and its acknowledgement are
   one atomic step (``commit``): a consumer killed between two commits restarts from the last
   one and reads the same entries again, so nothing is lost or counted twice.

``RedisEventStream`` is the production implementation, ``MemoryEventStream`` the embedded one
(one process, no Redis); a Kafka one would implement the same ``EventStream``.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from loopline.events.record import Event, EventType


class StreamUnavailable(Exception):
    """The stream cannot be reached or refused the write; nothing of the call was applied."""


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    """The stream's id, ``<milliseconds>-<sequence>``: the time the entry was added."""
    fields: Mapping[bytes, bytes]
    event: Event | None = None
    """The event ``fields[b"event"]`` encodes, already parsed, where the stream is in this
    process (``MemoryEventStream``: its publisher parsed it); None from Redis, where the
    entry's bytes may come from any producer and are decoded."""

    @property
    def added_at(self) -> float:
        """Epoch seconds the entry was added to the input stream (a shard entry carries its
        input entry's id as ``source``)."""
        source = self.fields.get(b"source")
        entry_id = source.decode() if source is not None else self.id
        return int(entry_id.partition("-")[0]) / 1000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source: str
    """The input entry's id."""
    field: str
    error: str
    entry: bytes
    """What the entry's ``event`` field held (cut to ``DEAD_LETTER_BYTES``)."""


DEAD_LETTER_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Routed:
    shard: int
    event: bytes
    """The event's canonical encoding."""
    source: str
    """The input entry's id (its time is the event's XADD time, for freshness)."""
    parsed: Event | None = None
    """The event itself, for a stream in this process to hand on undecoded (``Entry.event``)."""


@dataclass(frozen=True, slots=True)
class Commit:
    checkpoint: bytes
    """The shard's state after the batch (``ShardState.encode``)."""
    seen: Mapping[str, float] = field(default_factory=dict)
    """Event ids the batch applied, with their event time (epoch seconds)."""
    forget_before: float = float("-inf")
    """Ids of events stamped before this (epoch seconds) may be forgotten."""
    offline: Sequence[bytes] = ()
    """Encoded events to append to the offline store."""
    acked: Sequence[str] = ()
    """The shard entries the batch consumed."""


@dataclass(frozen=True, slots=True)
class Backlog:
    entries: int
    """Entries not yet acknowledged (undelivered and pending)."""
    seconds: float
    """Time from the last delivered entry to the stream's head; 0 when caught up."""


class EventStream(Protocol):
    shards: int

    def publish(self, events: Sequence[Event]) -> None:
        """Append to the input stream, all or nothing; ``StreamUnavailable`` if not."""

    def read_input(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """The next input entries for ``consumer`` of the repartition group; first those it
        was given before and has not acknowledged (it restarted)."""

    def route(
        self, routed: Sequence[Routed], dead: Sequence[DeadLetter], acked: Sequence[str]
    ) -> None:
        """Atomically: add ``routed`` to their shard streams, ``dead`` to the dead-letter
        stream, and acknowledge the input entries ``acked``."""

    def read_shard(self, shard: int, count: int, block_ms: int) -> list[Entry]:
        """The next entries of shard ``shard``; first those delivered and not committed."""

    def seen(self, shard: int, event_ids: Sequence[str]) -> set[str]:
        """Which of ``event_ids`` shard ``shard`` has committed (within its horizon)."""

    def load(self, shard: int) -> bytes | None:
        """The shard's last committed checkpoint; None before its first commit."""

    def commit(self, shard: int, commit: Commit) -> None:
        """Apply ``commit`` atomically."""

    def offline_count(self, shard: int) -> int:
        """How many offline rows are committed for the shard and not yet in a file."""

    def offline_rows(self, shard: int, limit: int) -> tuple[int, list[bytes]]:
        """The shard's next offline file number and up to ``limit`` rows committed for it."""

    def offline_written(self, shard: int, count: int) -> None:
        """The first ``count`` offline rows are in file ``number``: drop them, next number."""

    def backlog(self, shard: int | None) -> Backlog:
        """How far the repartition group (``None``) or a shard's consumer is behind."""

    def close(self) -> None: ...


async def drained(stream: EventStream, poll_s: float = 0.001) -> None:
    """Return once the repartition stage and every shard have no backlog: every event published
    before the call is applied (a shard acknowledges an entry in the commit that applies it)."""
    for shard in [None, *range(stream.shards)]:
        while stream.backlog(shard).entries:
            await asyncio.sleep(poll_s)


def shard_of(key: str, shards: int) -> int:
    """The shard owning an aggregate key, ``<entity>:<value>`` (stable across processes)."""
    return zlib.crc32(key.encode()) % shards


def owner_keys(event: Event) -> tuple[str, ...]:
    """The keys an event is re-keyed by; the first one's shard also appends it to the offline
    store and hands it on (outcomes), so each event is stored once."""
    if event.event_type is EventType.DEPARTURE:
        return (f"origin:{event.keys['origin']}", f"carrier:{event.keys['carrier']}")
    if event.event_type is EventType.WEATHER:
        return (f"origin:{event.keys['origin']}",)
    return (f"flight:{event.keys['flight_id']}",)


def shards_for(event: Event, shards: int) -> list[int]:
    """The distinct shards an event is copied to, its owner first (a clock tick: every shard,
    since each keeps its own watermark; shard 0 owns it)."""
    if event.event_type is EventType.CLOCK:
        return list(range(shards))
    found: list[int] = []
    for key in owner_keys(event):
        shard = shard_of(key, shards)
        if shard not in found:
            found.append(shard)
    return found


def input_stream(prefix: str) -> str:
    return f"{prefix}:in"


def shard_stream(prefix: str, shard: int) -> str:
    return f"{prefix}:shard:{shard}"


def dead_letter_stream(prefix: str) -> str:
    return f"{prefix}:dead"
