"""The columnar reader gives what ``read_segments`` + ``decode`` give, folded the same way."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest

from loopline.predictions import encode, read_segments
from loopline.predictions.columns import ColumnFold, Columns, read_columns
from loopline.predictions.record import ShadowScore
from loopline.predictions.writer import SUFFIX
from tests.unit.predictions.records import START, record

NUMERIC = ["distance", "temp", "dep_delay_mean_1h"]
CATEGORICAL = ["carrier", "sched_hour", "origin"]


def line(i: int, **changes: object) -> bytes:
    return encode(dataclasses.replace(record(i), **changes))  # type: ignore[arg-type]


def with_unknown_key(i: int) -> bytes:
    data = orjson.loads(encode(record(i)))
    data["a_later_field"] = {"version": "v2", "probability": 0.5}
    return orjson.dumps(data) + b"\n"


def missing(i: int, name: str) -> bytes:
    data = orjson.loads(encode(record(i)))
    del data[name]
    return orjson.dumps(data) + b"\n"


@pytest.fixture
def segments(tmp_path: Path) -> Path:
    """Two segments with lines pyarrow refuses (read line by line), one it reads."""
    (tmp_path / f"a-100-00001{SUFFIX}").write_bytes(
        line(0)
        + line(2, model_version="v2")
        + b'{"request_id": "torn", "timest\n'
        + line(4, features={"temp": 3, "dep_delay_mean_1h": 1.5, "sched_hour": 9})
        + with_unknown_key(6)
        + missing(8, "decision")
        + line(10, timestamp=START + timedelta(days=2))
    )
    (tmp_path / f"a-200-00001{SUFFIX}").write_bytes(
        line(1)
        + line(2)  # the same request id again: read once
        + line(5, request={"carrier": "B6"}, features={})
        + line(7, model="other")
        + missing(9, "id_value")
        + line(13, features={"temp": 1, "sched_hour": None})  # null in the features wins
        + line(14).replace(b'"dep_delay_mean_1h":null', b'"dep_delay_mean_1h":NaN')
        + line(15)[:40]  # being written
    )
    (tmp_path / f"b-100-00002{SUFFIX}").write_bytes(
        line(3, timestamp=START - timedelta(days=1))
        + b'{"timestamp": 1}\n'
        + b"[1, 2]\n"
        + line(11)
        + line(16, latency_ms=3.1, shadow=ShadowScore("v2", 0.1, False))  # a shadow's record
    )
    (tmp_path / "ignored.json").write_bytes(line(12))
    return tmp_path


def folded_records(directory: Path, version: str, **window: object) -> Columns:
    fold = ColumnFold("flight-delay", version, NUMERIC, CATEGORICAL)
    for one in read_segments(directory, **window):  # type: ignore[arg-type]
        fold.add(one)
    return fold.columns()


def folded_lines(directory: Path, version: str, **window: object) -> Columns:
    return read_columns(directory, "flight-delay", version, NUMERIC, CATEGORICAL, **window)  # type: ignore[arg-type]


def assert_same(got: Columns, expected: Columns) -> None:
    assert got.request_ids.tolist() == expected.request_ids.tolist()
    np.testing.assert_array_equal(got.event_times, expected.event_times)
    np.testing.assert_array_equal(got.numbers, expected.numbers)
    assert got.texts.tolist() == expected.texts.tolist()
    assert [type(v) for v in got.texts.ravel()] == [type(v) for v in expected.texts.ravel()]


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize(
    "window",
    [{}, {"since": START, "until": START + timedelta(days=1)}, {"since": START}],
)
def test_the_columns_are_those_of_the_decoded_records(
    segments: Path, version: str, window: dict[str, object]
) -> None:
    assert_same(
        folded_lines(segments, version, **window), folded_records(segments, version, **window)
    )


def test_bad_lines_duplicates_other_models_and_the_window_are_handled(
    segments: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, "loopline.predictions.columns"):
        got = folded_lines(segments, "v1", since=START, until=START + timedelta(days=1))
    assert got.request_ids.tolist() == ["r0", "r1", "r4", "r5", "r6", "r11", "r13", "r16"]
    assert got.numbers[2].tolist() == [1400.0, 3.0, 1.5, 0.125 + 4 / 1e4]
    assert np.isnan(got.numbers[3, :3]).all()  # a name in neither the request nor the features
    assert got.texts[2].tolist() == ["UA", 9, "EWR"]  # the features win over the request
    assert got.texts[3].tolist() == ["B6", None, None]
    assert got.texts[6].tolist() == ["UA", None, "EWR"]
    skipped = sorted(
        r.getMessage().split(" is not")[0].rsplit("/", 1)[-1]
        for r in caplog.records
        if r.levelno == logging.WARNING
    )
    assert skipped == [
        f"a-100-00001{SUFFIX}:3",
        f"a-100-00001{SUFFIX}:6",
        f"a-200-00001{SUFFIX}:5",
        f"a-200-00001{SUFFIX}:7",
        f"a-200-00001{SUFFIX}:8",
        f"b-100-00002{SUFFIX}:2",
        f"b-100-00002{SUFFIX}:3",
    ]
    slow = sorted(
        r.getMessage().rsplit("/", 1)[-1] for r in caplog.records if r.levelno == logging.INFO
    )
    assert slow == [
        f"a-100-00001{SUFFIX}: read line by line",
        f"b-100-00002{SUFFIX}: read line by line",
    ]


def test_a_clock_stepped_back_is_merged_as_read_segments_merges(tmp_path: Path) -> None:
    back = START - timedelta(milliseconds=5)
    (tmp_path / f"a{SUFFIX}").write_bytes(line(0) + line(4) + line(6, timestamp=back) + line(8))
    (tmp_path / f"b{SUFFIX}").write_bytes(line(1) + line(3) + line(4) + line(7))
    got = folded_lines(tmp_path, "v1")
    assert_same(got, folded_records(tmp_path, "v1"))
    assert got.request_ids.tolist() == ["r0", "r1", "r3", "r4", "r6", "r7", "r8"]
