"""Ingest's own conversion of its rows (``online_rows``) against Feast's, on the real
applied repo: the same tuples as ``provider.ingest_df`` (where ``push`` and
``write_to_online_store`` end) hands the online store, and the SQLite store written by
``FeastOnlineWriter`` holds the same bytes as one written by Feast's ``push``."""

from __future__ import annotations

import math
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from feast.data_source import PushMode

from loopline.events import Event
from loopline.features.online_rows import online_rows
from loopline.features.store import apply, feature_store
from loopline.ingest.online import FeastOnlineWriter, weather_frame, weather_rows
from loopline.ingest.state import WEATHER_VIEW
from loopline.settings import Settings
from tests.events_data import START, weather

pytestmark = pytest.mark.integration


def aggregate_rows(prefix: str, key: str, values: list[str]) -> dict[str, dict[str, Any]]:
    """Rows as ingest emits them, by key: a NaN mean where a window is empty, Python ints."""
    at = pd.Timestamp(START)
    return {
        value: {
            key: value,
            "event_timestamp": at + timedelta(minutes=10 * i),
            f"{prefix}_mean_1h": math.nan if i % 2 else 12.5 + i,
            f"{prefix}_count_1h": 0 if i % 2 else i + 1,
            f"{prefix}_mean_3h": 3.25 * i,
            f"{prefix}_count_3h": 2 * i + 1,
        }
        for i, value in enumerate(values)
    }


AGGREGATES = {
    "origin_departure_stats": aggregate_rows("origin_dep_delay", "origin", ["EWR", "JFK", "LGA"]),
    "carrier_departure_stats": aggregate_rows("carrier_dep_delay", "carrier", ["AA", "UA", "B6"]),
}
OBSERVATIONS: list[Event] = [
    weather(origin, START + timedelta(hours=i), 50.0 + i) for i, origin in enumerate(["JFK", "EWR"])
]
"""Weather with null fields (``weather`` leaves most of them unknown)."""


def serialized(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (key.SerializeToString(), {f: v.SerializeToString() for f, v in values.items()}, at, c)
        for key, values, at, c in rows
    ]


def test_rows_convert_as_feasts_write_path_converts_them(repo_settings: Settings) -> None:
    apply(repo_settings)
    store = feature_store(repo_settings)
    provider = store._get_provider()
    cases = {name: list(rows.values()) for name, rows in AGGREGATES.items()}
    cases[WEATHER_VIEW] = weather_rows(OBSERVATIONS)
    for name, rows in cases.items():
        view = store.get_feature_view(name)
        frame = weather_frame(OBSERVATIONS) if name == WEATHER_VIEW else pd.DataFrame(rows)
        theirs = provider._prep_rows_to_write_for_ingestion(view, frame)
        assert serialized(online_rows(view, rows)) == serialized(theirs), name


def dump(repo: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(repo / "data" / "online_store.db") as db:
        tables = [t for (t,) in db.execute("select name from sqlite_master where type='table'")]
        return sorted(
            (table, *row)
            for table in tables
            for row in db.execute(f"select entity_key, feature_name, value, event_ts from {table}")
        )


def test_the_writer_leaves_the_store_as_feasts_push_does(
    repo_settings: Settings, tmp_path: Path
) -> None:
    apply(repo_settings)
    mine = repo_settings.model_copy(update={"feature_repo": tmp_path / "mine"})
    shutil.copytree(repo_settings.feature_repo, mine.feature_repo)
    before = dump(mine.feature_repo)
    store = feature_store(repo_settings)
    for name, rows in AGGREGATES.items():
        store.push(f"{name}_push", pd.DataFrame(list(rows.values())), to=PushMode.ONLINE)
    store.write_to_online_store(WEATHER_VIEW, weather_frame(OBSERVATIONS))
    FeastOnlineWriter(mine).write(AGGREGATES, OBSERVATIONS)
    assert dump(mine.feature_repo) == dump(repo_settings.feature_repo) != before
