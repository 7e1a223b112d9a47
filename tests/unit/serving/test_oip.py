"""OIP tensors: typed and raw (binary extension) forms decode to the same rows."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from loopline.errors import BadRequest
from loopline.serving import oip
from loopline.serving.core import Prediction
from loopline.serving.schema import InputSchema
from loopline.serving.served import ServedModel
from loopline.spec import load_spec

ROWS = 1000
COLUMNS = {
    "origin": ("BYTES", ["EWR", "JFK"]),
    "carrier": ("BYTES", ["UA", "B6"]),
    "tailnum": ("BYTES", ["N14228", "N1"]),
    "dest": ("BYTES", ["IAH", "LAX"]),
    "sched_hour": ("INT64", [5, 23]),
    "weekday": ("INT64", [1, 6]),
    "distance": ("FP64", [1400.0, 2475.0]),
}


def tensors(binary: bool) -> list[oip.Tensor]:
    result = []
    for name, (datatype, values) in COLUMNS.items():
        if not binary:
            result.append(oip.decode(name, datatype, [2], values, None, ROWS))
        elif datatype == "BYTES":
            raw = serialize_byte_tensor(np.array(values, dtype=object)).item()
            result.append(oip.decode(name, datatype, [2, 1], None, raw, ROWS))
        else:
            raw = np.array(values, dtype=oip.NUMPY[datatype]).tobytes()
            result.append(oip.decode(name, datatype, [2, 1], None, raw, ROWS))
    return result


def test_json_and_binary_tensors_give_the_same_rows(schema: InputSchema) -> None:
    json_rows = oip.to_rows(schema, tensors(binary=False))
    binary_rows = oip.to_rows(schema, tensors(binary=True))
    assert [r.fields for r in json_rows] == [r.fields for r in binary_rows]
    assert json_rows[1].fields["origin"] == "JFK"
    assert json_rows[1].fields["distance"] == 2475.0


def test_optional_inputs_carry_the_id_and_time(schema: InputSchema) -> None:
    extra = [
        oip.decode("flight_id", "BYTES", [2], ["a", "b"], None, ROWS),
        oip.decode("event_timestamp", "BYTES", [2], ["2013-08-31T20:00:00Z"] * 2, None, ROWS),
    ]
    rows = oip.to_rows(schema, tensors(binary=False) + extra)
    assert [r.client_id for r in rows] == ["a", "b"]
    assert rows[0].as_of == 1377979200.0


def test_nested_json_data_is_flattened_row_major() -> None:
    assert oip.decode("x", "INT64", [2, 1], [[1], [2]], None, ROWS).values == [1, 2]
    assert oip.decode("x", "INT64", [2, 1], [1, 2], None, ROWS).values == [1, 2]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t[:-1], "input 'distance' is required"),
        (
            lambda t: [*t, oip.decode("colour", "BYTES", [2], ["r", "g"], None, ROWS)],
            "unknown input",
        ),
        (lambda t: [oip.Tensor("origin", "INT64", [2], [1, 2]), *t[1:]], "expected BYTES"),
        (lambda t: [*t[:-1], oip.Tensor("distance", "BYTES", [2], ["a", "b"])], "expected FP64"),
        (lambda t: [*t[:-1], oip.Tensor("distance", "FP64", [3], [1.0] * 3)], "3 rows"),
        (lambda t: [*t, t[0]], "input 'origin' appears more than once"),
    ],
)
def test_malformed_requests_name_the_input(
    schema: InputSchema, mutate: object, message: str
) -> None:
    assert callable(mutate)
    with pytest.raises(BadRequest, match=message):
        oip.to_rows(schema, mutate(tensors(binary=False)))


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "raw", "message"),
    [
        ("INT64", [3], [1, 2], None, "needs 3 values, got 2"),
        ("FP64", [1, 2], [1.0, 2.0], None, "expected \\[N\\] or \\[N, 1\\]"),
        ("FLOAT", [1], [1.0], None, "unknown datatype"),
        ("INT64", [-1], [1], None, "expected \\[N\\] or \\[N, 1\\]"),
        ("FP64", [1], None, b"\x00" * 7, "7 bytes of FP64, the shape needs 8"),
        ("BYTES", [1], None, struct.pack("<I", 9) + b"abc", "truncated"),
        ("BYTES", [1], None, struct.pack("<I", 1) + b"\xff", "not UTF-8"),
        ("INT64", [1], "7", None, "array"),
    ],
)
def test_malformed_tensors(
    datatype: str, shape: list[int], data: object, raw: bytes | None, message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        oip.decode("x", datatype, shape, data, raw, ROWS)


def test_outputs_raw_form_is_what_tritonclient_reads() -> None:
    predictions = [
        Prediction("id-1", 0.25, False, {"origin_weather": "fresh"}, "v1"),
        Prediction("id-2", 0.75, True, {"origin_weather": "stale"}, "v1"),
    ]
    outputs = {t.name: t for t in oip.outputs(["origin_weather"], predictions)}
    assert list(outputs) == ["request_id", "probability", "decision", "status_origin_weather"]
    assert np.frombuffer(oip.raw(outputs["probability"]), np.float64).tolist() == [0.25, 0.75]
    assert np.frombuffer(oip.raw(outputs["decision"]), np.bool_).tolist() == [False, True]
    status = deserialize_bytes_tensor(oip.raw(outputs["status_origin_weather"]))
    assert status.tolist() == [b"fresh", b"stale"]
    assert [t.name for t in oip.select(list(outputs.values()), ["decision"])] == ["decision"]
    with pytest.raises(BadRequest, match="unknown output 'score'"):
        oip.select(list(outputs.values()), ["score"])


def test_metadata_names_every_input_and_output(schema: InputSchema) -> None:
    served = ServedModel("flight-delay", "v3", "0" * 64, load_spec("flight-delay"), Path("."))
    metadata = oip.model_metadata(served, schema, ["origin_weather"])
    assert metadata["versions"] == ["v3"]
    inputs = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert inputs == {
        **{name: datatype for name, (datatype, _) in COLUMNS.items()},
        "flight_id": "BYTES",
        "event_timestamp": "BYTES",
    }
    assert all(t["shape"] == [-1] for t in metadata["inputs"] + metadata["outputs"])
    assert [o["name"] for o in metadata["outputs"]][-1] == "status_origin_weather"
