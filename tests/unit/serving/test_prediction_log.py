"""The prediction log: written before the answer, fsynced soon after, bounded, never silent."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loopline.serving.metrics import ServingMetrics
from loopline.serving.prediction_log import (
    SUFFIX,
    LogUnavailable,
    PredictionLog,
    Segment,
    read_records,
)


def lines(start: int, count: int) -> list[bytes]:
    return [
        json.dumps({"request_id": f"r{i}"}).encode() + b"\n" for i in range(start, start + count)
    ]


def sample(metrics: ServingMetrics, name: str, sink: str = "file") -> float:
    body, _ = metrics.exposition()
    for family in text_string_to_metric_families(body.decode()):
        for found in family.samples:
            if found.name == name and found.labels == {"sink": sink}:
                return float(found.value)
    return 0.0


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def metrics() -> ServingMetrics:
    return ServingMetrics.create()


@pytest.fixture
def open_log(tmp_path: Path, metrics: ServingMetrics) -> Iterator[Callable[..., PredictionLog]]:
    logs: list[PredictionLog] = []

    def make(**options: int | float) -> PredictionLog:
        settings = {"fsync_ms": 10.0, "segment_bytes": 1 << 20, "max_pending": 1000, **options}
        log = PredictionLog(tmp_path / "log", metrics=metrics, **settings)  # type: ignore[arg-type]
        log.open()
        logs.append(log)
        return log

    yield make
    for log in logs:
        if log.segments:
            log.close(timeout=1)


def test_records_are_readable_as_soon_as_appended_and_durable_soon_after(
    open_log: Callable[..., PredictionLog], metrics: ServingMetrics
) -> None:
    log = open_log(fsync_ms=10)
    before = sample(metrics, "loopline_prediction_log_records_total")
    log.append(lines(0, 3))
    assert [r["request_id"] for r in read_records(log.directory)] == ["r0", "r1", "r2"]
    wait_for(lambda: log.pending == 0)
    assert sample(metrics, "loopline_prediction_log_records_total") == before + 3


def test_fsync_zero_makes_each_append_durable_before_it_returns(
    open_log: Callable[..., PredictionLog],
) -> None:
    log = open_log(fsync_ms=0)
    log.append(lines(0, 2))
    assert (log.written, log.pending) == (2, 0)


def test_segments_rotate_and_keep_their_order(open_log: Callable[..., PredictionLog]) -> None:
    log = open_log(segment_bytes=1024)
    for start in range(0, 200, 10):
        log.append(lines(start, 10))
    log.close(timeout=1)
    assert len(list(log.directory.glob(f"*{SUFFIX}"))) > 3
    assert [r["request_id"] for r in read_records(log.directory)] == [f"r{i}" for i in range(200)]
    assert log.pending == 0


def test_the_queue_is_bounded(open_log: Callable[..., PredictionLog]) -> None:
    log = open_log(fsync_ms=60_000, max_pending=3)
    log.append(lines(0, 2))
    assert not log.full
    log.append(lines(2, 1))
    assert log.full


def test_a_failed_write_raises_is_counted_and_the_next_goes_to_a_new_segment(
    open_log: Callable[..., PredictionLog], metrics: ServingMetrics
) -> None:
    log = open_log()
    before = sample(metrics, "loopline_prediction_log_failures_total")
    broken = log.segments[-1]
    os.close(broken.fd)
    broken.fd = os.open(broken.path, os.O_RDONLY)  # writes now fail with EBADF
    with pytest.raises(LogUnavailable, match="write failed"):
        log.append(lines(0, 1))
    assert sample(metrics, "loopline_prediction_log_failures_total") == before + 1
    log.append(lines(1, 1))
    assert log.segments[-1] is not broken
    assert [r["request_id"] for r in read_records(log.directory)] == ["r1"]


def test_a_live_segment_cannot_be_claimed_an_abandoned_one_can(
    open_log: Callable[..., PredictionLog],
) -> None:
    log = open_log()
    log.append(lines(0, 1))
    path = log.segments[-1].path
    assert Segment.claim(path) is None
    log.close(timeout=1)
    claimed = Segment.claim(path)
    assert claimed is not None
    assert claimed.retired
    assert claimed.size == path.stat().st_size
    claimed.release(delete=False)


def test_a_torn_line_is_skipped(tmp_path: Path) -> None:
    (tmp_path / f"a{SUFFIX}").write_bytes(b'{"request_id": "r0"}\n{"request_id": "r1"')
    assert [r["request_id"] for r in read_records(tmp_path)] == ["r0"]
