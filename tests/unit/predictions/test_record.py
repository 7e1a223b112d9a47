"""The prediction record: one encoder, one decoder, and a decoder that names what is wrong."""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pytest

from loopline.predictions import RecordError, ShadowScore, decode, encode
from loopline.predictions.record import FIELDS
from tests.unit.predictions.records import record


def test_a_record_round_trips_field_by_field() -> None:
    for i in (0, 1, 7):
        original = record(i)
        line = encode(original)
        assert line.endswith(b"\n")
        assert line.count(b"\n") == 1
        assert decode(line) == original


def test_a_line_has_one_key_per_field_and_the_id_field_as_data() -> None:
    data = orjson.loads(encode(record(1)))
    assert tuple(data) == FIELDS
    assert (data["id_field"], data["id_value"]) == ("flight_id", "2013-09-01-UA1")
    assert data["timestamp"] == "2026-11-30T12:00:00.001000+00:00"


def test_numpy_values_as_served_are_encoded() -> None:
    served = dataclasses.replace(record(0), features={"temp": np.float64(61.5)}, probability=0.5)
    assert decode(encode(served)).features == {"temp": 61.5}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"request_id": "r0"}', "missing fields"),
    ],
)
def test_what_is_not_a_record_is_refused_with_the_reason(line: bytes, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        decode(line)


def test_a_bad_time_names_its_field() -> None:
    data = orjson.loads(encode(record(0)))
    data["event_timestamp"] = "yesterday"
    with pytest.raises(RecordError, match="event_timestamp"):
        decode(orjson.dumps(data))


def test_a_line_of_an_older_server_decodes_without_latency_or_shadow() -> None:
    data = orjson.loads(encode(record(3)))
    del data["latency_ms"], data["shadow"]
    decoded = decode(orjson.dumps(data))
    assert decoded == record(3)
    assert (decoded.latency_ms, decoded.shadow) == (None, None)


def test_a_shadow_score_round_trips_and_a_bad_one_is_named() -> None:
    shadowed = dataclasses.replace(record(4), latency_ms=2.5, shadow=ShadowScore("v2", 0.75, True))
    assert decode(encode(shadowed)) == shadowed
    data = orjson.loads(encode(shadowed))
    data["shadow"] = {"version": "v2"}
    with pytest.raises(RecordError, match="shadow"):
        decode(orjson.dumps(data))
