"""The online store's side of ingest: Feast's online store, on whichever store settings
configure (SQLite embedded, Redis in production).

Aggregates are written to the views their push sources feed (``<view>_push`` in
``feature_repo/data_sources.py``), weather to its view (its source is the prepared file), through
the store's ``online_write_batch`` with the rows converted as Feast's push converts them
(``online_rows``); on SQLite, all views of a batch in one transaction of the rows Feast's call
writes (``sqlite_rows``). Writes are upserts, so writing a batch again after a restart leaves
the store as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from loopline.events import Event
from loopline.events.record import WEATHER_FIELDS
from loopline.ingest.state import WEATHER_VIEW
from loopline.settings import Settings


class FeastOnlineWriter:
    """Feast's online write with each view resolved once and rows converted without pandas.
    ``FeatureStore.push`` and ``write_to_online_store`` decode the registry's views and services
    from protobuf on every call, and ``ingest_df`` goes through a pandas frame and Arrow: for an
    ingest batch that was about 140 ms, against the store's own write of a few (docs/decisions.md,
    20). This hands the store's ``online_write_batch`` the rows ``push`` would (``<view>_push``
    feeds ``<view>``; ``online_rows``, held equal to Feast's conversion by a test). On Feast's
    SQLite store a batch's views go in one transaction instead, with the rows Feast's call writes
    (``sqlite_rows``, docs/decisions.md, 23); Redis keeps Feast's call."""

    def __init__(self, settings: Settings) -> None:
        from loopline.features.store import feature_store

        self._store = feature_store(settings)
        self._provider = self._store._get_provider()
        self._views: dict[str, Any] = {}
        self._sqlite = _sqlite_connection(self._provider.online_store, self._store.config)

    def write_view(self, name: str, rows: Sequence[Mapping[str, object]]) -> None:
        """Upsert ``rows`` (join keys, the timestamp field, every feature) into view ``name``."""
        self._write([(name, rows)])

    def write(
        self, rows: Mapping[str, Mapping[str, dict[str, object]]], weather: Sequence[Event]
    ) -> None:
        """``rows``: per aggregate view, its newest row per key; ``weather``: observations."""
        batch: list[tuple[str, Sequence[Mapping[str, object]]]] = [
            (view, list(by_key.values())) for view, by_key in rows.items() if by_key
        ]
        if weather:
            batch.append((WEATHER_VIEW, weather_rows(weather)))
        self._write(batch)

    def _write(self, batch: Sequence[tuple[str, Sequence[Mapping[str, object]]]]) -> None:
        from loopline.features.online_rows import online_rows
        from loopline.features.sqlite_rows import write_views

        converted = []
        for name, rows in batch:
            view = self._views.get(name)
            if view is None:
                view = self._views[name] = self._store.get_feature_view(name)
            converted.append((view, online_rows(view, rows)))
        config = self._store.config
        if self._sqlite is not None:
            write_views(self._sqlite, config, converted)
            return
        for view, data in converted:
            self._provider.online_write_batch(config, view, data, progress=None)


def _sqlite_connection(store: object, config: Any) -> sqlite3.Connection | None:
    """Feast's SQLite connection, for ``sqlite_rows`` to write through; ``None`` on another store
    or a SQLite layout ``sqlite_rows`` does not replicate (Feast's call writes those).

    It is set to a write-ahead log, no ``fsync`` at each commit (``synchronous=NORMAL``): Feast
    commits with the default rollback journal and ``synchronous=FULL``, two ``fsync``s per
    commit, about 5 ms of a replay slice's 15 here (docs/decisions.md, 23). The online store is
    derived data (materialize and ingest rebuild it); with WAL and NORMAL a power cut may lose
    the last commits, never corrupt the file, and readers no longer wait for the writer. Feast
    opens the connection itself (``_get_conn``, the one private call, fenced here)."""
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    from loopline.features.sqlite_rows import replicates

    if not isinstance(store, SqliteOnlineStore):
        return None
    connection: sqlite3.Connection = store._get_conn(config)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection if replicates(config) else None


def weather_rows(events: Sequence[Event]) -> list[dict[str, Any]]:
    """The rows of ``origin_weather`` the observations are (every field, null when unknown)."""
    return [
        {
            "origin": e.keys["origin"],
            "event_timestamp": e.event_timestamp,
            **{name: e.payload.get(name) for name in WEATHER_FIELDS},
        }
        for e in events
    ]


def weather_frame(events: Sequence[Event]) -> pd.DataFrame:
    """The rows of ``origin_weather`` the observations are, in the prepared table's layout."""
    frame = pd.DataFrame(
        weather_rows(events), columns=["origin", "event_timestamp", *WEATHER_FIELDS]
    )
    return frame.astype({name: "float64" for name in WEATHER_FIELDS})
