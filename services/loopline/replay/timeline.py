"""The live period as it happened: prepared tables turned into events and requests, in slices.

Features change only at the aggregates' bucket ends (every ``step``, 10 minutes) and at weather
observations (on the hour), so the replay advances ``step`` at a time. A slice is sent as: its
events, then (once ingest has applied them) its prediction requests, which carry their own
``event_timestamp`` (the scheduled departure) and ``flight_id``. Ingest holds a departure back
until its watermark (the latest event time minus the allowed lateness) passes the departure's
bucket, so departures are sent ``lead`` (that lateness) ahead of their time: the buckets a
request may see are then closed when it is served, and no later one is. A slice with requests
ends with a clock tick at its start plus ``lead``: where no departure falls in the minutes after
the lateness (quiet hours), the tick still closes the bucket its requests read, as the offline
point-in-time rows (one per key and bucket end, quiet or not) have it. Weather is written as it
arrives, so it is sent in its own slice, never ahead; outcomes too, at the time they became
known. A first slice holds the departures of the ``WARM_UP`` before the start alone (ingest's
aggregates begin empty; its rows for those buckets are older than the online store's, which
keeps the newest).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from loopline.data.nycflights import CARRIER_DEPARTURES, ORIGIN_DEPARTURES, WEATHER_COLUMNS
from loopline.data.prepare import read_table
from loopline.events import (
    Event,
    EventType,
    clock_event_id,
    departure_event_id,
    outcome_event_id,
    weather_event_id,
)
from loopline.settings import Settings
from loopline.spec import ModelSpec

TIMESTAMP = "event_timestamp"
STEP = ORIGIN_DEPARTURES.step
WARM_UP = max(max(spec.windows) for spec in (ORIGIN_DEPARTURES, CARRIER_DEPARTURES))
"""Departures this long before the start are sent first, alone: ingest's aggregates start
empty, and the first windows after the start reach back this far."""


@dataclass
class Slice:
    start: datetime
    events: list[Event] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Timeline:
    start: datetime
    end: datetime
    slices: list[Slice]

    @property
    def events(self) -> int:
        return sum(len(s.events) for s in self.slices)

    @property
    def requests(self) -> int:
        return sum(len(s.requests) for s in self.slices)


def _column(frame: pd.DataFrame, name: str) -> list[Any]:
    """A column as Python values: NaN, NA and NaT are None, times ``datetime``s."""
    values = frame[name]
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        times: list[Any] = list(values.array.to_pydatetime())
        return times
    cells: list[Any] = values.astype(object).where(values.notna(), None).tolist()
    return cells


def _tuples(frame: pd.DataFrame, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    return zip(*(_column(frame, c) for c in columns), strict=True)


DEPARTURE_COLUMNS = ["flight_id", TIMESTAMP, "origin", "carrier", "dep_delay"]
WEATHER_TABLE_COLUMNS = ["origin", TIMESTAMP, *WEATHER_COLUMNS]
OUTCOME_COLUMNS = ["flight_id", TIMESTAMP, "status", "arr_delay", "delayed"]


def departures(frame: pd.DataFrame) -> Iterator[Event]:
    for flight, at, origin, carrier, delay in _tuples(frame, DEPARTURE_COLUMNS):
        keys = {"flight_id": flight, "origin": origin, "carrier": carrier}
        payload = {"dep_delay": float(delay)}
        yield Event(departure_event_id(flight), EventType.DEPARTURE, at, keys, payload)


def weather(frame: pd.DataFrame) -> Iterator[Event]:
    for origin, at, *values in _tuples(frame, WEATHER_TABLE_COLUMNS):
        payload = dict(zip(WEATHER_COLUMNS, values, strict=True))
        yield Event(
            weather_event_id(origin, at), EventType.WEATHER, at, {"origin": origin}, payload
        )


def outcomes(frame: pd.DataFrame) -> Iterator[Event]:
    for flight, at, status, arr_delay, delayed in _tuples(frame, OUTCOME_COLUMNS):
        payload = {"status": status, "arr_delay": arr_delay, "delayed": delayed}
        yield Event(outcome_event_id(flight), EventType.OUTCOME, at, {"flight_id": flight}, payload)


def build_timeline(
    settings: Settings, spec: ModelSpec, start: datetime, end: datetime, lead: timedelta
) -> Timeline:
    """Every live request in ``[start, end)``, the departures and weather of that span and the
    outcomes of those requests' flights, in slices of ``STEP``."""
    columns = list(
        dict.fromkeys([spec.request_id, TIMESTAMP, *spec.entity_keys, *spec.request_fields])
    )
    requests = read_table(settings, "requests", [*columns, "split"], (start, end))
    requests = requests[requests["split"] == "live"]
    flights = set(requests[spec.request_id])
    known = read_table(settings, "outcomes", OUTCOME_COLUMNS)
    timeline: dict[int, Slice] = {}

    def place(frame: pd.DataFrame, ahead: timedelta = timedelta(0)) -> Iterator[Slice]:
        """The slice each row of ``frame`` is sent in (-1: the warm-up)."""
        offsets = frame[TIMESTAMP] - pd.Timestamp(start) - pd.Timedelta(ahead)
        indices = (offsets // pd.Timedelta(STEP)).clip(lower=0)
        for index in indices.where(frame[TIMESTAMP] >= pd.Timestamp(start), -1).tolist():
            if index not in timeline:
                timeline[index] = Slice(start + index * STEP)
            yield timeline[index]

    departed = read_table(settings, "departures", DEPARTURE_COLUMNS, (start - WARM_UP, end))
    observed = read_table(settings, "weather", WEATHER_TABLE_COLUMNS, (start, end))
    tables = [
        (departed, departures, lead),
        (observed, weather, timedelta(0)),
        (known[known[spec.request_id].isin(flights)], outcomes, timedelta(0)),
    ]
    for frame, build, ahead in tables:
        for part, event in zip(place(frame, ahead), build(frame), strict=True):
            part.events.append(event)
    ordered = requests.sort_values(TIMESTAMP)
    stamp = columns.index(TIMESTAMP)
    for part, values in zip(place(ordered), _tuples(ordered, columns), strict=True):
        row = dict(zip(columns, values, strict=True))
        row[TIMESTAMP] = values[stamp].isoformat()
        part.requests.append(row)
    slices = [timeline[i] for i in sorted(timeline)]
    for part in slices:
        if part.requests:
            part.events.append(clock(part.start + lead))
        part.events.sort(key=lambda e: e.event_timestamp)
    return Timeline(start, end, slices)


def clock(at: datetime) -> Event:
    """The tick that closes the bucket ending at ``at - lead`` even when no departure does."""
    return Event(clock_event_id(at), EventType.CLOCK, at, {}, {})
