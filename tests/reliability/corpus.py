"""Hypothesis strategies for bad input: every native field, OIP REST bodies and gRPC messages.

Each case starts from a valid request and applies a few mutations drawn from what a hostile or
broken client sends (hostile values for a field, dropped, repeated or unknown keys and inputs,
wrong datatypes, shapes, sizes, parameters, outputs, headers). A case carries ``tags``: text one
of which a 400 must contain (the field it broke); a case with no mutation must be answered 200.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import numpy as np
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


def _json(value: Any) -> bytes:
    """JSON text of ``value``, with ``Raw`` parts and integers past 64 bits (JSON allows them,
    orjson does not write them)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return obj(list(value.items()))
    if isinstance(value, list):
        return b"[" + b",".join(_json(v) for v in value) + b"]"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode()
    return orjson.dumps(value)


def obj(pairs: list[tuple[str, Any]]) -> bytes:
    """A JSON object from key-value pairs, repeated keys kept."""
    return b"{" + b",".join(orjson.dumps(k) + b":" + _json(v) for k, v in pairs) + b"}"


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
        body, tags = _json(draw(hostile)), {"body", "JSON", "field", "expected"}
    elif shape == "cut":
        body, tags = body[: draw(st.integers(0, len(body) - 1))], {"JSON", "body"}
    case = HttpCase("/predict_batch" if batch else "/predict", body, tags=tags)
    return _with_content_type(draw, case)


JSON_LIMITS = {"not valid JSON", "nested too deeply"}
"""What a hostile value nested past orjson's depth limit (``Raw``) is refused with."""


def _with_content_type(draw: st.DrawFn, case: HttpCase) -> HttpCase:
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


def _tensor(name: str, values: list[Any]) -> dict[str, Any]:
    return {"name": name, "datatype": OIP_TYPE[KINDS[name]], "shape": [len(values)], "data": values}


def _binary(tensor: dict[str, Any]) -> bytes:
    """The binary form of a tensor's data (empty where its values do not fit its datatype)."""
    if tensor["datatype"] == "BYTES":
        encoded = [str(v).encode() for v in tensor["data"]]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    dtype = np.int64 if tensor["datatype"] == "INT64" else np.float64
    try:
        return np.asarray(tensor["data"], dtype=dtype).tobytes()
    except (TypeError, ValueError, OverflowError):
        return b""


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in ``n`` draws (``integers`` would favour its bounds)."""
    return st.sampled_from([False] * (n - 1) + [True])


OIP_MUTATIONS = [
    "datatype",
    "shape",
    "data",
    "rows",
    "duplicate",
    "drop",
    "unknown",
    "parameters",
    "input_parameters",
    "outputs",
    "id",
    "binary",
    "tail",
    "header",
    "json",
    "path",
]


@st.composite
def oip_cases(draw: st.DrawFn) -> HttpCase:
    rows = draw(st.integers(1, 3))
    tensors = [_tensor(n, [draw(valid_value(n)) for _ in range(rows)]) for n in VALID]
    request: dict[str, Any] = {"id": "case", "inputs": tensors}
    tags: set[str] = set()
    binary = b""
    model, version = MODEL, None
    header: str | None = None
    truncate = False
    for mutation in draw(st.lists(st.sampled_from(OIP_MUTATIONS), max_size=2, unique=True)):
        tensor = tensors[draw(st.integers(0, len(tensors) - 1))] if tensors else None
        label = f"'{tensor['name']}'" if tensor else "inputs"
        if mutation in ("datatype", "shape", "data", "rows", "duplicate", "drop"):
            tags.update({label, "rows, other inputs have"})
        if mutation == "datatype" and tensor:
            tensor["datatype"] = draw(st.sampled_from([*DATATYPES, "FLOAT", "int64"]) | st.text())
        elif mutation == "shape" and tensor:
            dims = st.integers(-2, 2**40) | st.booleans() | st.floats() | st.text(max_size=3)
            tensor["shape"] = draw(st.lists(dims, max_size=4))
        elif mutation == "data" and tensor:
            tensor["data"] = draw(st.lists(hostile, max_size=4) | hostile)
        elif mutation == "rows" and tensor:
            count = draw(st.sampled_from([1001, 5000]))
            first = tensor.get("data")
            first = first[:1] if isinstance(first, list) else [first]
            tensor["shape"], tensor["data"] = [count], first * count
        elif mutation == "duplicate" and tensor:
            tensors.append(dict(tensor))
        elif mutation == "drop" and tensor:
            tensors.remove(tensor)
        elif mutation == "unknown":
            tensors.append({"name": draw(st.text(max_size=50)), "datatype": "BYTES", "shape": [1]})
            tensors[-1]["data"] = ["x"]
            tags.update({"unknown input", "input"})
        elif mutation == "parameters":
            request["parameters"] = draw(hostile | st.fixed_dictionaries({}, optional=_params))
            tags.add("parameters")
        elif mutation == "input_parameters" and tensor:
            tensor["parameters"] = draw(hostile | st.fixed_dictionaries({}, optional=_params))
            tags.update({label, "binary"})
        elif mutation == "outputs":
            names = st.sampled_from(["probability", "decision", "request_id"]) | st.text()
            outputs = st.lists(st.fixed_dictionaries({"name": names}, optional=_out_params))
            request["outputs"] = draw(hostile | outputs)
            tags.update({"outputs", "output"})
        elif mutation == "id":
            request["id"] = draw(hostile)
            tags.add("id")
        elif mutation in ("binary", "tail") and tensor and "data" in tensor:
            raw = _binary(tensor) if isinstance(tensor["data"], list) else b""
            if mutation == "tail":
                raw += draw(st.binary(min_size=1, max_size=16))
            del tensor["data"]
            size = draw(st.just(len(raw)) | hostile) if mutation == "binary" else len(raw)
            tensor["parameters"] = {"binary_data_size": size}
            binary += raw
            header = "auto"
            tags.update({label, "binary", "body"})
        elif mutation == "header":
            header = draw(st.text(alphabet="0123456789x-+", max_size=14))
            tags.update({"Inference-Header-Content-Length", "JSON", "body"})
        elif mutation == "json":
            truncate = True
            tags.update({"JSON", "body"})
        elif mutation == "path":
            tags.add("model")
            model = draw(st.text(min_size=1) | st.just(MODEL))
            version = draw(st.none() | st.text(max_size=5) | st.just("v1"))
    head = _json(request)
    if truncate:
        head = head[: draw(st.integers(0, len(head) - 1))]
    headers = {}
    if header is not None:
        headers["inference-header-content-length"] = str(len(head)) if header == "auto" else header
    path = f"/v2/models/{quote(model, safe='')}"
    path += f"/versions/{quote(version, safe='')}/infer" if version is not None else "/infer"
    case = HttpCase(path, head + binary, headers, tags)
    return _with_content_type(draw, case)


_params = {"binary_data_size": hostile, "binary_data_output": hostile, "other": hostile}
_out_params = {"parameters": hostile | st.fixed_dictionaries({"binary_data": hostile})}
