"""Reading segment files back: merged in time order, each request id once, windows, torn lines."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from loopline.predictions import encode, read_segments
from loopline.predictions.writer import SUFFIX
from tests.unit.predictions.records import START, record


def write(path: Path, numbers: list[int]) -> None:
    path.write_bytes(b"".join(encode(record(i)) for i in numbers))


def ids(directory: Path, **window: object) -> list[str]:
    return [r.request_id for r in read_segments(directory, **window)]  # type: ignore[arg-type]


def test_two_workers_segments_are_merged_by_time(tmp_path: Path) -> None:
    write(tmp_path / f"a-100-00001{SUFFIX}", [0, 2, 4, 6])
    write(tmp_path / f"a-200-00001{SUFFIX}", [1, 3, 5])
    write(tmp_path / f"b-100-00002{SUFFIX}", [7, 9])
    assert ids(tmp_path) == [f"r{i}" for i in range(8)] + ["r9"]


def test_a_record_logged_twice_is_read_once(tmp_path: Path) -> None:
    write(tmp_path / f"a{SUFFIX}", [0, 1, 2])
    write(tmp_path / f"b{SUFFIX}", [1, 2, 3])
    assert ids(tmp_path) == ["r0", "r1", "r2", "r3"]


def test_a_window_is_half_open(tmp_path: Path) -> None:
    write(tmp_path / f"a{SUFFIX}", list(range(10)))
    since, until = START + timedelta(milliseconds=3), START + timedelta(milliseconds=6)
    assert ids(tmp_path, since=since, until=until) == ["r3", "r4", "r5"]


def test_a_torn_line_is_skipped_and_other_files_are_ignored(tmp_path: Path) -> None:
    torn = encode(record(0)) + encode(record(1))[:40]
    (tmp_path / f"a{SUFFIX}").write_bytes(torn)
    (tmp_path / f"a{SUFFIX}.shipped").write_text("12")
    (tmp_path / "b.open").write_bytes(encode(record(5)))
    assert ids(tmp_path) == ["r0"]
