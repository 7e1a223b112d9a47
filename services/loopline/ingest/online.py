"""The online store's side of ingest: Feast's push API, on whichever store settings configure.

Aggregates go through their views' push sources (``<view>_push`` in
``feature_repo/data_sources.py``), weather through ``write_to_online_store`` on its view (its
source is the prepared file). Writes are upserts, so writing a batch again after a restart
leaves the store as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from loopline.events import Event
from loopline.events.record import WEATHER_FIELDS
from loopline.ingest.state import WEATHER_VIEW
from loopline.settings import Settings


class FeastOnlineWriter:
    def __init__(self, settings: Settings) -> None:
        from loopline.features.store import feature_store

        self._store = feature_store(settings)

    def write(
        self, rows: Mapping[str, Mapping[str, dict[str, object]]], weather: Sequence[Event]
    ) -> None:
        """``rows``: per aggregate view, its newest row per key; ``weather``: observations."""
        from feast.data_source import PushMode

        for view, by_key in rows.items():
            if by_key:
                frame = pd.DataFrame(list(by_key.values()))
                self._store.push(f"{view}_push", frame, to=PushMode.ONLINE)
        if weather:
            self._store.write_to_online_store(WEATHER_VIEW, weather_frame(weather))


def weather_frame(events: Sequence[Event]) -> pd.DataFrame:
    """The rows of ``origin_weather`` the observations are, in the prepared table's layout."""
    records: list[dict[str, Any]] = [
        {"origin": e.keys["origin"], "event_timestamp": e.event_timestamp, **e.payload}
        for e in events
    ]
    frame = pd.DataFrame(records, columns=["origin", "event_timestamp", *WEATHER_FIELDS])
    return frame.astype({name: "float64" for name in WEATHER_FIELDS})
