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
from datetime import UTC, datetime, timedelta

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
_STEP_NS = {view: pd.Timedelta(spec.step).value for view, spec in SPECS.items()}
"""Per view, its bucket step in ns (the views share one: the watermark closes one grid)."""
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
        stamp = epoch_ns(event.event_timestamp)
        self._see(stamp)
        on_time = True
        for view, spec in SPECS.items():
            key = event.keys[spec.key]
            if not self.owns(f"{spec.key}:{key}"):
                continue
            step = _STEP_NS[view]
            end = stamp - stamp % step + step
            if self.emitted_until is not None and end <= self.emitted_until:
                on_time = False
                continue
            value = event.payload["dep_delay"]
            assert isinstance(value, float)
            self.pending[view][end].append((key, stamp, value, added_at))
        return on_time

    def add_weather(self, event: Event) -> bool:
        """Whether the observation is newer than the one written last for its origin."""
        stamp = epoch_ns(event.event_timestamp)
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
        """Add every bucket the watermark has passed since the last call, and emit each view's
        rows at the last such bucket end (an upsert store keeps only the newest row per key, so
        the rows of the ends before it would be overwritten unread)."""
        emitted = Emitted()
        if self.latest_seen is None:
            return emitted
        step = _STEP_NS["origin_departure_stats"]
        watermark = self.latest_seen - self.lateness.value
        last = watermark - watermark % step
        ends = sorted({end for pending in self.pending.values() for end in pending})
        first = ends[0] if ends else last
        if self.emitted_until is not None:
            first = self.emitted_until + step
        if first > last:
            return emitted
        for end in ends:
            if end <= last:
                self._add_bucket(end, emitted)
        at = pd.Timestamp(last, tz="UTC")
        for view, aggregator in self.aggregators.items():
            key = SPECS[view].key
            emitted.rows[view] = {str(row[key]): row for row in aggregator.emit(at)}
        self.emitted_until = last
        return emitted

    def _add_bucket(self, end: int, emitted: Emitted) -> None:
        for view, aggregator in self.aggregators.items():
            values: dict[str, list[float]] = defaultdict(list)
            for key, _, value, added_at in self.pending[view].pop(end, ()):
                values[key].append(value)
                emitted.added_at[view].append(added_at)
            if values:
                at = pd.Timestamp(end, tz="UTC")
                for key, in_order in values.items():
                    aggregator.add_to_bucket(key, at, in_order)

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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_ns(moment: datetime) -> int:
    """``pd.Timestamp(moment).value`` for an aware datetime, in integer arithmetic (exact, and
    a tenth of the time: it runs for every event)."""
    return (moment - _EPOCH) // _MICROSECOND * 1000
