"""The online store's side of ingest, on whichever store settings configure.

On Redis, ``FeastRedisWriter`` (``loopline.features.redis_writer``): Feast's layout and its
store's own write call, without ``push``'s per-call overhead (docs/decisions.md, §17). On the
embedded SQLite store, Feast's push API: aggregates through their views' push sources
(``<view>_push`` in ``feature_repo/data_sources.py``), weather through ``write_to_online_store``
on its view (its source is the prepared file). Writes are upserts, so writing a batch again
after a restart leaves the store as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from loopline.events import Event
from loopline.events.record import WEATHER_FIELDS
from loopline.ingest.state import SPECS, WEATHER_VIEW
from loopline.settings import Settings

Rows = Mapping[str, Mapping[str, dict[str, object]]]
"""Per aggregate view, its newest row per key."""


class FeastOnlineWriter:
    """Feast's push API (any online store)."""

    def __init__(self, settings: Settings) -> None:
        from loopline.features.store import feature_store

        self._store = feature_store(settings)

    def write(self, rows: Rows, weather: Sequence[Event]) -> None:
        from feast.data_source import PushMode

        for view, by_key in rows.items():
            if by_key:
                frame = pd.DataFrame(list(by_key.values()))
                self._store.push(f"{view}_push", frame, to=PushMode.ONLINE)
        if weather:
            self._store.write_to_online_store(WEATHER_VIEW, weather_frame(weather))


class RedisOnlineWriter:
    """The same rows through ``FeastRedisWriter``."""

    def __init__(self, settings: Settings) -> None:
        from loopline.features.redis_writer import FeastRedisWriter
        from loopline.features.store import feature_store

        self._writer = FeastRedisWriter(feature_store(settings), [*SPECS, WEATHER_VIEW])

    def write(self, rows: Rows, weather: Sequence[Event]) -> None:
        for view, by_key in rows.items():
            self._writer.write(view, list(by_key.values()))
        self._writer.write(WEATHER_VIEW, [weather_row(event) for event in weather])


def online_writer(settings: Settings) -> FeastOnlineWriter | RedisOnlineWriter:
    """The writer for the configured online store."""
    from loopline.features.store import repo_config

    if repo_config(settings).online_store.type == "redis":
        return RedisOnlineWriter(settings)
    return FeastOnlineWriter(settings)


def weather_row(event: Event) -> dict[str, Any]:
    """The row of ``origin_weather`` an observation is, in the prepared table's layout."""
    return {
        "origin": event.keys["origin"],
        "event_timestamp": event.event_timestamp,
        **event.payload,
    }


def weather_frame(events: Sequence[Event]) -> pd.DataFrame:
    """The rows of ``origin_weather`` the observations are, in the prepared table's layout."""
    frame = pd.DataFrame(
        [weather_row(e) for e in events], columns=["origin", "event_timestamp", *WEATHER_FIELDS]
    )
    return frame.astype({name: "float64" for name in WEATHER_FIELDS})
