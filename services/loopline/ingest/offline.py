"""The offline store's side of ingest: every event, once, in parquet beside the prepared tables.

Files are ``<feature repo>/data/live/<departures|weather|outcomes>/shard-<i>-<n>.parquet``, with
the prepared tables' columns (``departures.parquet`` and so on), so a retraining job reads the
history and what arrived live the same way (``read_live``). Rows reach a file in two steps: the
shard's commit stores them in the stream with the batch (so a restart neither loses nor repeats
them), then ``flush`` writes file ``n`` whole (temporary file, rename) and only then drops those
rows and moves to ``n + 1``: a flush interrupted in between writes the same file again.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from loopline.events import EventType, decode
from loopline.events.stream import EventStream
from loopline.ingest.online import weather_frame

TABLES = {
    EventType.DEPARTURE: "departures",
    EventType.WEATHER: "weather",
    EventType.OUTCOME: "outcomes",
}


def live_dir(data_dir: Path) -> Path:
    return data_dir / "live"


def frames(rows: list[bytes]) -> dict[EventType, pd.DataFrame]:
    """The events as the prepared tables' rows, per type."""
    events = [decode(row, canonical=True) for row in rows]  # written by the shard stage
    found: dict[EventType, pd.DataFrame] = {}
    for kind in EventType:
        chosen = [e for e in events if e.event_type is kind]
        if not chosen:
            continue
        if kind is EventType.WEATHER:
            found[kind] = weather_frame(chosen)
            continue
        records = [{**e.keys, "event_timestamp": e.event_timestamp, **e.payload} for e in chosen]
        frame = pd.DataFrame(records)
        if kind is EventType.OUTCOME:
            frame = frame.astype({"arr_delay": "float64", "delayed": "Int64"})
        found[kind] = frame
    return found


class OfflineWriter:
    def __init__(
        self, stream: EventStream, shard: int, data_dir: Path, rows: int, interval_s: float
    ) -> None:
        self._stream, self._shard = stream, shard
        self._dir = live_dir(data_dir)
        self._rows, self._interval_s = rows, interval_s
        self._last = time.monotonic()

    def flush(self, force: bool = False) -> int:
        """Write a file if ``rows`` are waiting, or ``interval_s`` has passed (or ``force``);
        returns the rows written."""
        due = force or time.monotonic() - self._last >= self._interval_s
        if not due and self._stream.offline_count(self._shard) < self._rows:
            return 0  # checked first: reading the rows themselves on every batch costs a copy
        number, rows = self._stream.offline_rows(self._shard, self._rows)
        if not rows:
            return 0
        for kind, frame in frames(rows).items():
            folder = self._dir / TABLES[kind]
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"shard-{self._shard}-{number:08d}.parquet"
            partial = path.with_suffix(".parquet.tmp")
            frame.to_parquet(partial, index=False)
            os.replace(partial, path)
        self._stream.offline_written(self._shard, len(rows))
        self._last = time.monotonic()
        return len(rows)


def read_live(data_dir: Path, kind: EventType) -> pd.DataFrame:
    """Every live event of ``kind`` ingest has written, in event time order."""
    paths = sorted((live_dir(data_dir) / TABLES[kind]).glob("shard-*.parquet"))
    if not paths:
        return pd.DataFrame()
    frame = pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
    return frame.sort_values("event_timestamp", ignore_index=True)
