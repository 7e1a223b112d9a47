"""The prediction log: written before the answer, fsynced soon after, bounded, never silent."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loopline.predictions import LogUnavailable, PredictionLog, read_segments
from loopline.predictions.writer import SUFFIX, Segment
from tests.unit.predictions.records import Counts, records


def ids(directory: Path) -> list[str]:
    return [r.request_id for r in read_segments(directory)]


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def counts() -> Counts:
    return Counts()


@pytest.fixture
def open_log(tmp_path: Path, counts: Counts) -> Iterator[Callable[..., PredictionLog]]:
    logs: list[PredictionLog] = []

    def make(**options: int | float) -> PredictionLog:
        settings = {"fsync_ms": 10.0, "segment_bytes": 1 << 20, "max_pending": 1000, **options}
        log = PredictionLog(tmp_path / "log", counters=counts, **settings)  # type: ignore[arg-type]
        log.open()
        logs.append(log)
        return log

    yield make
    for log in logs:
        if log.segments:
            log.close(timeout=1)


def test_records_are_readable_as_soon_as_appended_and_durable_soon_after(
    open_log: Callable[..., PredictionLog], counts: Counts
) -> None:
    log = open_log(fsync_ms=10)
    log.append(records(0, 3))
    assert ids(log.directory) == ["r0", "r1", "r2"]
    wait_for(lambda: log.pending == 0)
    assert counts.durable == {"file": 3}
    assert counts.pending[-1] == 0


def test_fsync_zero_makes_each_append_durable_before_it_returns(
    open_log: Callable[..., PredictionLog],
) -> None:
    log = open_log(fsync_ms=0)
    log.append(records(0, 2))
    assert (log.written, log.pending) == (2, 0)


def test_segments_rotate_and_keep_their_order(open_log: Callable[..., PredictionLog]) -> None:
    log = open_log(segment_bytes=1024)
    for start in range(0, 200, 10):
        log.append(records(start, 10))
    log.close(timeout=1)
    assert len(list(log.directory.glob(f"*{SUFFIX}"))) > 3
    assert ids(log.directory) == [f"r{i}" for i in range(200)]
    assert log.pending == 0


def test_the_queue_is_bounded(open_log: Callable[..., PredictionLog]) -> None:
    log = open_log(fsync_ms=60_000, max_pending=3)
    log.append(records(0, 2))
    assert not log.full
    log.append(records(2, 1))
    assert log.full


def test_a_failed_write_raises_is_counted_and_the_next_goes_to_a_new_segment(
    open_log: Callable[..., PredictionLog], counts: Counts
) -> None:
    log = open_log()
    broken = log.segments[-1]
    os.close(broken.fd)
    broken.fd = os.open(broken.path, os.O_RDONLY)  # writes now fail with EBADF
    with pytest.raises(LogUnavailable, match="write failed"):
        log.append(records(0, 1))
    assert counts.failed == {"file": 1}
    log.append(records(1, 1))
    assert log.segments[-1] is not broken
    assert ids(log.directory) == ["r1"]


def test_a_live_segment_cannot_be_claimed_an_abandoned_one_can(
    open_log: Callable[..., PredictionLog],
) -> None:
    log = open_log()
    log.append(records(0, 1))
    path = log.segments[-1].path
    assert Segment.claim(path) is None
    log.close(timeout=1)
    claimed = Segment.claim(path)
    assert claimed is not None
    assert claimed.retired
    assert claimed.size == path.stat().st_size
    claimed.release(delete=False)


def test_a_segment_left_under_the_same_name_is_never_replaced(
    open_log: Callable[..., PredictionLog], tmp_path: Path
) -> None:
    """A restarted container's worker can have the pid of the one before it, within a second."""
    directory = tmp_path / "log"
    directory.mkdir()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    left = [directory / f"{stamp}-{os.getpid()}-{n:05d}{SUFFIX}" for n in (1, 2)]
    for path in left:
        path.write_bytes(b"left by the process before\n")
    log = open_log()
    log.append(records(0, 1))
    assert all(path.read_bytes() == b"left by the process before\n" for path in left)
    assert log.segments[-1].path not in left
    assert ids(directory) == ["r0"]
