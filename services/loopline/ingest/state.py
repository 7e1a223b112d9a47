"""One shard's streaming state: the aggregators, the events waiting for their bucket to close,
the watermark, and the latest weather per origin; checkpointed after every batch.

Lateness. The watermark is the latest event time the shard has seen (departures, weather and
clock ticks, which producers send so that windows close in quiet times) minus
``allowed_lateness``. A departure waits in ``pending`` until the watermark passes the end of its
bucket; then the bucket's events are added to the aggregator (``StreamingWindowAggregator``, the
one definition shared with the batch backfill) and the row at that bucket end is emitted. So
events out of order by less than the lateness are applied exactly as if they had come in order;
a departure whose bucket has already been emitted is *late*: counted, kept for the offline
store, and left out of the served aggregate. A weather observation older than the latest one
written for its origin is late too (the online store keeps the newest).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import orjson
import pandas as pd

from loopline.data.aggregates import StreamingWindowAggregator, WindowSpec
from loopline.data.nycflights import CARRIER_DEPARTURES, ORIGIN_DEPARTURES
from loopline.events import Event
from loopline.events.stream import shard_of

SPECS: dict[str, WindowSpec] = {
    "origin_departure_stats": ORIGIN_DEPARTURES,
    "carrier_departure_stats": CARRIER_DEPARTURES,
}
"""Per feature view, the aggregate it serves (its push source is ``<view>_push``)."""
WEATHER_VIEW = "origin_weather"
Pending = tuple[str, int, float, float]
"""A departure waiting for its bucket: (key, event time in ns, value, XADD time in s)."""


@dataclass
class Emitted:
    """What a batch changed: the newest row per view and key, and per view the XADD times of
    the events those rows newly contain (for the freshness histogram)."""

    rows: dict[str, dict[str, dict[str, object]]] = field(default_factory=dict)
    added_at: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


class ShardState:
    def __init__(self, shard: int, shards: int, lateness: pd.Timedelta) -> None:
        self.shard, self.shards, self.lateness = shard, shards, lateness
        self.aggregators = {view: StreamingWindowAggregator(spec) for view, spec in SPECS.items()}
        self.pending: dict[str, dict[int, list[Pending]]] = {v: defaultdict(list) for v in SPECS}
        self.latest_seen: int | None = None
        """The latest event time seen (epoch ns)."""
        self.emitted_until: int | None = None
        """The last bucket end emitted (epoch ns); a bucket at or before it is closed."""
        self.weather: dict[str, int] = {}
        """Per origin, the time of the observation written last (epoch ns)."""

    def owns(self, key: str) -> bool:
        return shard_of(key, self.shards) == self.shard

    def add_departure(self, event: Event, added_at: float) -> bool:
        """Queue a departure for the aggregates this shard owns; False if it is late for one."""
        stamp = pd.Timestamp(event.event_timestamp)
        self._see(stamp.value)
        on_time = True
        for view, spec in SPECS.items():
            key = event.keys[spec.key]
            if not self.owns(f"{spec.key}:{key}"):
                continue
            end = (stamp.floor(spec.step) + spec.step).value
            if self.emitted_until is not None and end <= self.emitted_until:
                on_time = False
                continue
            value = event.payload["dep_delay"]
            assert isinstance(value, float)
            self.pending[view][end].append((key, stamp.value, value, added_at))
        return on_time

    def add_weather(self, event: Event) -> bool:
        """Whether the observation is newer than the one written last for its origin."""
        stamp = pd.Timestamp(event.event_timestamp).value
        self._see(stamp)
        origin = event.keys["origin"]
        if stamp <= self.weather.get(origin, -1):
            return False
        self.weather[origin] = stamp
        return True

    def tick(self, event: Event) -> None:
        """A clock tick: the event time has reached the tick's, as if an event stamped then had
        been seen; the next ``close_buckets`` closes what the watermark has passed."""
        self._see(pd.Timestamp(event.event_timestamp).value)

    def _see(self, stamp: int) -> None:
        self.latest_seen = stamp if self.latest_seen is None else max(self.latest_seen, stamp)

    def close_buckets(self) -> Emitted:
        """Emit every bucket end the watermark has passed since the last call."""
        emitted = Emitted()
        if self.latest_seen is None:
            return emitted
        step = pd.Timedelta(ORIGIN_DEPARTURES.step).value
        watermark = self.latest_seen - self.lateness.value
        last = watermark - watermark % step
        waiting = [end for pending in self.pending.values() for end in pending]
        if self.emitted_until is not None:
            first = self.emitted_until + step
        else:
            first = min(waiting, default=last)
        if first > last:
            return emitted
        # Rows older than the longest window before ``last`` are superseded before anyone reads
        # them: their buckets are added, only the recent ends are emitted.
        longest = max(max(spec.windows) for spec in SPECS.values())
        emit_from = max(first, last - pd.Timedelta(longest).value)
        for end in sorted({e for pending in self.pending.values() for e in pending}):
            if end < emit_from:
                self._add_bucket(end, emitted)
        for end in range(emit_from, last + step, step):
            self._add_bucket(end, emitted)
            for view, aggregator in self.aggregators.items():
                rows = emitted.rows.setdefault(view, {})
                for row in aggregator.emit(pd.Timestamp(end, tz="UTC")):
                    rows[str(row[SPECS[view].key])] = row
        self.emitted_until = last
        return emitted

    def _add_bucket(self, end: int, emitted: Emitted) -> None:
        for view, aggregator in self.aggregators.items():
            for key, stamp, value, added_at in self.pending[view].pop(end, ()):
                aggregator.add(key, pd.Timestamp(stamp, tz="UTC"), value)
                emitted.added_at[view].append(added_at)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "latest_seen": self.latest_seen,
                "emitted_until": self.emitted_until,
                "weather": self.weather,
                "aggregators": {v: a.snapshot() for v, a in self.aggregators.items()},
                "pending": {v: list(p.items()) for v, p in self.pending.items()},
            },
            option=orjson.OPT_NON_STR_KEYS,
        )

    @classmethod
    def decode(cls, data: bytes, shard: int, shards: int, lateness: pd.Timedelta) -> ShardState:
        saved = orjson.loads(data)
        state = cls(shard, shards, lateness)
        state.latest_seen, state.emitted_until = saved["latest_seen"], saved["emitted_until"]
        state.weather = saved["weather"]
        for view, snapshot in saved["aggregators"].items():
            state.aggregators[view].restore(snapshot)
        for view, pending in saved["pending"].items():
            for end, items in pending:
                state.pending[view][end] = [tuple(item) for item in items]
        return state

    def horizon(self, span: pd.Timedelta) -> int | None:
        """Event times before this (epoch ns) are older than ``span`` behind the latest."""
        return None if self.latest_seen is None else self.latest_seen - span.value
