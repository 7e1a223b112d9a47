"""``loopline ingest`` as a real process on a real redis-server and a real Feast repo (applied
on Redis): what it writes online equals the batch definition, duplicates are applied once, a
SIGKILL mid-stream loses and double-counts nothing, malformed entries are dead-lettered and
counted, and ``POST /events`` answers 400 naming the field and 503 while Redis is down."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pandas as pd
import pytest
import redis

from loopline.data.aggregates import window_aggregates
from loopline.errors import BadRequest, Unavailable
from loopline.events import Event, EventType, encode
from loopline.events.redis_stream import RedisEventStream
from loopline.features.store import apply, feature_store
from loopline.ingest.offline import TABLES, read_live
from loopline.ingest.state import SPECS
from loopline.serving.events_route import EventsRoute
from loopline.settings import Settings
from tests.events_data import shuffled_within, stream
from tests.redis_server import free_port

pytestmark = pytest.mark.integration
PREFIX = "test:events"
SERVICES = Path(__file__).resolve().parents[3] / "services"


@pytest.fixture
def live(repo_settings: Settings, redis_url: str) -> Settings:
    settings = repo_settings.model_copy(
        update={
            "redis_url": redis_url,
            "events_stream_prefix": PREFIX,
            "ingest_dedup_horizon_s": 30 * 86400.0,
            "ingest_offline_interval_s": 0.5,
            "events_timeout_ms": 300.0,
        }
    )
    apply(settings)
    return settings


def env(settings: Settings, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(SERVICES),
        "LOOPLINE_FEATURE_REPO": str(settings.feature_repo),
        "LOOPLINE_HOME": str(settings.home),
        "LOOPLINE_REDIS_URL": str(settings.redis_url),
        "LOOPLINE_EVENTS_STREAM_PREFIX": PREFIX,
        "LOOPLINE_INGEST_DEDUP_HORIZON_S": str(settings.ingest_dedup_horizon_s),
        "LOOPLINE_INGEST_OFFLINE_INTERVAL_S": "0.5",
        "LOOPLINE_INGEST_BATCH_SIZE": "50",
        "LOOPLINE_INGEST_METRICS_PORT": str(port),
        "LOOPLINE_HOST": "127.0.0.1",
    }


def start_ingest(live: Settings, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from loopline.cli import run; run()", "ingest"]
    return subprocess.Popen(command, env=env(live, port))


def wait_done(client: redis.Redis, applied: int, timeout: float = 120) -> None:
    """Until shard 0 has committed ``applied`` distinct events and nothing waits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        backlog = client.xlen(f"{PREFIX}:in") + client.xlen(f"{PREFIX}:shard:0")
        if backlog == 0 and client.zcard(f"{PREFIX}:seen:0") >= applied:
            return
        time.sleep(0.2)
    raise AssertionError(f"not done: {client.zcard(f'{PREFIX}:seen:0')} of {applied}")


def online_rows(settings: Settings, view: str, keys: list[str]) -> pd.DataFrame:
    spec = SPECS[view]
    store = feature_store(settings)
    names = [f"{view}:{column}" for column in spec.column_names()]
    rows = [{spec.key: key} for key in keys]
    return pd.DataFrame(store.get_online_features(features=names, entity_rows=rows).to_dict())


def assert_online_equals_batch(
    settings: Settings, events: list[Event], client: redis.Redis
) -> None:
    state = orjson.loads(client.get(f"{PREFIX}:state:0"))
    at = pd.Timestamp(state["emitted_until"], tz="UTC")
    departures = pd.DataFrame(
        [
            {**e.keys, "event_timestamp": pd.Timestamp(e.event_timestamp), **e.payload}
            for e in events
            if e.event_type is EventType.DEPARTURE
        ]
    )
    for view, spec in SPECS.items():
        expected = window_aggregates(departures, spec, at.floor("D"), at)
        expected = expected[expected["event_timestamp"] == at].set_index(spec.key)
        found = online_rows(settings, view, list(expected.index)).set_index(spec.key)
        for column in spec.column_names():
            pd.testing.assert_series_equal(
                found[column].astype("float64"),
                expected[column].astype("float64"),
                check_names=False,
                check_index_type=False,
            )


