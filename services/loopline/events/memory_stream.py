"""``EventStream`` in one process's memory: the embedded setup (``loopline serve`` with no Redis).

It keeps ``RedisEventStream``'s semantics within the process (atomic steps, one consumer per
shard, acknowledged entries dropped), so the ingest code is the same; nothing survives the
process, which is what the embedded setup, a single command on a laptop, accepts.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from loopline.events.record import Event, encode
from loopline.events.stream import Backlog, Commit, DeadLetter, Entry, Routed


class MemoryEventStream:
    def __init__(self, shards: int) -> None:
        self.shards = shards
        self._changed = threading.Condition()
        self._sequence = itertools.count()
        self._input: deque[Entry] = deque()
        self._shards: list[deque[Entry]] = [deque() for _ in range(shards)]
        self._delivered: dict[int | None, int] = {}
        """Per stream (None: the input), entries handed out and not yet acknowledged."""
        self.dead: list[DeadLetter] = []
        self._state: dict[int, bytes] = {}
        self._seen: dict[int, dict[str, float]] = {shard: {} for shard in range(shards)}
        self._offline: dict[int, list[bytes]] = {shard: [] for shard in range(shards)}
        self._offline_number = dict.fromkeys(range(shards), 0)
        self._on_drained: list[Callable[[], None]] = []

    def _entry(self, fields: dict[bytes, bytes], event: Event | None) -> Entry:
        return Entry(f"{int(time.time() * 1000)}-{next(self._sequence)}", fields, event)

    def publish(self, events: Sequence[Event]) -> None:
        """Append ``events``, which the caller has parsed (``parse``): each entry carries its
        event as well as its encoding, so neither stage parses it again."""
        entries = [({b"event": encode(event)}, event) for event in events]
        with self._changed:
            self._input.extend(self._entry(fields, event) for fields, event in entries)
            self._changed.notify_all()

    def _take(self, stream: int | None, count: int, block_ms: int) -> list[Entry]:
        queue = self._input if stream is None else self._shards[stream]
        with self._changed:
            start = self._delivered.get(stream, 0)
            if len(queue) <= start:
                self._changed.wait(block_ms / 1000)
            entries = list(itertools.islice(queue, start, start + count))
            self._delivered[stream] = start + len(entries)
            return entries

    def _ack(self, stream: int | None, acked: Sequence[str]) -> None:
        queue = self._input if stream is None else self._shards[stream]
        done = set(acked)
        kept = [entry for entry in queue if entry.id not in done]
        self._delivered[stream] = self._delivered.get(stream, 0) - (len(queue) - len(kept))
        queue.clear()
        queue.extend(kept)

    def read_input(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        return self._take(None, count, block_ms)

    def read_shard(self, shard: int, count: int, block_ms: int) -> list[Entry]:
        return self._take(shard, count, block_ms)

    def route(
        self, routed: Sequence[Routed], dead: Sequence[DeadLetter], acked: Sequence[str]
    ) -> None:
        with self._changed:
            for item in routed:
                fields = {b"event": item.event, b"source": item.source.encode()}
                self._shards[item.shard].append(self._entry(fields, item.parsed))
            self.dead.extend(dead)
            self._ack(None, acked)
            self._notify()

    def seen(self, shard: int, event_ids: Sequence[str]) -> set[str]:
        with self._changed:
            return {event_id for event_id in event_ids if event_id in self._seen[shard]}

    def load(self, shard: int) -> bytes | None:
        with self._changed:
            return self._state.get(shard)

    def commit(self, shard: int, commit: Commit) -> None:
        with self._changed:
            self._state[shard] = commit.checkpoint
            seen = self._seen[shard]
            seen.update(commit.seen)
            for event_id in [i for i, at in seen.items() if at < commit.forget_before]:
                del seen[event_id]
            self._offline[shard].extend(commit.offline)
            self._ack(shard, commit.acked)
            self._notify()

    def offline_count(self, shard: int) -> int:
        with self._changed:
            return len(self._offline[shard])

    def offline_rows(self, shard: int, limit: int) -> tuple[int, list[bytes]]:
        with self._changed:
            return self._offline_number[shard], self._offline[shard][:limit]

    def offline_written(self, shard: int, count: int) -> None:
        with self._changed:
            del self._offline[shard][:count]
            self._offline_number[shard] += 1

    def backlog(self, shard: int | None) -> Backlog:
        with self._changed:
            queue = self._input if shard is None else self._shards[shard]
            if not queue:
                return Backlog(0, 0.0)
            head, delivered = queue[-1], self._delivered.get(shard, 0)
            behind = queue[delivered - 1] if delivered else queue[0]
            return Backlog(len(queue), head.added_at - behind.added_at)

    async def drained(self) -> None:
        """Return once the input and every shard have no entry left (each applied and
        acknowledged): woken by the step that empties them, with no thread waiting for it."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not done.done():  # the waiter may have been cancelled meanwhile
                done.set_result(None)

        def wake() -> None:  # called by the stage's thread
            loop.call_soon_threadsafe(settle)

        with self._changed:
            if self._idle():
                return
            self._on_drained.append(wake)
        await done

    def _idle(self) -> bool:
        return not self._input and not any(self._shards)

    def _notify(self) -> None:
        """(With the lock held) wake the stages, and the ``drained`` waiters once idle."""
        self._changed.notify_all()
        if self._on_drained and self._idle():
            waiting, self._on_drained = self._on_drained, []
            for wake in waiting:
                wake()

    def close(self) -> None:
        """Nothing to release."""
