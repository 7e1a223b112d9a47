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
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopline.errors import BadRequest
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


@dataclass(slots=True)  # not frozen: a frozen init costs 3x, and a request makes 15 of these
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    values: list[Any]


def decode(name: str, datatype: str, shape: Sequence[int], data: Any, raw: bytes | None) -> Tensor:
    """An input tensor's values, flattened: from JSON/gRPC typed ``data`` or ``raw`` bytes."""
    if datatype != "BYTES" and datatype not in NUMPY:
        raise BadRequest(f"input {name!r}: unknown datatype {datatype!r}")
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise BadRequest(f"input {name!r}: invalid shape {list(shape)}")
    if raw is not None:
        values = (
            _split_bytes(name, raw) if datatype == "BYTES" else _frombuffer(name, datatype, raw)
        )
    else:
        values = _flatten(data)
    if len(values) != math.prod(shape):
        expected = math.prod(shape)
        raise BadRequest(
            f"input {name!r}: shape {list(shape)} needs {expected} values, got {len(values)}"
        )
    if datatype == "BYTES":
        values = [_text(name, v) for v in values]
    return Tensor(name, datatype, list(shape), values)


def to_rows(schema: InputSchema, tensors: Sequence[Tensor]) -> list[Row]:
    """The rows the input tensors describe: one per element of the first dimension."""
    known = schema.oip_datatypes
    columns: dict[str, list[Any]] = {}
    rows: int | None = None
    for tensor in tensors:
        expected = known.get(tensor.name)
        if expected is None:
            raise BadRequest(f"unknown input {tensor.name!r}; inputs: {schema.describe()}")
        if expected == "BYTES" and tensor.datatype != "BYTES":
            raise BadRequest(f"input {tensor.name!r}: datatype {tensor.datatype}, expected BYTES")
        if (
            expected != "BYTES"
            and tensor.datatype in ("BYTES", "BOOL")
            and tensor.name != schema.id_field
        ):
            raise BadRequest(
                f"input {tensor.name!r}: datatype {tensor.datatype}, expected {expected}"
            )
        if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise BadRequest(f"input {tensor.name!r}: shape {tensor.shape}, expected [N] or [N, 1]")
        if rows is not None and tensor.shape[0] != rows:
            raise BadRequest(
                f"input {tensor.name!r}: {tensor.shape[0]} rows, other inputs have {rows}"
            )
        rows = tensor.shape[0]
        columns[tensor.name] = tensor.values
    if not rows:
        raise BadRequest("the request has no inputs or no rows")
    return columns_to_rows(schema, columns, rows)


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


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list | tuple):
        raise BadRequest("tensor data must be a (nested) array")
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list | tuple):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _frombuffer(name: str, datatype: str, raw: bytes) -> list[Any]:
    dtype = np.dtype(NUMPY[datatype]).newbyteorder("<")
    if len(raw) % dtype.itemsize:
        raise BadRequest(f"input {name!r}: {len(raw)} bytes is not a whole number of {datatype}")
    values: list[Any] = np.frombuffer(raw, dtype=dtype).tolist()
    return values


def _split_bytes(name: str, raw: bytes) -> list[Any]:
    values, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise BadRequest(f"input {name!r}: truncated BYTES element")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise BadRequest(f"input {name!r}: truncated BYTES element")
        values.append(raw[offset : offset + length])
        offset += length
    return values


def _text(name: str, value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise BadRequest(f"input {name!r}: BYTES element is not UTF-8") from None
    return value
