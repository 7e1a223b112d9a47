"""Ingest's own conversion of its rows (``online_rows``) and its batched SQLite write
(``sqlite_rows``) against Feast's, on the real applied repo: the same tuples as
``provider.ingest_df`` (where ``push`` and ``write_to_online_store`` end) hands the online store,
the SQLite store written by ``FeastOnlineWriter`` holds the same bytes as one written by Feast's
``push``, ``write_views`` leaves the tables as Feast's ``online_write_batch`` does, column by
column, and a batch that fails midway leaves nothing of itself."""

from __future__ import annotations

import contextlib
import math
import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from feast import FeatureView
from feast.data_source import PushMode
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig

from loopline.events import Event
from loopline.features.online_rows import OnlineRow, online_rows
from loopline.features.sqlite_rows import replicates, write_views
from loopline.features.store import apply, feature_store, repo_config
from loopline.ingest.online import FeastOnlineWriter, weather_frame, weather_rows
from loopline.ingest.state import WEATHER_VIEW
from loopline.settings import Settings
from tests.events_data import START, weather

pytestmark = pytest.mark.integration


def aggregate_rows(
    prefix: str, key: str, values: list[str], later: timedelta = timedelta(0)
) -> dict[str, dict[str, Any]]:
    """Rows as ingest emits them, by key: a NaN mean where a window is empty, Python ints."""
    at = pd.Timestamp(START) + later
    return {
        value: {
            key: value,
            "event_timestamp": at + timedelta(minutes=10 * i),
            f"{prefix}_mean_1h": math.nan if i % 2 else 12.5 + i,
            f"{prefix}_count_1h": 0 if i % 2 else i + 1,
            f"{prefix}_mean_3h": 3.25 * i + later.days,
            f"{prefix}_count_3h": 2 * i + 1 + later.days,
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
DAY = timedelta(days=1)
NEWER = {
    "origin_departure_stats": aggregate_rows("origin_dep_delay", "origin", ["JFK", "SFO"], DAY),
    "carrier_departure_stats": {},
}
NEWER_OBSERVATIONS = [weather("JFK", START + DAY, 41.0)]
"""A later batch: newer rows for keys already written (JFK), a new key, a view with none."""


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
    """Every table's every row, every column as stored (no type detection: bytes, ints, text)."""
    with contextlib.closing(sqlite3.connect(repo / "data" / "online_store.db")) as db:
        tables = [t for (t,) in db.execute("select name from sqlite_master where type='table'")]
        return sorted(
            (table, *row) for table in tables for row in db.execute(f'select * from "{table}"')
        )


def copy_of(settings: Settings, directory: Path) -> Settings:
    """Settings for a copy of ``settings``'s applied repo, its online store as it is now."""
    shutil.copytree(settings.feature_repo, directory)
    return settings.model_copy(update={"feature_repo": directory})


def test_the_writer_leaves_the_store_as_feasts_push_does(
    repo_settings: Settings, tmp_path: Path
) -> None:
    apply(repo_settings)
    mine = copy_of(repo_settings, tmp_path / "mine")
    before = dump(mine.feature_repo)
    store = feature_store(repo_settings)
    writer = FeastOnlineWriter(mine)
    assert writer._sqlite is not None  # the batched path, not Feast's call per view
    for aggregates, observations in [(AGGREGATES, OBSERVATIONS), (NEWER, NEWER_OBSERVATIONS)]:
        for name, rows in aggregates.items():
            if rows:
                store.push(f"{name}_push", pd.DataFrame(list(rows.values())), to=PushMode.ONLINE)
        store.write_to_online_store(WEATHER_VIEW, weather_frame(observations))
        writer.write(aggregates, observations)
        assert dump(mine.feature_repo) == dump(repo_settings.feature_repo) != before


def batches(settings: Settings) -> list[list[tuple[FeatureView, list[OnlineRow]]]]:
    """The two batches above as ``online_write_batch``'s tuples, per view."""
    store = feature_store(settings)
    return [
        [
            (store.get_feature_view(name), online_rows(store.get_feature_view(name), rows))
            for name, rows in [
                *((view, list(by_key.values())) for view, by_key in aggregates.items() if by_key),
                (WEATHER_VIEW, weather_rows(observations)),
            ]
        ]
        for aggregates, observations in [(AGGREGATES, OBSERVATIONS), (NEWER, NEWER_OBSERVATIONS)]
    ]


@pytest.fixture
def new_york_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone off UTC: Feast's adapter stores ``int(naive.timestamp())``,
    which reads a naive UTC time as local, so only the same naive times store the same ints."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york_clock")
def test_batched_rows_are_feasts_online_write_batch_rows(
    repo_settings: Settings, tmp_path: Path
) -> None:
    apply(repo_settings)
    mine = copy_of(repo_settings, tmp_path / "mine")
    store = feature_store(repo_settings)
    provider, config = store._get_provider(), store.config
    assert replicates(config)
    states = [dump(mine.feature_repo)]
    with contextlib.closing(sqlite3.connect(mine.feature_repo / "data" / "online_store.db")) as db:
        for batch in batches(repo_settings):
            for view, data in batch:
                provider.online_write_batch(config, view, data, progress=None)
            write_views(db, config, batch)
            theirs, ours = dump(repo_settings.feature_repo), dump(mine.feature_repo)
            assert len(ours) == len(theirs) > 0
            for their_row, our_row in zip(theirs, ours, strict=True):
                for column, (their_value, our_value) in enumerate(
                    zip(their_row, our_row, strict=True)
                ):
                    assert type(our_value) is type(their_value), (column, their_row)
                    assert our_value == their_value, (column, their_row)
            states.append(ours)
    assert states[0] != states[1] != states[2]  # the second batch upserts rows the first wrote


def test_a_batch_that_fails_midway_leaves_nothing_of_itself(repo_settings: Settings) -> None:
    apply(repo_settings)
    first, second = batches(repo_settings)
    config = feature_store(repo_settings).config
    path = repo_settings.feature_repo / "data" / "online_store.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        write_views(db, config, first)
        weather_table = f"{config.project}_{WEATHER_VIEW}"
        db.execute(f'drop table "{weather_table}"')  # the batch's last view: its upsert fails
        before = dump(repo_settings.feature_repo)
        with pytest.raises(sqlite3.OperationalError, match=weather_table):
            write_views(db, config, second)
        assert dump(repo_settings.feature_repo) == before
        write_views(db, config, second[:-1])  # what the failed batch had written before it failed
        assert dump(repo_settings.feature_repo) != before


def test_other_layouts_and_stores_keep_feasts_write(repo_settings: Settings) -> None:
    assert replicates(repo_config(repo_settings))
    for layout in ({"vector_enabled": True}, {"enable_openai_compatible_store": True}):
        config = repo_config(repo_settings)
        config.online_config = SqliteOnlineStoreConfig(**layout)
        assert not replicates(config)
    redis = repo_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1"})
    assert not replicates(repo_config(redis))