def metric(port: int, name: str, **labels: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}}") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_duplicates_and_disorder_are_applied_once_and_a_sigkill_loses_nothing(
    live: Settings,
) -> None:
    events = stream(hours=12, per_hour=60)
    producer = RedisEventStream(str(live.redis_url), PREFIX, 1, 1.0, block_ms=0)
    messy = shuffled_within(events + events[::4], seconds=300)
    for i in range(0, len(messy), 200):
        producer.publish(messy[i : i + 200])
    client = redis.Redis.from_url(str(live.redis_url))
    port = free_port()
    first = start_ingest(live, port)
    try:
        deadline = time.monotonic() + 120
        while client.zcard(f"{PREFIX}:seen:0") < len(events) // 3:
            assert time.monotonic() < deadline
            assert first.poll() is None
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # mid-stream: entries read and not committed
        first.wait(10)
        assert client.zcard(f"{PREFIX}:seen:0") < len(events)
        second = start_ingest(live, port)
        try:
            wait_done(client, len(events))
            assert_online_equals_batch(live, events, client)
            time.sleep(1.5)  # the offline interval
            assert (
                metric(port, "loopline_ingest_events_total", event_type="departure", result="late")
                == 0
            )
            for kind in TABLES:  # the kinds kept offline (clock ticks are kept nowhere)
                table = read_live(live.data_dir, kind)
                assert len(table) == sum(e.event_type is kind for e in events), kind
        finally:
            second.terminate()
            assert second.wait(30) == 0
    finally:
        if first.poll() is None:
            first.kill()


def test_malformed_xadds_are_dead_lettered_and_counted(live: Settings) -> None:
    client = redis.Redis.from_url(str(live.redis_url))
    good = stream(hours=1)[:5]
    for event in good:
        client.xadd(f"{PREFIX}:in", {"event": encode(event)})
    arrival = orjson.loads(encode(good[0])) | {"event_type": "arrival"}
    client.xadd(f"{PREFIX}:in", {"event": orjson.dumps(arrival)})
    client.xadd(f"{PREFIX}:in", {"event": b"not json"})
    client.xadd(f"{PREFIX}:in", {"payload": b"{}"})
    port = free_port()
    process = start_ingest(live, port)
    try:
        wait_done(client, len(good))
        dead = client.xrange(f"{PREFIX}:dead")
        assert [fields[b"field"] for _, fields in dead] == [b"event_type", b"event", b"event"]
        assert metric(port, "loopline_ingest_dead_letters_total", field="event") == 2
        assert metric(port, "loopline_ingest_dead_letters_total", field="event_type") == 1
        assert (
            metric(port, "loopline_ingest_events_total", event_type="unknown", result="dead_letter")
            == 3
        )
    finally:
        process.terminate()
        process.wait(30)


def test_post_events_refuses_a_bad_list_whole_and_answers_503_while_redis_is_down(
    live: Settings,
) -> None:
    route = EventsRoute(live)
    client = redis.Redis.from_url(str(live.redis_url))
    events = [encode(e) for e in stream(hours=1)[:3]]
    body = [orjson.loads(e) for e in events]
    bad = [*body[:2], {**body[2], "payload": {"dep_delay": "soon"}}]
    with pytest.raises(BadRequest, match=r"events\[2\]\.payload"):
        asyncio.run(route.post(bad))
    assert client.xlen(f"{PREFIX}:in") == 0  # nothing half-applied
    assert asyncio.run(route.post(body)) == {"accepted": 3}
    client.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
    started = time.monotonic()
    with pytest.raises(Unavailable, match="nothing was accepted"):
        asyncio.run(route.post(body))
    assert time.monotonic() - started < 1.2
    time.sleep(1.6)
    assert asyncio.run(route.post(body[:1])) == {"accepted": 1}
    assert client.xlen(f"{PREFIX}:in") == 4  # every accepted event is there
    client.shutdown(nosave=True)
    with pytest.raises(Unavailable):
        asyncio.run(route.post(body))
