"""Sliding-window aggregates of an event stream, defined once for batch and for streaming.

An event stamped ``t`` lands in the bucket that ends at ``floor(t / step) * step + step``. The
row emitted at a bucket end ``E`` aggregates the events of the buckets ending in ``(E - w, E]``,
i.e. events with ``E - w <= t < E``. A row is therefore stamped no earlier than any event it
contains: joined point-in-time, it never reveals an event that happened after the request.

``window_aggregates`` computes every row of a historical table at once (training, backfill);
``StreamingWindowAggregator`` produces the same rows one bucket at a time from a live stream.
A unit test holds the two equal.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class WindowSpec:
    """Mean and count of ``value`` per ``key`` over each window, emitted every ``step``."""

    key: str
    value: str
    prefix: str
    windows: tuple[timedelta, ...] = (timedelta(hours=1), timedelta(hours=3))
    step: timedelta = timedelta(minutes=10)

    def buckets(self, window: timedelta) -> int:
        if window % self.step:
            raise ValueError(f"window {window} is not a multiple of step {self.step}")
        return window // self.step

    def column_names(self) -> list[str]:
        names = []
        for window in self.windows:
            label = _window_label(window)
            names += [f"{self.prefix}_mean_{label}", f"{self.prefix}_count_{label}"]
        return names


def _window_label(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def bucket_end(timestamps: pd.Series, step: timedelta) -> pd.Series:
    """The end of the bucket each timestamp falls in (strictly after the timestamp)."""
    return timestamps.dt.floor(pd.Timedelta(step)) + pd.Timedelta(step)


def window_aggregates(
    events: pd.DataFrame,
    spec: WindowSpec,
    start: pd.Timestamp,
    end: pd.Timestamp,
    timestamp_column: str = "event_timestamp",
) -> pd.DataFrame:
    """One row per key and bucket end in ``[start, end]``, every key on every bucket.

    Keys are emitted on every bucket, quiet or not, so a count of zero is a real observation
    and a feature view can use a TTL of a couple of steps to detect a stalled stream.
    """
    step = pd.Timedelta(spec.step)
    grid = pd.date_range(start.ceil(step), end.floor(step), freq=step)
    ends = bucket_end(events[timestamp_column], spec.step)
    per_bucket = (
        events.assign(_end=ends).groupby([spec.key, "_end"])[spec.value].agg(["sum", "count"])
    )
    keys = sorted(events[spec.key].dropna().unique())
    frames = []
    for key in keys:
        history = per_bucket.loc[key]
        # Buckets before the grid still feed the first windows of the grid.
        lookback = grid[0] - step * max(spec.buckets(w) for w in spec.windows)
        full_index = pd.date_range(lookback, grid[-1], freq=step)
        bucketed = history.reindex(full_index, fill_value=0)
        frame = pd.DataFrame({spec.key: key, "event_timestamp": full_index})
        for window in spec.windows:
            n = spec.buckets(window)
            sums = bucketed["sum"].rolling(n, min_periods=1).sum().to_numpy()
            counts = bucketed["count"].rolling(n, min_periods=1).sum().to_numpy()
            label = _window_label(window)
            with np.errstate(invalid="ignore", divide="ignore"):
                frame[f"{spec.prefix}_mean_{label}"] = np.where(counts > 0, sums / counts, np.nan)
            frame[f"{spec.prefix}_count_{label}"] = counts.astype("int64")
        frames.append(frame[frame["event_timestamp"].isin(grid)])
    return pd.concat(frames, ignore_index=True)


class StreamingWindowAggregator:
    """The incremental form of ``window_aggregates`` for a live, time-ordered event stream.

    Call ``add`` for every event and ``emit`` at every bucket end; ``emit`` returns the rows
    ``window_aggregates`` would have produced for that bucket end.
    """

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self._step_ns = pd.Timedelta(spec.step).value
        self._longest = max(spec.buckets(w) for w in spec.windows)
        self._columns = [
            (
                spec.buckets(w) * self._step_ns,
                f"{spec.prefix}_mean_{_window_label(w)}",
                f"{spec.prefix}_count_{_window_label(w)}",
            )
            for w in spec.windows
        ]
        """Per window: its span in ns and its two columns."""
        # Per key: (bucket end in epoch ns, sum, count) of recent buckets, oldest first (plain
        # integers: an ingest batch compares every key's buckets at every bucket end).
        self._buckets: dict[str, deque[tuple[int, float, int]]] = defaultdict(deque)

    def add(self, key: str, timestamp: pd.Timestamp, value: float) -> None:
        step = pd.Timedelta(self.spec.step)
        self.add_to_bucket(key, timestamp.floor(step) + step, [value])

    def add_to_bucket(self, key: str, end: pd.Timestamp, values: Sequence[float]) -> None:
        """``add`` of events, in their order, whose bucket (ending at ``end``) the caller has
        computed: a live consumer adds a closed bucket's events at once."""
        buckets = self._buckets[key]
        end_ns = end.value
        if buckets and buckets[-1][0] > end_ns:
            raise ValueError(f"an event before {end} is older than the open bucket for {key!r}")
        if buckets and buckets[-1][0] == end_ns:
            _, total, count = buckets.pop()
        else:
            total, count, values = values[0], 1, values[1:]
        for value in values:
            total += value
        buckets.append((end_ns, total, count + len(values)))

    def snapshot(self) -> dict[str, list[tuple[int, float, int]]]:
        """The open buckets per key, (bucket end in epoch ns, sum, count), to checkpoint."""
        return {key: list(b) for key, b in self._buckets.items()}

    def restore(self, snapshot: dict[str, list[tuple[int, float, int]]]) -> None:
        """Continue from ``snapshot()``'s state, as if the events had been added again."""
        self._buckets.clear()
        for key, buckets in snapshot.items():
            self._buckets[key] = deque((int(end), float(s), int(c)) for end, s, c in buckets)

    def emit(self, at: pd.Timestamp) -> list[dict[str, object]]:
        at_ns = at.value
        expired = at_ns - self._step_ns * self._longest
        rows: list[dict[str, object]] = []
        for key in sorted(self._buckets):
            buckets = self._buckets[key]
            while buckets and buckets[0][0] <= expired:
                buckets.popleft()
            row: dict[str, object] = {self.spec.key: key, "event_timestamp": at}
            for span, mean, count_column in self._columns:
                oldest = at_ns - span
                total, count = 0.0, 0
                for end, s, c in buckets:
                    if oldest < end <= at_ns:
                        total += s
                        count += c
                row[mean] = total / count if count else np.nan
                row[count_column] = count
            rows.append(row)
        return rows
