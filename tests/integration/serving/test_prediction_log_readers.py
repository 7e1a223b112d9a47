"""The prediction log round-trips: records written by the serving path (the worker's runtime,
its batcher and log writer, with Redis features) read back equal, field by field, from the
segment files and from a real redis-server stream, once each after a replayed shipment."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import shutil
import time
from pathlib import Path

import pytest
import redis

from loopline.predictions import (
    PredictionLog,
    PredictionRecord,
    PredictionStream,
    RedisShipper,
    read_segments,
)
from loopline.predictions.writer import SUFFIX
from loopline.serving.runtime import Runtime
from loopline.settings import Settings
from tests.integration.serving.conftest import FRESH, LATER, REQUEST, ServingSetup
from tests.unit.predictions.records import Counts

pytestmark = pytest.mark.integration
STREAM = "loopline:predictions"


async def serve(runtime: Runtime) -> list[str]:
    """Requests in batches of several sizes, some with a flight id, some stale."""
    await runtime.start()
    answered = []
    try:
        for size in (1, 5, 17):
            rows = [
                runtime.schema.parse_object(
                    {
                        **REQUEST,
                        "event_timestamp": FRESH if i % 3 else LATER,
                        **({"flight_id": f"f-{size}-{i}"} if i % 2 else {}),
                    }
                )
                for i in range(size)
            ]
            predictions = await asyncio.gather(*(runtime.predict([row], "predict") for row in rows))
            answered += [p.request_id for (p,) in predictions]
    finally:
        await runtime.stop()
    return answered


def serve_in_this_process(settings_json: str, answered: Path) -> None:
    settings = Settings.model_validate_json(settings_json)
    answered.write_text(json.dumps(asyncio.run(serve(Runtime.load(settings)))))


def in_a_worker_process(settings: Settings, answered: Path) -> list[str]:
    """The runtime in a process of its own, as a worker has: it sets process-wide state
    (PyTorch threads, the metrics' process files) that must not leak into the tests."""
    child = multiprocessing.get_context("spawn").Process(
        target=serve_in_this_process, args=(settings.model_dump_json(), answered)
    )
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0, f"the runtime's process exited {child.exitcode}"
    result: list[str] = json.loads(answered.read_text())
    return result


def ship(directory: Path, url: str) -> None:
    """Ship ``directory``'s segments, left as by a worker that exited, to the stream."""
    counts = Counts()
    log = PredictionLog(
        directory,
        fsync_ms=10,
        segment_bytes=1 << 20,
        max_pending=1000,
        counters=counts,
        sink=RedisShipper(url, STREAM, counts),
    )
    log.open()
    deadline = time.monotonic() + 20
    own = {segment.path for segment in log.segments}
    while set(directory.glob(f"*{SUFFIX}")) - own:
        assert time.monotonic() < deadline, "the shipper did not take the segments"
        time.sleep(0.05)
    log.close(timeout=5)


def test_records_read_back_equal_from_both_sinks(
    serving: ServingSetup, redis_url: str, tmp_path: Path
) -> None:
    log_dir = tmp_path / "log"
    settings = Settings(
        feature_repo=serving.settings.feature_repo,
        home=serving.settings.home,
        redis_url=serving.settings.redis_url,
        model_path=serving.model_dir,
        prediction_log_dir=log_dir,
    )
    answered = in_a_worker_process(settings, tmp_path / "answered.json")

    written = list(read_segments(log_dir))
    assert [r.timestamp for r in written] == sorted(r.timestamp for r in written)
    assert set(answered) == {r.request_id for r in written}
    assert len(written) == 23
    check(written)

    for replay in ("first", "second"):  # the same segments shipped twice: at least once
        shutil.copytree(log_dir, tmp_path / replay)
        ship(tmp_path / replay, redis_url)
    client = redis.Redis.from_url(redis_url)
    assert client.xlen(STREAM) == 2 * len(written)

    stream = PredictionStream(client, STREAM)
    assert list(stream.read()) == written
    batch = stream.consume("monitor", "c1", count=1000, block_ms=100)
    assert batch.records == written
    assert len(batch.ids) == 2 * len(written)
    stream.ack("monitor", batch.ids)
    assert stream.consume("monitor", "c1", block_ms=100).ids == []
    assert stream.skipped == 0


def check(records: list[PredictionRecord]) -> None:
    """What the serving path put in them: the spec's id field, the flight ids, the statuses."""
    assert {r.id_field for r in records} == {"flight_id"}
    assert sum(r.id_value is not None for r in records) == 2 + 8  # odd rows of 5 and 17
    assert {r.endpoint for r in records} == {"predict"}
    stale = [r for r in records if r.event_timestamp.isoformat().startswith("2013-09-01T06")]
    assert stale
    assert all(r.feature_status["origin_weather"] == "stale" for r in stale)
    assert all(0 < r.probability < 1 for r in records)
