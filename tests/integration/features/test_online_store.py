"""Real `feast apply` + `materialize` on SQLite and on a real redis-server, read back online."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from feast import FeatureStore

from loopline.data.prepare import read_manifest, read_table
from loopline.features.store import apply, feature_store, materialize
from loopline.settings import Settings

pytestmark = pytest.mark.integration

ENTITY = {"origin": "EWR", "carrier": "UA", "tailnum": "N14228"}
REQUEST = {"distance": 1400.0, "sched_hour": 5, "weekday": 1}
# Off the 10-minute grid, so "the latest row before END" has one answer.
END_BEFORE_LIVE = timedelta(minutes=5)


def expected_latest(settings: Settings, table: str, key: str, end: pd.Timestamp) -> pd.Series:
    frame = read_table(settings, table)
    rows = frame[(frame[key] == ENTITY[key]) & (frame["event_timestamp"] <= end)]
    return rows.sort_values("event_timestamp").iloc[-1]


def read_online(store: FeatureStore, service: str = "flight_delay_v1") -> dict[str, object]:
    response = store.get_online_features(
        features=store.get_feature_service(service), entity_rows=[{**ENTITY, **REQUEST}]
    ).to_dict()
    return {name: values[0] for name, values in response.items()}


def assert_online_matches_offline(settings: Settings, online: dict[str, object]) -> None:
    end = pd.Timestamp(read_manifest(settings).live_from) - END_BEFORE_LIVE
    weather = expected_latest(settings, "weather", "origin", end)
    stats = expected_latest(settings, "origin_departure_stats", "origin", end)
    carrier = expected_latest(settings, "carrier_departure_stats", "carrier", end)
    plane = expected_latest(settings, "planes", "tailnum", end)
    assert online["temp"] == pytest.approx(weather["temp"])
    assert online["pressure"] == pytest.approx(weather["pressure"])
    assert online["origin_dep_delay_count_3h"] == stats["origin_dep_delay_count_3h"]
    assert online["carrier_dep_delay_count_1h"] == carrier["carrier_dep_delay_count_1h"]
    assert online["seats"] == pytest.approx(plane["seats"])
    # The on-demand view is computed from the request fields at read time.
    assert online["log_distance"] == pytest.approx(7.2449, abs=1e-4)
    assert online["is_weekend"] == 0.0


def materialize_history(settings: Settings) -> None:
    manifest = read_manifest(settings)
    materialize(settings, manifest.start, manifest.live_from - END_BEFORE_LIVE)


def test_sqlite_apply_materialize_read_back(repo_settings: Settings) -> None:
    apply(repo_settings)
    materialize_history(repo_settings)
    assert (repo_settings.data_dir / "online_store.db").is_file()
    assert_online_matches_offline(repo_settings, read_online(feature_store(repo_settings)))


def test_redis_apply_materialize_read_back(repo_settings: Settings, redis_url: str) -> None:
    settings = repo_settings.model_copy(update={"redis_url": redis_url})
    apply(settings)
    materialize_history(settings)
    store = feature_store(settings)
    assert store.config.online_store.type == "redis"
    assert_online_matches_offline(settings, read_online(store))
    assert not (settings.data_dir / "online_store.db").exists()


def run_feast(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    feast = Path(sys.executable).with_name("feast")
    result = subprocess.run(
        [str(feast), *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_plain_feast_cli_works_on_the_repo(repo_settings: Settings, redis_url: str) -> None:
    """The repo is an ordinary Feast repo: `feast apply` and `feast materialize` work in it,
    with the SQLite file and with the Redis variant."""
    repo = repo_settings.feature_repo
    manifest = read_manifest(repo_settings)
    end = pd.Timestamp(manifest.live_from) - END_BEFORE_LIVE
    window = [f"{manifest.start:%Y-%m-%dT%H:%M:%S}", f"{end:%Y-%m-%dT%H:%M:%S}"]
    assert "flight_delay_v1" in run_feast(repo, "apply")
    run_feast(repo, "materialize", *window)
    assert_online_matches_offline(repo_settings, read_online(FeatureStore(repo_path=str(repo))))

    connection = redis_url.removeprefix("redis://").split("/")[0]
    env = {"FEAST_REDIS_CONNECTION": connection}
    run_feast(repo, "-f", "feature_store.redis.yaml", "apply", env=env)
    run_feast(repo, "-f", "feature_store.redis.yaml", "materialize", *window, env=env)
    os.environ["FEAST_REDIS_CONNECTION"] = connection
    try:
        store = FeatureStore(repo_path=str(repo), fs_yaml_file=repo / "feature_store.redis.yaml")
        assert_online_matches_offline(repo_settings, read_online(store))
    finally:
        del os.environ["FEAST_REDIS_CONNECTION"]
