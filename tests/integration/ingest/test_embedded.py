"""The embedded setup: no Redis, the stream in the predictor's memory, ingested in its process
from the first ``POST /events`` on, into the SQLite online store through Feast."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from loopline.events import EventType, encode
from loopline.features.store import apply, feature_store
from loopline.serving.events_route import EventsRoute
from loopline.settings import Settings
from tests.events_data import stream

pytestmark = pytest.mark.integration


def test_posted_events_reach_the_sqlite_online_store(repo_settings: Settings) -> None:
    settings = repo_settings.model_copy(update={"ingest_block_ms": 10})
    assert settings.events_url is None
    assert settings.ingest_in_serve
    apply(settings)
    events = stream(hours=2)
    route = EventsRoute(settings)
    try:
        body = [orjson.loads(encode(e)) for e in events]
        assert asyncio.run(route.post(body)) == {"accepted": len(events)}
        jfk = [e for e in events if e.event_type is EventType.WEATHER and e.keys["origin"] == "JFK"]
        latest = max(jfk, key=lambda e: e.event_timestamp)
        store = feature_store(settings)
        deadline = time.monotonic() + 60
        while True:
            found = store.get_online_features(
                features=[
                    "origin_weather:temp",
                    "origin_departure_stats:origin_dep_delay_count_3h",
                ],
                entity_rows=[{"origin": "JFK"}],
            ).to_dict()
            if found["temp"][0] == latest.payload["temp"] and found["origin_dep_delay_count_3h"][0]:
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.2)
    finally:
        route.stop()
