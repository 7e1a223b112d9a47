"""Open Inference Protocol v2: tensors to rows and predictions to tensors, for REST and gRPC.

The model's inputs are the ``InputSchema`` fields, one tensor each, shape ``[-1]`` (``[N, 1]`` is
accepted too): strings as ``BYTES``, integers as ``INT64``, numbers as ``FP64`` (any integer or
float datatype is accepted where the values fit). ``flight_id`` (the spec's request id) and
``event_timestamp`` are optional ``BYTES`` inputs. Outputs: ``request_id`` (BYTES),
``probability`` (FP64), ``decision`` (BOOL) and ``status_<view>`` (BYTES) per feature view.

Both transports carry tensors either as typed values (JSON ``data``, gRPC ``contents``) or raw
little-endian bytes (the REST binary data extension, gRPC ``raw_*_contents``); ``BYTES`` elements
are raw as a 4-byte length and the bytes. This module converts both; ``http`` and
``grpc_server`` only frame them.

Everything is checked before a request is served, so none is answered with an error after its
prediction was logged: each input named once, a shape of at most ``max_request_rows`` rows
(before its values are decoded), typed values that fit their datatype, the outputs asked for.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopline.errors import BadRequest, brief
from loopline.serving.core import Prediction
from loopline.serving.schema import OIP_DATATYPE, InputSchema, Row, columns_to_rows
from loopline.serving.served import ServedModel

PLATFORM = "loopline_pytorch"
EXTENSIONS = ["binary_tensor_data"]
NUMPY = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
_INT_RANGES = {
    name: (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
    for name, dtype in NUMPY.items()
    if name.startswith(("INT", "UINT"))
}
_FLOAT_MAX = {name: float(np.finfo(NUMPY[name]).max) for name in ("FP16", "FP32", "FP64")}


@dataclass(slots=True)  # not frozen: a frozen init costs 3x, and a request makes 15 of these
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    values: list[Any]


def decode(
    name: str, datatype: str, shape: Sequence[Any], data: Any, raw: bytes | None, max_rows: int
) -> Tensor:
    """An input tensor's values, flattened: from JSON/gRPC typed ``data`` or ``raw`` bytes.

    Its shape must be ``[N]`` or ``[N, 1]`` with N at most ``max_rows``, checked before any value
    is decoded; typed values must fit the datatype (``UINT8`` 300 does not) and nest no deeper
    than the shape."""
    label = f"input {brief(name)}"
    if datatype != "BYTES" and datatype not in NUMPY:
        raise BadRequest(f"{label}: unknown datatype {brief(datatype)}")
    dims = _shape(label, shape, max_rows)
    expected = math.prod(dims)
    if raw is None:
        values = _flatten(label, data, len(dims), expected)
        _check_typed(label, datatype, values)
    elif datatype == "BYTES":
        values = _split_bytes(label, raw, expected)
    else:
        values = _frombuffer(label, datatype, raw, expected)
    if len(values) != expected:
        raise BadRequest(f"{label}: shape {dims} needs {expected} values, got {len(values)}")
    if datatype == "BYTES":
        values = [_text(label, v) for v in values]
    return Tensor(name, datatype, dims, values)


def to_rows(
    schema: InputSchema, tensors: Sequence[Tensor], request_id: str | None = None
) -> list[Row]:
    """The rows the input tensors describe: one per element of the first dimension, named
    after the request's ``id`` (validated, ``schema.check_request_id``) when it has one."""
    known = schema.oip_datatypes
    columns: dict[str, list[Any]] = {}
    rows: int | None = None
    for tensor in tensors:
        expected = known.get(tensor.name)
        label = f"input {brief(tensor.name)}"
        if expected is None:
            raise BadRequest(f"unknown {label}; inputs: {schema.describe()}")
        if tensor.name in columns:
            raise BadRequest(f"{label} appears more than once")
        if expected == "BYTES" and tensor.datatype != "BYTES":
            raise BadRequest(f"{label}: datatype {tensor.datatype}, expected BYTES")
        if (
            expected != "BYTES"
            and tensor.datatype in ("BYTES", "BOOL")
            and tensor.name != schema.id_field
        ):
            raise BadRequest(f"{label}: datatype {tensor.datatype}, expected {expected}")
        if rows is not None and tensor.shape[0] != rows:
            raise BadRequest(f"{label}: {tensor.shape[0]} rows, other inputs have {rows}")
        rows = tensor.shape[0]
        columns[tensor.name] = tensor.values
    if not rows:
        raise BadRequest("the request has no inputs or no rows")
    return columns_to_rows(schema, columns, rows, request_id)


def outputs(views: Sequence[str], predictions: Sequence[Prediction]) -> list[Tensor]:
    n = [len(predictions)]
    tensors = [
        Tensor("request_id", "BYTES", n, [p.request_id for p in predictions]),
        Tensor("probability", "FP64", n, [p.probability for p in predictions]),
        Tensor("decision", "BOOL", n, [p.decision for p in predictions]),
    ]
    tensors += [
        Tensor(f"status_{v}", "BYTES", n, [p.status[v] for p in predictions]) for v in views
    ]
    return tensors


