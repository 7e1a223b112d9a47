"""Hypothesis strategies for bad OIP gRPC calls: ``ModelInferRequest`` messages mutated the way
``corpus`` mutates REST bodies, and bytes that may not parse as any message at all."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from loopline.serving.grpc_server import CONTENTS, pb
from tests.reliability.corpus import DATATYPES, KINDS, MODEL, OIP_TYPE, VALID, valid_value

METHODS = ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata")
INT64 = st.integers(-(2**63), 2**63 - 1)
_CONTENT_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "bool_contents": st.booleans(),
    "int_contents": st.integers(-(2**31), 2**31 - 1),
    "int64_contents": INT64,
    "uint_contents": st.integers(0, 2**32 - 1),
    "uint64_contents": st.integers(0, 2**64 - 1),
    "fp32_contents": st.floats(width=32),
    "fp64_contents": st.floats(),
    "bytes_contents": st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
}
MUTATIONS = [
    "datatype",
    "shape",
    "contents",
    "duplicate",
    "drop",
    "unknown",
    "raw_short",
    "raw_long",
    "raw_and_typed",
    "model",
    "id",
    "outputs",
    "rows",
]


@dataclass
class GrpcCase:
    message: Any
    tags: set[str] = field(default_factory=set)


def _raw(datatype: str, values: list[Any]) -> bytes:
    if datatype == "BYTES":
        encoded = [str(v).encode() for v in values]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    return np.asarray(values, dtype=np.int64 if datatype == "INT64" else np.float64).tobytes()


@st.composite
def infer_cases(draw: st.DrawFn) -> GrpcCase:
    rows = draw(st.integers(1, 3))
    use_raw = draw(st.booleans())
    inputs: list[dict[str, Any]] = []
    for name in VALID:
        values = [draw(valid_value(name)) for _ in range(rows)]
        inputs.append({"name": name, "datatype": OIP_TYPE[KINDS[name]], "values": values})
    spec: dict[str, Any] = {"model": MODEL, "version": "", "id": "case", "outputs": []}
    tags: set[str] = set()
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), max_size=2, unique=True)):
        item = inputs[draw(st.integers(0, len(inputs) - 1))] if inputs else None
        label = f"'{item['name']}'" if item else "inputs"
        tags.update({label, "rows, other inputs have"} if item else set())
        if mutation == "datatype" and item:
            item["datatype"] = draw(st.sampled_from([*DATATYPES, "FLOAT"]) | st.text(max_size=8))
        elif mutation == "shape" and item:
            item["shape"] = draw(st.lists(INT64, max_size=4))
        elif mutation == "contents" and item:
            where = draw(st.sampled_from(sorted(_CONTENT_VALUES)))
            item["contents"] = (where, draw(st.lists(_CONTENT_VALUES[where], max_size=4)))
        elif mutation == "duplicate" and item:
            inputs.append(dict(item))
        elif mutation == "drop" and item:
            inputs.remove(item)
        elif mutation == "unknown":
            inputs.append({"name": draw(st.text(max_size=50)), "datatype": "BYTES", "values": []})
            tags.update({"unknown input", "input"})
        elif mutation in ("raw_short", "raw_long"):
            use_raw = True
            spec["raw_extra"] = -1 if mutation == "raw_short" else 1
            tags.add("raw_input_contents")
        elif mutation == "raw_and_typed":
            use_raw = True
            spec["typed_too"] = True
            tags.add("both contents and raw_input_contents")
        elif mutation == "model":
            spec["model"] = draw(st.text(max_size=50) | st.just("m" * 100_000))
            spec["version"] = draw(st.sampled_from(["", "v1", "v9"]) | st.text(max_size=5))
        elif mutation == "id":
            spec["id"] = draw(st.text(min_size=200, max_size=400))
            tags.add("id")
        elif mutation == "outputs":
            names = st.sampled_from(["probability", "decision"]) | st.text(max_size=20)
            spec["outputs"] = draw(st.lists(names, max_size=3))
            tags.add("output")
        elif mutation == "rows" and item:
            item["values"] = item["values"][:1] * draw(st.sampled_from([1001, 20_000]))
    return GrpcCase(_message(inputs, spec, use_raw), tags)


def _message(inputs: list[dict[str, Any]], spec: dict[str, Any], use_raw: bool) -> Any:
    tensors, raw = [], []
    for item in inputs:
        values = item["values"]
        shape = item.get("shape", [len(values)])
        tensor = pb.ModelInferRequest.InferInputTensor(
            name=item["name"], datatype=item["datatype"], shape=shape
        )
        if "contents" in item:
            where, contents = item["contents"]
            getattr(tensor.contents, where).extend(contents)
        elif not use_raw or spec.get("typed_too"):
            where = CONTENTS.get(item["datatype"], "bytes_contents")
            typed = [str(v).encode() for v in values] if where == "bytes_contents" else values
            try:
                getattr(tensor.contents, where).extend(typed)
            except (TypeError, ValueError):  # values of another type than the datatype's
                tensor.contents.bytes_contents.extend(str(v).encode() for v in values)
        if use_raw:
            datatype = item["datatype"] if item["datatype"] in ("BYTES", "INT64") else "FP64"
            try:
                raw.append(_raw(datatype, values))
            except (TypeError, ValueError, OverflowError):
                raw.append(b"")
        tensors.append(tensor)
    extra = spec.get("raw_extra", 0)
    raw = raw[:extra] if extra < 0 else raw + [b"\0" * 8] * extra
    return pb.ModelInferRequest(
        model_name=spec["model"],
        model_version=spec["version"],
        id=spec["id"],
        inputs=tensors,
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=n) for n in spec["outputs"]],
        raw_input_contents=raw,
    )


any_bytes = st.one_of(
    st.binary(max_size=300),
    infer_cases()
    .map(lambda case: case.message.SerializeToString())
    .flatmap(
        lambda data: st.integers(0, max(len(data) - 1, 0)).map(lambda cut: data[:cut] + b"\xff")
    ),
)
"""Bytes sent as a request message: random, or a real message cut short."""
