"""The live event: a departure, a weather observation, an outcome or a clock tick, as producers
send it.

An event crosses process boundaries (an HTTP body to ``POST /events``, a Redis Stream entry a
producer ``XADD``s, the ingest consumer, the outcome join), so it is defined once here, with one
parser of decoded JSON, one encoder and one decoder. On the wire it is a JSON object::

    {"event_id": "dep-20130901-UA1545-EWR", "event_type": "departure",
     "event_timestamp": "2013-09-01T10:16:00+00:00",
     "keys": {"flight_id": "20130901-UA1545-EWR", "origin": "EWR", "carrier": "UA"},
     "payload": {"dep_delay": 2.0}}

``parse`` is strict: every field present and typed, no unknown fields, finite numbers, and the
keys and payload fields its type names (docs/events.md). Nullable payload fields may be left
out; they are then ``None``, so a parsed event always carries its type's full payload. A time
without an offset is UTC (``loopline.times``); every time is held and written in UTC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import orjson

from loopline.errors import brief

MAX_ID_CHARS = 128
"""Longest ``event_id`` and entity key value."""


class EventType(StrEnum):
    DEPARTURE = "departure"
    WEATHER = "weather"
    OUTCOME = "outcome"
    CLOCK = "clock"
    """No keys, no payload: "every event stamped before this has been sent". It advances
    ingest's event-time clock (so its watermark) on every shard, so aggregate windows close on
    time when no departure comes to close them (docs/events.md, "Clock ticks")."""


class OutcomeStatus(StrEnum):
    ON_TIME = "on_time"
    DELAYED = "delayed"
    CANCELLED = "cancelled"
    DIVERTED = "diverted"


Value = float | int | str | None


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    """1 to 128 characters; the idempotency key (an event seen twice is applied once)."""
    event_type: EventType
    event_timestamp: datetime
    """When it happened in the world (UTC)."""
    keys: Mapping[str, str]
    """The entity keys its type names (``KEYS``)."""
    payload: Mapping[str, Value]
    """Its type's fields (``PAYLOAD``), nullable ones ``None`` when unknown."""


KEYS: dict[EventType, tuple[str, ...]] = {
    EventType.DEPARTURE: ("flight_id", "origin", "carrier"),
    EventType.WEATHER: ("origin",),
    EventType.OUTCOME: ("flight_id",),
    EventType.CLOCK: (),
}
WEATHER_FIELDS = (
    "temp",
    "dewp",
    "humid",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
)
PAYLOAD: dict[EventType, tuple[str, ...]] = {
    EventType.DEPARTURE: ("dep_delay",),
    EventType.WEATHER: WEATHER_FIELDS,
    EventType.OUTCOME: ("status", "arr_delay", "delayed"),
    EventType.CLOCK: (),
}
_REQUIRED_PAYLOAD = {"dep_delay", "status"}
"""Payload fields that may be neither null nor left out; every other one is nullable."""
FIELDS = ("event_id", "event_type", "event_timestamp", "keys", "payload")
_ARRIVED = {OutcomeStatus.ON_TIME: 0, OutcomeStatus.DELAYED: 1}
"""The label an arrived flight's status implies; cancelled and diverted flights have none."""


