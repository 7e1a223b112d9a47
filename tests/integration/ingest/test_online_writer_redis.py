"""Ingest's online writer (``FeastOnlineWriter``) against Feast's ``push`` on a real
redis-server and a real Feast apply: the same rows, one written by each into its own database,
leave byte-identical hashes (keys, hashed field names, value and timestamp protos), an older row
is refused by both, a newer one replaces by both, and Feast reads the writer's rows back."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import redis
from feast.data_source import PushMode

from loopline.features.store import apply, feature_store
from loopline.ingest.online import FeastOnlineWriter
from loopline.settings import Settings

pytestmark = pytest.mark.integration
T0 = pd.Timestamp("2013-09-01 10:00", tz="UTC")
ORIGIN = "origin_departure_stats"
WEATHER = "origin_weather"


def origin_rows(at: pd.Timestamp, delay: float) -> list[dict[str, object]]:
    return [
        {
            "origin": "EWR",
            "event_timestamp": at,
            "origin_dep_delay_mean_1h": delay,
            "origin_dep_delay_count_1h": 3,
            "origin_dep_delay_mean_3h": delay / 2,
            "origin_dep_delay_count_3h": 7,
        },
        {  # a quiet key: count 0, mean NaN
            "origin": "LGA",
            "event_timestamp": at,
            "origin_dep_delay_mean_1h": math.nan,
            "origin_dep_delay_count_1h": 0,
            "origin_dep_delay_mean_3h": 1.25,
            "origin_dep_delay_count_3h": 1,
        },
    ]


def weather_rows(at: pd.Timestamp) -> list[dict[str, object]]:
    fields = ["temp", "dewp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib"]
    row: dict[str, object] = {name: float(i) + 0.5 for i, name in enumerate(fields)}
    return [{"origin": "JFK", "event_timestamp": at, **row, "wind_gust": None, "pressure": None}]


def dump(client: redis.Redis) -> dict[bytes, dict[bytes, bytes]]:
    return {key: client.hgetall(key) for key in client.keys("*")}


def test_the_writer_leaves_the_bytes_push_leaves(repo_settings: Settings, redis_url: str) -> None:
    pushed = repo_settings.model_copy(update={"redis_url": redis_url.replace("/0", "/1")})
    written = repo_settings.model_copy(update={"redis_url": redis_url.replace("/0", "/2")})
    apply(pushed)
    store = feature_store(pushed)
    writer = FeastOnlineWriter(written)

    batches = [
        (origin_rows(T0, 12.5), weather_rows(T0)),
        (origin_rows(T0 - pd.Timedelta("10min"), -4.0), weather_rows(T0 - pd.Timedelta("1h"))),
        (origin_rows(T0 + pd.Timedelta("10min"), 0.0), weather_rows(T0 + pd.Timedelta("1h"))),
    ]
    for origin, weather in batches:
        store.push(f"{ORIGIN}_push", pd.DataFrame(origin), to=PushMode.ONLINE)
        frame = pd.DataFrame(weather).astype({"wind_gust": "float64", "pressure": "float64"})
        store.write_to_online_store(WEATHER, frame)
        writer.write_view(ORIGIN, origin)
        writer.write_view(WEATHER, weather)

    client = redis.Redis.from_url(redis_url)
    client.select(1)
    by_push = dump(client)
    client.select(2)
    by_writer = dump(client)
    client.close()
    assert len(by_push) == 3  # EWR and LGA (origin views share the entity), JFK
    assert by_writer == by_push

    found = (
        feature_store(written)
        .get_online_features(
            features=[
                f"{ORIGIN}:origin_dep_delay_mean_1h",
                f"{WEATHER}:wind_gust",
                f"{WEATHER}:temp",
            ],
            entity_rows=[{"origin": "EWR"}, {"origin": "JFK"}],
        )
        .to_dict()
    )
    assert found["origin_dep_delay_mean_1h"][0] == 0.0  # the newest row won, the older lost
    assert found["wind_gust"][1] is None
    assert found["temp"][1] == 0.5