def check_outputs(requested: Sequence[str], views: Sequence[str]) -> None:
    """Refuse unknown or repeated output names, before the request is served (and logged)."""
    known = [tensor.name for tensor in outputs(views, [])]
    seen: set[str] = set()
    for name in requested:
        if name not in known:
            raise BadRequest(f"unknown output {brief(name)}; outputs: {', '.join(known)}")
        if name in seen:
            raise BadRequest(f"output {brief(name)} is asked for more than once")
        seen.add(name)


def select(tensors: list[Tensor], requested: Sequence[str]) -> list[Tensor]:
    """The requested outputs in the requested order; all of them when none are named."""
    if not requested:
        return tensors
    by_name = {tensor.name: tensor for tensor in tensors}
    unknown = [name for name in requested if name not in by_name]
    if unknown:
        raise BadRequest(f"unknown output {unknown[0]!r}; outputs: {', '.join(by_name)}")
    return [by_name[name] for name in requested]


def raw(tensor: Tensor) -> bytes:
    """The binary form of an output tensor."""
    if tensor.datatype == "BYTES":
        encoded = [str(v).encode() for v in tensor.values]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    return np.asarray(tensor.values, dtype=NUMPY[tensor.datatype]).tobytes()


def model_metadata(
    served: ServedModel, schema: InputSchema, views: Sequence[str]
) -> dict[str, Any]:
    inputs = [
        {"name": n, "datatype": OIP_DATATYPE[t], "shape": [-1]} for n, t in schema.fields.items()
    ]
    inputs += [{"name": n, "datatype": "BYTES", "shape": [-1]} for n in schema.optional]
    outputs_ = [{"name": t.name, "datatype": t.datatype, "shape": [-1]} for t in outputs(views, [])]
    return {
        "name": served.name,
        "versions": [served.version],
        "platform": PLATFORM,
        "inputs": inputs,
        "outputs": outputs_,
    }


def server_metadata() -> dict[str, Any]:
    from importlib.metadata import version

    return {"name": "loopline", "version": version("loopline"), "extensions": EXTENSIONS}


def _shape(label: str, shape: Sequence[Any], max_rows: int) -> list[int]:
    if not 1 <= len(shape) <= 2 or any(type(d) is not int or d < 0 for d in shape):
        described = ", ".join(brief(d) for d in shape[:3]) + (", …" if len(shape) > 3 else "")
        raise BadRequest(f"{label}: shape [{described}], expected [N] or [N, 1] (integers)")
    dims = list(shape)
    if len(dims) == 2 and dims[1] != 1:
        raise BadRequest(f"{label}: shape {dims}, expected [N] or [N, 1]")
    if dims[0] > max_rows:
        raise BadRequest(f"{label}: {dims[0]} rows, at most {max_rows} per request")
    return dims


def _flatten(label: str, data: Any, depth: int, limit: int) -> list[Any]:
    """The values of (nested) ``data``, row-major: nested at most ``depth`` deep, and no more
    than ``limit`` + 1 of them collected (enough to tell the count is wrong)."""
    if not isinstance(data, list | tuple):
        raise BadRequest(f"{label}: 'data' must be an array, got {brief(data)}")
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list | tuple):
                if len(stack) >= depth:
                    raise BadRequest(f"{label}: data nested deeper than its shape")
                stack.append(iter(item))
                break
            flat.append(item)
            if len(flat) > limit:
                return flat
        else:
            stack.pop()
    return flat


def _check_typed(label: str, datatype: str, values: list[Any]) -> None:
    """Typed (JSON or gRPC ``contents``) values of ``datatype``: BYTES strings, BOOL booleans,
    integers within the integer type's range, numbers within the float type's."""
    if datatype == "BYTES":
        wrong = [v for v in values if not isinstance(v, str | bytes)]
    elif datatype == "BOOL":
        wrong = [v for v in values if not isinstance(v, bool)]
    elif datatype in _INT_RANGES:
        low, high = _INT_RANGES[datatype]
        wrong = [
            v
            for v in values
            if type(v) is not int or not low <= v <= high  # not bool, not float
        ]
    else:
        largest = _FLOAT_MAX[datatype]
        wrong = [
            v
            for v in values
            if isinstance(v, bool) or not isinstance(v, int | float) or abs(v) > largest
        ]
    if wrong:
        raise BadRequest(f"{label}: {brief(wrong[0])} is not a {datatype} value")


def _frombuffer(label: str, datatype: str, raw: bytes, expected: int) -> list[Any]:
    dtype = np.dtype(NUMPY[datatype]).newbyteorder("<")
    if len(raw) != expected * dtype.itemsize:
        raise BadRequest(
            f"{label}: {len(raw)} bytes of {datatype}, the shape needs {expected * dtype.itemsize}"
        )
    values: list[Any] = np.frombuffer(raw, dtype=dtype).tolist()
    return values


def _split_bytes(label: str, raw: bytes, expected: int) -> list[Any]:
    """BYTES elements (a 4-byte little-endian length, then the bytes); more than ``expected``
    are not split."""
    values: list[Any] = []
    offset = 0
    while offset < len(raw) and len(values) <= expected:
        if offset + 4 > len(raw):
            raise BadRequest(f"{label}: truncated BYTES element")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise BadRequest(f"{label}: truncated BYTES element")
        values.append(raw[offset : offset + length])
        offset += length
    return values


def _text(label: str, value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise BadRequest(f"{label}: BYTES element is not UTF-8") from None
    return value