class EventError(ValueError):
    """Input that is not an event; ``field`` names where, e.g. ``events[3].payload.dep_delay``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def departure_event_id(flight_id: str) -> str:
    return f"dep-{flight_id}"


def outcome_event_id(flight_id: str) -> str:
    return f"out-{flight_id}"


def clock_event_id(at: datetime) -> str:
    """``clock-<UTC time>``, e.g. ``clock-2013-09-01T05:10:00Z``."""
    return f"clock-{_utc(at):%Y-%m-%dT%H:%M:%SZ}"


def weather_event_id(origin: str, hour: datetime) -> str:
    """``wx-<origin>-<UTC hour>``, e.g. ``wx-JFK-2013-09-01T05:00:00Z``."""
    return f"wx-{origin}-{_utc(hour):%Y-%m-%dT%H:00:00Z}"


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _object(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise EventError(where, f"must be a JSON object, not {brief(value)}")
    return value


def _fields(
    data: dict[str, object], names: tuple[str, ...], where: str, optional: frozenset[str]
) -> None:
    """Unknown fields are refused, and missing required ones, both named."""
    for name in data:
        if name not in names:
            label = name if isinstance(name, str) else brief(name)
            raise EventError(_at(where, label), f"unknown field (expected one of {list(names)})")
    if len(data) < len(names):
        for name in names:
            if name not in data and name not in optional:
                raise EventError(_at(where, name), "missing")


# Every check below names its field only when it fails: ingest parses every event it reads, and
# building the paths of the fields that pass was a fifth of the time (docs/events.md, Measured).


def _text(value: object, where: str, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise EventError(_at(where, name), f"must be a non-empty string, not {brief(value)}")
    if len(value) > MAX_ID_CHARS:
        raise EventError(_at(where, name), f"longer than {MAX_ID_CHARS} characters")
    if not value.isprintable():
        raise EventError(_at(where, name), "has control characters")
    return value


def _number(value: object, where: str, name: str, nullable: bool) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "a number or null" if nullable else "a number"
        raise EventError(_at(where, name), f"must be {kind}, not {brief(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise EventError(_at(where, name), f"must be finite, not {brief(value)}")
    return number


_CHOICES: dict[type[StrEnum], dict[str, StrEnum]] = {
    choices: {str(choice): choice for choice in choices} for choices in (EventType, OutcomeStatus)
}


def _choice(value: object, choices: type[StrEnum], where: str, name: str) -> StrEnum:
    names = _CHOICES[choices]
    if not isinstance(value, str) or value not in names:
        raise EventError(_at(where, name), f"must be one of {list(names)}, not {brief(value)}")
    return names[value]


def _timestamp(value: object, where: str) -> datetime:
    if not isinstance(value, str):
        raise EventError(where, f"must be an ISO 8601 string, not {brief(value)}")
    try:
        return _utc(datetime.fromisoformat(value))
    except ValueError:
        raise EventError(where, f"not an ISO 8601 time: {brief(value)}") from None


def _outcome(data: dict[str, object], where: str) -> dict[str, Value]:
    status = OutcomeStatus(_choice(data["status"], OutcomeStatus, where, "status"))
    arr_delay = _number(data.get("arr_delay"), where, "arr_delay", nullable=True)
    delayed = data.get("delayed")
    if status in _ARRIVED:
        if arr_delay is None:
            raise EventError(_at(where, "arr_delay"), f"a flight that is {status} has one")
        if delayed is None:
            delayed = _ARRIVED[status]
        expected = _ARRIVED[status]
        if isinstance(delayed, bool) or not isinstance(delayed, int) or delayed != expected:
            raise EventError(_at(where, "delayed"), f"must be {expected} when status is {status}")
    elif arr_delay is not None or delayed is not None:
        name = "arr_delay" if arr_delay is not None else "delayed"
        raise EventError(_at(where, name), f"must be null when status is {status}")
    return {"status": str(status), "arr_delay": arr_delay, "delayed": delayed}


_OPTIONAL = {kind: frozenset(names) - _REQUIRED_PAYLOAD for kind, names in PAYLOAD.items()}
_NONE: frozenset[str] = frozenset()


def _payload(event_type: EventType, value: object, where: str) -> dict[str, Value]:
    data = _object(value, where)
    names = PAYLOAD[event_type]
    _fields(data, names, where, optional=_OPTIONAL[event_type])
    if event_type is EventType.OUTCOME:
        return _outcome(data, where)
    return {
        name: _number(data.get(name), where, name, nullable=name not in _REQUIRED_PAYLOAD)
        for name in names
    }


def parse(obj: object, where: str = "") -> Event:
    """The event in decoded JSON ``obj``; ``EventError`` names the first field at fault, under
    ``where`` (e.g. ``events[3]``) when given."""
    data = _object(obj, where or "event")
    _fields(data, FIELDS, where, optional=_NONE)
    event_id = _text(data["event_id"], where, "event_id")
    event_type = EventType(_choice(data["event_type"], EventType, where, "event_type"))
    timestamp = _timestamp(data["event_timestamp"], _at(where, "event_timestamp"))
    keys_at = _at(where, "keys")
    raw_keys = _object(data["keys"], keys_at)
    _fields(raw_keys, KEYS[event_type], keys_at, optional=_NONE)
    keys = {name: _text(raw_keys[name], keys_at, name) for name in KEYS[event_type]}
    payload = _payload(event_type, data["payload"], _at(where, "payload"))
    return Event(event_id, event_type, timestamp, keys, payload)


def encode(event: Event) -> bytes:
    """Canonical JSON: fields in ``FIELDS`` order, the time in RFC 3339 UTC."""
    return orjson.dumps(
        {
            "event_id": event.event_id,
            "event_type": str(event.event_type),
            "event_timestamp": event.event_timestamp.isoformat(),
            "keys": dict(event.keys),
            "payload": dict(event.payload),
        }
    )


def decode(data: bytes, *, canonical: bool = False) -> Event:
    """The event ``encode`` wrote (or a producer ``XADD``ed); ``EventError`` names the fault.

    ``canonical``: ``data`` is ``encode``'s output of an event ``parse`` accepted (a shard
    stream's entry, which only ingest writes): the fields are taken as they are, without
    checking them a second time (a fifth of the cost)."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise EventError("event", f"not JSON: {error}") from None
    if not canonical:
        return parse(obj)
    try:
        return Event(
            obj["event_id"],
            EventType(obj["event_type"]),
            datetime.fromisoformat(obj["event_timestamp"]),
            obj["keys"],
            obj["payload"],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise EventError("event", f"not an encoded event: {error!r}") from None
