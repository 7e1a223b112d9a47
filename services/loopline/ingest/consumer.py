"""The two stages of ``loopline ingest``, one batch per ``step`` (see ``loopline.events.stream``).

``Repartitioner`` validates input entries and re-keys them into shards (a malformed one goes to
the dead-letter stream). ``ShardConsumer`` applies one shard's entries: drops those already
applied (by ``event_id``), queues departures for the aggregates, writes what the batch emitted
to the online store, hands outcomes to the ``OutcomeSink``, then commits its state with the
batch. If anything fails it forgets its state and takes the last commit again: the entries of
the failed batch are still pending, and are read again first.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pandas as pd

from loopline.events import Event, EventError, EventType, OutcomeSink, decode, encode
from loopline.events.stream import Commit, DeadLetter, Entry, EventStream, Routed, shards_for
from loopline.ingest.metrics import IngestMetrics, field_label
from loopline.ingest.offline import OfflineWriter
from loopline.ingest.state import WEATHER_VIEW, Emitted, ShardState, epoch_ns

BACKLOG_EVERY_S = 1.0


class OnlineWriter(Protocol):
    def write(self, rows: dict[str, dict[str, dict[str, object]]], weather: list[Event]) -> None:
        """Upsert the aggregate rows and weather observations."""


class Repartitioner:
    def __init__(
        self,
        stream: EventStream,
        consumer: str,
        metrics: IngestMetrics,
        batch: int,
        block_ms: int,
        max_future: timedelta,
    ) -> None:
        self._stream, self._consumer, self._metrics = stream, consumer, metrics
        self._batch, self._block_ms, self._max_future = batch, block_ms, max_future

    def step(self) -> int:
        entries = self._stream.read_input(self._consumer, self._batch, self._block_ms)
        if not entries:
            return 0
        routed: list[Routed] = []
        dead: list[DeadLetter] = []
        latest = datetime.now(UTC) + self._max_future
        for entry in entries:
            raw = entry.fields.get(b"event", b"")
            try:
                event = self._valid(entry, raw, latest)
            except EventError as error:
                dead.append(DeadLetter(entry.id, error.field, str(error), raw))
                continue
            data = raw if entry.event is not None else encode(event)
            routed += [
                Routed(s, data, entry.id, entry.event)
                for s in shards_for(event, self._stream.shards)
            ]
        self._stream.route(routed, dead, [entry.id for entry in entries])
        self._metrics.batch_size.labels("repartition").observe(len(entries))
        for letter in dead:
            self._metrics.dead_letters.labels(field_label(letter.field)).inc()
            self._metrics.events.labels("unknown", "dead_letter").inc()
        return len(entries)

    def _valid(self, entry: Entry, raw: bytes, latest: datetime) -> Event:
        """The entry's event, parsed (a stream in this process hands its publisher's parse
        on, whose encoding ``raw`` is), and not too far in the future."""
        event = entry.event
        if event is None:
            if not raw:
                raise EventError("event", "the entry has no field 'event'")
            event = decode(raw)
        if event.event_timestamp > latest:
            raise EventError("event_timestamp", f"more than {self._max_future} in the future")
        return event


class ShardConsumer:
    def __init__(
        self,
        shard: int,
        stream: EventStream,
        online: OnlineWriter,
        sink: OutcomeSink,
        offline: OfflineWriter,
        metrics: IngestMetrics,
        batch: int,
        block_ms: int,
        lateness: timedelta,
        horizon: timedelta,
    ) -> None:
        self.shard = shard
        self._stream, self._online, self._sink = stream, online, sink
        self._offline, self._metrics = offline, metrics
        self._batch, self._block_ms = batch, block_ms
        self._lateness, self._horizon = pd.Timedelta(lateness), pd.Timedelta(horizon)
        self._state: ShardState | None = None
        self._backlog_at = 0.0

    def forget(self) -> None:
        """Drop the in-memory state: the next step starts again from the last commit."""
        self._state = None

    def flush_offline(self) -> None:
        """Write every offline row that waits."""
        while self._offline.flush(force=True):
            pass

    def _load(self) -> ShardState:
        saved = self._stream.load(self.shard)
        if saved is None:
            return ShardState(self.shard, self._stream.shards, self._lateness)
        return ShardState.decode(saved, self.shard, self._stream.shards, self._lateness)

    def step(self) -> int:
        if self._state is None:
            self._state = self._load()
        self._report_backlog()
        entries = self._stream.read_shard(self.shard, self._batch, self._block_ms)
        if not entries:
            self._offline.flush()
            return 0
        state = self._state
        events: list[tuple[Entry, Event]] = []
        results: Counter[tuple[str, str]] = Counter()
        for entry in entries:
            try:
                event = entry.event or decode(entry.fields[b"event"], canonical=True)
                events.append((entry, event))
            except (EventError, KeyError):  # only ingest writes shard streams; never expected
                results["unknown", "dead_letter"] += 1
        already = self._stream.seen(self.shard, [event.event_id for _, event in events])
        horizon = state.horizon(self._horizon)
        seen: dict[str, float] = {}
        weather: dict[str, tuple[Event, float]] = {}
        outcomes: list[Event] = []
        offline: list[bytes] = []
        for entry, event in events:
            kind = str(event.event_type)
            if event.event_id in already or event.event_id in seen:
                results[kind, "duplicate"] += 1
                continue
            if horizon is not None and epoch_ns(event.event_timestamp) < horizon:
                results[kind, "late"] += 1  # beyond the dedup horizon: dropped whole
                continue
            seen[event.event_id] = event.event_timestamp.timestamp()
            applied = True
            if event.event_type is EventType.DEPARTURE:
                applied = state.add_departure(event, entry.added_at)
            elif event.event_type is EventType.WEATHER:
                applied = state.add_weather(event)
                if applied:
                    weather[event.keys["origin"]] = (event, entry.added_at)
            elif event.event_type is EventType.CLOCK:
                state.tick(event)  # kept nowhere: it only moves the watermark
                results[kind, "applied"] += 1
                continue
            else:
                outcomes.append(event)
            if shards_for(event, self._stream.shards)[0] == self.shard:
                offline.append(entry.fields[b"event"])
            results[kind, "applied" if applied else "late"] += 1
        emitted = state.close_buckets()
        self._online.write(emitted.rows, [event for event, _ in weather.values()])
        written = time.time()
        if outcomes:
            self._sink.handle(outcomes)
        forget = state.horizon(self._horizon)
        commit = Commit(
            checkpoint=state.encode(),
            seen=seen,
            forget_before=float("-inf") if forget is None else forget / 1e9,
            offline=offline,
            acked=[entry.id for entry in entries],
        )
        self._stream.commit(self.shard, commit)
        self._observe(results, emitted, weather, written, len(entries), len(outcomes))
        self._offline.flush()
        return len(entries)

    def _observe(
        self,
        results: Counter[tuple[str, str]],
        emitted: Emitted,
        weather: dict[str, tuple[Event, float]],
        written: float,
        size: int,
        outcomes: int,
    ) -> None:
        metrics = self._metrics
        metrics.batch_size.labels("shard").observe(size)
        for (kind, result), count in results.items():
            metrics.events.labels(kind, result).inc(count)
        for view, times in emitted.added_at.items():
            histogram = metrics.freshness.labels(view)
            for added_at in times:
                histogram.observe(max(0.0, written - added_at))
        for _, added_at in weather.values():
            metrics.freshness.labels(WEATHER_VIEW).observe(max(0.0, written - added_at))
        metrics.outcomes.inc(outcomes)

    def _report_backlog(self) -> None:
        now = time.monotonic()
        if now - self._backlog_at < BACKLOG_EVERY_S:
            return
        self._backlog_at = now
        for name, shard in (("input", None), (f"shard-{self.shard}", self.shard)):
            backlog = self._stream.backlog(shard)
            self._metrics.backlog.labels(name).set(backlog.entries)
            self._metrics.lag.labels(name).set(backlog.seconds)
