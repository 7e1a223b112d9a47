"""Hypothesis strategies for bad input: every native field, and what OIP REST bodies
(corpus_oip.py) and gRPC messages (corpus_grpc.py) build on.

Each case starts from a valid request and applies a few mutations drawn from what a hostile or
broken client sends (hostile values for a field, dropped, repeated or unknown keys and inputs,
wrong datatypes, shapes, sizes, parameters, outputs, headers). A case carries ``tags``: text one
of which a 400 must contain (the field it broke); a case with no mutation must be answered 200.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import strategies as st

from tests.integration.serving.conftest import FRESH, REQUEST

MODEL = "flight-delay"
VALID: dict[str, Any] = {**REQUEST, "flight_id": "f-1", "event_timestamp": FRESH}
KINDS = {name: type(value) for name, value in VALID.items()}
DATATYPES = [
    *("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"),
    *("FP16", "FP32", "FP64", "BYTES"),
]
OIP_TYPE = {str: "BYTES", int: "INT64", float: "FP64"}


@dataclass(frozen=True)
class Raw:
    """JSON text put into a body as is (nesting deeper than orjson will write)."""

    text: bytes


def json_bytes(value: Any) -> bytes:
    """JSON text of ``value``, with ``Raw`` parts and integers past 64 bits (JSON allows them,
    orjson does not write them)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return obj(list(value.items()))
    if isinstance(value, list):
        return b"[" + b",".join(json_bytes(v) for v in value) + b"]"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode()
    return orjson.dumps(value)


def obj(pairs: list[tuple[str, Any]]) -> bytes:
    """A JSON object from key-value pairs, repeated keys kept."""
    return b"{" + b",".join(orjson.dumps(k) + b":" + json_bytes(v) for k, v in pairs) + b"}"


_offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 1),
        max_value=datetime(9999, 12, 31, 23, 59, 59),
        timezones=st.none() | st.just(UTC) | _offsets,
    ).map(datetime.isoformat),
    st.sampled_from(
        [
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00",
            "1899-12-31T23:59:59Z",
            "2013-02-30T00:00:00",
            "yesterday",
            "",
        ]
    ),
    st.text(max_size=30),
)
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
hostile = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**63 - 1, -(2**63), -(2**63) - 1, 2**64, 1e20, -1e20, 1e308, 5e-324]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from([255, 256, 257, 5000, 300_000]).map(lambda n: "ü" * n),
    timestamps,
    st.recursive(
        _scalars,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
        max_leaves=8,
    ),
    st.sampled_from([2, 100, 1000, 1030]).map(lambda n: Raw(b"[" * n + b"]" * n)),
)


def valid_value(name: str) -> st.SearchStrategy[Any]:
    if name == "event_timestamp":
        return st.just(FRESH)
    kind = KINDS[name]
    if kind is str:
        return st.sampled_from([VALID[name], "JFK", "N1"]) | st.text(max_size=10)
    if kind is int:
        return st.integers(0, 23)
    return st.floats(0, 5000)


content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", None]
)
bad_content_types = st.sampled_from(
    ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream", "", "a/b"]
)


@dataclass
class HttpCase:
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)

    @property
    def valid(self) -> bool:
        return not self.tags


@st.composite
def native_pairs(draw: st.DrawFn, tags: set[str]) -> list[tuple[str, Any]]:
    """One native request object's pairs, with mutations whose tags go into ``tags``."""
    pairs = [(name, draw(valid_value(name))) for name in VALID]
    for name in draw(st.lists(st.sampled_from(list(VALID)), max_size=3, unique=True)):
        action = draw(st.sampled_from(["hostile", "drop", "repeat"]))
        index = [k for k, _ in pairs].index(name) if name in dict(pairs) else None
        if index is None:
            continue
        if action == "hostile":
            pairs[index] = (name, draw(hostile))
            tags.add(f"'{name}'")
        elif action == "drop":
            del pairs[index]
            tags.add(f"'{name}'")
        else:
            pairs.append((name, draw(hostile)))
            tags.update({"appears more than once", f"'{name}'"})
    if draw(one_in(10)):
        key = draw(st.text(min_size=1, max_size=50))  # may be a field's name, dropped or not
        pairs.append((key, draw(hostile)))
        tags.update({"unknown field", "appears more than once", f"field {key!r}"})
    return pairs


@st.composite
def native_cases(draw: st.DrawFn, batch: bool) -> HttpCase:
    tags: set[str] = set()
    count = draw(st.integers(1, 3)) if batch else 1
    items = [draw(native_pairs(tags)) for _ in range(count)]
    body = b"[" + b",".join(obj(p) for p in items) + b"]" if batch else obj(items[0])
    shape = draw(st.sampled_from(["object"] * 18 + ["other", "cut"]))
    if shape == "other":
        body, tags = json_bytes(draw(hostile)), {"body", "JSON", "field", "expected"}
    elif shape == "cut":
        body, tags = body[: draw(st.integers(0, len(body) - 1))], {"JSON", "body"}
    case = HttpCase("/predict_batch" if batch else "/predict", body, tags=tags)
    return with_content_type(draw, case)


JSON_LIMITS = {"not valid JSON", "nested too deeply"}
"""What a hostile value nested past orjson's depth limit (``Raw``) is refused with."""


def with_content_type(draw: st.DrawFn, case: HttpCase) -> HttpCase:
    if case.tags:
        case.tags |= JSON_LIMITS
    if draw(one_in(15)):
        case.headers["content-type"] = draw(bad_content_types)
        case.tags.add("Content-Type")
    else:
        content_type = draw(content_types)
        if content_type is not None:
            case.headers["content-type"] = content_type
    return case


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in ``n`` draws (``integers`` would favour its bounds)."""
    return st.sampled_from([False] * (n - 1) + [True])
