"""The live window is read from either sink: the same records, the same window, whether serving
writes segment files or ships them to a Redis Stream (a real redis-server), as records and as
the monitor's columns. Generated records
(tests.unit.predictions.records)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import redis

from loopline.monitoring.window import Window, live_frame, logged
from loopline.predictions import encode
from loopline.predictions.readers import FIELD
from loopline.settings import Settings
from tests.unit.predictions.records import START, record

pytestmark = pytest.mark.integration


def test_both_sinks_give_the_window(tmp_path: Path, redis_url: str) -> None:
    records = [record(i, at=START + timedelta(hours=i)) for i in range(10)]
    log = tmp_path / "log"
    log.mkdir()
    (log / "segment-1.jsonl").write_bytes(b"".join(encode(r) for r in records))
    client = redis.Redis.from_url(redis_url)
    for one in records + records[:3]:  # shipped at least once: redeliveries are dropped
        client.xadd("loopline:predictions", {FIELD: encode(one)})
    window = Window(START + timedelta(hours=2), START + timedelta(hours=7))
    files = Settings(home=tmp_path, prediction_log_dir=log)
    stream = Settings(home=tmp_path, prediction_log_sink="redis", redis_url=redis_url)
    expected = [f"r{i}" for i in range(2, 7)]
    assert [r.request_id for r in logged(files, window)] == expected
    assert [r.request_id for r in logged(stream, window)] == expected
    columns = {"carrier": "categorical", "sched_hour": "categorical", "temp": "numeric"}
    from_files = live_frame(files, window, "flight-delay", "v1", columns)  # read by pyarrow
    assert from_files["request_id"].tolist() == expected
    pd.testing.assert_frame_equal(
        from_files, live_frame(stream, window, "flight-delay", "v1", columns)
    )
