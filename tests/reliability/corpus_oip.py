"""Hypothesis strategies for bad OIP v2 REST bodies: a valid inference request with a few of
``OIP_MUTATIONS`` applied (tests/reliability/corpus.py says how cases are built and tagged)."""

from __future__ import annotations

import struct
from typing import Any
from urllib.parse import quote

import numpy as np
from hypothesis import strategies as st

from tests.reliability.corpus import (
    DATATYPES,
    KINDS,
    MODEL,
    OIP_TYPE,
    VALID,
    HttpCase,
    hostile,
    json_bytes,
    valid_value,
    with_content_type,
)


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
    head = json_bytes(request)
    if truncate:
        head = head[: draw(st.integers(0, len(head) - 1))]
    headers = {}
    if header is not None:
        headers["inference-header-content-length"] = str(len(head)) if header == "auto" else header
    path = f"/v2/models/{quote(model, safe='')}"
    path += f"/versions/{quote(version, safe='')}/infer" if version is not None else "/infer"
    case = HttpCase(path, head + binary, headers, tags)
    return with_content_type(draw, case)


_params = {"binary_data_size": hostile, "binary_data_output": hostile, "other": hostile}
_out_params = {"parameters": hostile | st.fixed_dictionaries({"binary_data": hostile})}
