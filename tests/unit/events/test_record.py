"""The live event: a strict parser that names the field at fault, one encoder, one decoder."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from loopline.events import (
    Event,
    EventError,
    EventType,
    clock_event_id,
    decode,
    departure_event_id,
    encode,
    outcome_event_id,
    parse,
    weather_event_id,
)

FLIGHT = "20130901-UA1545-EWR"


def departure() -> dict[str, Any]:
    return {
        "event_id": departure_event_id(FLIGHT),
        "event_type": "departure",
        "event_timestamp": "2013-09-01T10:16:00+00:00",
        "keys": {"flight_id": FLIGHT, "origin": "EWR", "carrier": "UA"},
        "payload": {"dep_delay": 2},
    }


def weather() -> dict[str, Any]:
    hour = datetime(2013, 9, 1, 5, tzinfo=UTC)
    payload = dict.fromkeys(
        ("temp", "dewp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib"), 1.5
    )
    return {
        "event_id": weather_event_id("JFK", hour),
        "event_type": "weather",
        "event_timestamp": hour.isoformat(),
        "keys": {"origin": "JFK"},
        "payload": payload | {"wind_gust": None},
    }


def outcome(status: str = "delayed", arr_delay: float | None = 31.0) -> dict[str, Any]:
    return {
        "event_id": outcome_event_id(FLIGHT),
        "event_type": "outcome",
        "event_timestamp": "2013-09-01T13:40:00Z",
        "keys": {"flight_id": FLIGHT},
        "payload": {"status": status, "arr_delay": arr_delay},
    }


def clock() -> dict[str, Any]:
    at = datetime(2013, 9, 1, 5, 10, tzinfo=UTC)
    return {
        "event_id": clock_event_id(at),
        "event_type": "clock",
        "event_timestamp": at.isoformat(),
        "keys": {},
        "payload": {},
    }


def test_a_clock_tick_has_neither_keys_nor_payload() -> None:
    assert clock()["event_id"] == "clock-2013-09-01T05:10:00Z"
    assert parse(clock()).event_type is EventType.CLOCK
    with pytest.raises(EventError, match=r"^keys\.origin: unknown field"):
        parse(clock() | {"keys": {"origin": "JFK"}})
    with pytest.raises(EventError, match=r"^payload\.dep_delay: unknown field"):
        parse(clock() | {"payload": {"dep_delay": 1.0}})


def test_the_reference_event_ids() -> None:
    assert departure_event_id(FLIGHT) == f"dep-{FLIGHT}"
    assert outcome_event_id(FLIGHT) == f"out-{FLIGHT}"
    eastern = timezone(timedelta(hours=-4))
    hour = datetime(2013, 9, 1, 1, 0, tzinfo=eastern)
    assert weather_event_id("JFK", hour) == "wx-JFK-2013-09-01T05:00:00Z"


@pytest.mark.parametrize("make", [departure, weather, outcome, clock])
def test_an_event_round_trips(make: Any) -> None:
    event = parse(make())
    assert decode(encode(event)) == event
    assert encode(decode(encode(event))) == encode(event)
    trusted = decode(encode(event), canonical=True)  # a shard entry: not checked again
    assert trusted == event
    assert {k: type(v) for k, v in trusted.payload.items()} == {
        k: type(v) for k, v in event.payload.items()
    }
    assert trusted.event_timestamp.utcoffset() == timedelta(0)


def test_a_canonical_entry_that_is_not_an_encoded_event_is_refused() -> None:
    for data in (b'{"event_id": "x"}', b'{"event_id": "x", "event_type": "nope"}', b"[]"):
        with pytest.raises(EventError):
            decode(data, canonical=True)


def test_parsing_normalises_numbers_times_and_left_out_nullable_fields() -> None:
    event = parse(departure())
    assert event.event_type is EventType.DEPARTURE
    assert event.payload == {"dep_delay": 2.0}
    assert isinstance(event.payload["dep_delay"], float)
    assert event.event_timestamp == datetime(2013, 9, 1, 10, 16, tzinfo=UTC)

    naive = parse(departure() | {"event_timestamp": "2013-09-01T10:16:00"})
    assert naive.event_timestamp.tzinfo is UTC
    offset = parse(departure() | {"event_timestamp": "2013-09-01T06:16:00-04:00"})
    assert offset.event_timestamp == event.event_timestamp
    assert encode(offset) == encode(event)

    sparse = weather()
    del sparse["payload"]["visib"]
    assert parse(sparse).payload["visib"] is None
    assert parse(outcome()).payload == {"status": "delayed", "arr_delay": 31.0, "delayed": 1}
    cancelled = parse(outcome("cancelled", None))
    assert cancelled.payload == {"status": "cancelled", "arr_delay": None, "delayed": None}


def test_the_wire_form_is_canonical() -> None:
    data = orjson.loads(encode(parse(outcome("on_time", -3))))
    assert list(data) == ["event_id", "event_type", "event_timestamp", "keys", "payload"]
    assert data["event_timestamp"] == "2013-09-01T13:40:00+00:00"
    assert data["payload"] == {"status": "on_time", "arr_delay": -3.0, "delayed": 0}


def broken(make: Any, path: str, value: Any) -> dict[str, Any]:
    """``make()`` with the field at dotted ``path`` set to ``value`` (``...`` deletes it)."""
    data = copy.deepcopy(make())
    *parents, last = path.split(".")
    node = data
    for name in parents:
        node = node[name]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (broken(departure, "event_id", ...), "event_id"),
        (broken(departure, "event_id", ""), "event_id"),
        (broken(departure, "event_id", "x" * 129), "event_id"),
        (broken(departure, "event_id", "a\nb"), "event_id"),
        (broken(departure, "event_id", 7), "event_id"),
        (broken(departure, "event_type", "arrival"), "event_type"),
        (broken(departure, "event_type", ["departure"]), "event_type"),
        (broken(departure, "event_timestamp", "yesterday"), "event_timestamp"),
        (broken(departure, "event_timestamp", 1378030560), "event_timestamp"),
        (broken(departure, "extra", 1), "extra"),
        (broken(departure, "keys", ["EWR"]), "keys"),
        (broken(departure, "keys.carrier", ...), "keys.carrier"),
        (broken(departure, "keys.carrier", 9), "keys.carrier"),
        (broken(departure, "keys.dest", "LAX"), "keys.dest"),
        (broken(departure, "payload", None), "payload"),
        (broken(departure, "payload.dep_delay", ...), "payload.dep_delay"),
        (broken(departure, "payload.dep_delay", None), "payload.dep_delay"),
        (broken(departure, "payload.dep_delay", "2"), "payload.dep_delay"),
        (broken(departure, "payload.dep_delay", True), "payload.dep_delay"),
        (broken(departure, "payload.dep_delay", float("nan")), "payload.dep_delay"),
        (broken(weather, "payload.temp", "warm"), "payload.temp"),
        (broken(weather, "payload.snow", 1.0), "payload.snow"),
        (broken(weather, "keys.flight_id", FLIGHT), "keys.flight_id"),
        (broken(outcome, "payload.status", "late"), "payload.status"),
        (broken(outcome, "payload.status", ...), "payload.status"),
        (broken(outcome, "payload.arr_delay", None), "payload.arr_delay"),
        (broken(outcome, "payload.delayed", 0), "payload.delayed"),
        (broken(outcome, "payload.delayed", True), "payload.delayed"),
        (broken(outcome, "payload.delayed", 1.0), "payload.delayed"),
        (outcome("cancelled", 12.0), "payload.arr_delay"),
        (broken(lambda: outcome("diverted", None), "payload.delayed", 0), "payload.delayed"),
    ],
)
def test_a_bad_event_is_refused_naming_its_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(EventError) as caught:
        parse(data)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    with pytest.raises(EventError) as nested:
        parse(data, where="events[3]")
    assert nested.value.field == f"events[3].{field}"


@pytest.mark.parametrize("value", [None, [], "event", 3])
def test_a_non_object_is_refused_as_a_whole(value: object) -> None:
    with pytest.raises(EventError) as caught:
        parse(value)
    assert caught.value.field == "event"
    with pytest.raises(EventError) as nested:
        parse(value, where="events[0]")
    assert nested.value.field == "events[0]"


def test_decode_refuses_what_is_not_json_and_never_echoes_a_long_value() -> None:
    with pytest.raises(EventError, match="not JSON") as caught:
        decode(b"{nope")
    assert caught.value.field == "event"
    huge = broken(departure, "payload.dep_delay", "9" * 10_000)
    with pytest.raises(EventError) as long:
        decode(orjson.dumps(huge))
    assert len(str(long.value)) < 200


def test_an_event_is_immutable() -> None:
    event = parse(departure())
    assert isinstance(event, Event)
    with pytest.raises(AttributeError):
        event.event_id = "other"  # type: ignore[misc]
