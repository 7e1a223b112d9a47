"""Every value the model and the log will see is bounded up front, and each refusal names the
field without echoing the whole bad value: native fields, strict JSON, OIP tensors and REST
bodies, error messages, the bearer token."""

from __future__ import annotations

import struct
from typing import Any

import orjson
import pytest

from loopline.errors import MAX_MESSAGE_BYTES, BadRequest, Unauthorized, bounded, brief
from loopline.serving import jsonbody, oip
from loopline.serving.endpoints import BearerToken
from loopline.serving.oip_rest import InferRequest
from loopline.serving.schema import InputSchema, Limits
from loopline.spec import load_spec

REQUEST = load_spec("flight-delay").example_request
VIEWS = ["origin_weather"]
LIMITS = Limits(rows=10, chars=32)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sched_hour": 1e20}, "field 'sched_hour': 100000000000000000000 is out of the int64"),
        ({"sched_hour": 2**63}, "field 'sched_hour': .* is out of the int64 range"),
        ({"event_timestamp": "9999-12-31T23:59:59-14:00"}, "'event_timestamp': .* outside 1900"),
        ({"event_timestamp": "0001-01-01T00:00:00+14:00"}, "'event_timestamp': .* outside 1900"),
        ({"event_timestamp": "2013-08-31T" + "0" * 300}, "'event_timestamp': 311 characters"),
        ({"tailnum": "N" * 900_000}, "field 'tailnum': 900000 characters, at most 256"),
        ({"flight_id": "x" * 257}, "field 'flight_id': 257 characters"),
        ({"flight_id": True}, "field 'flight_id': expected a string, got True"),
        ({"distance": [[[[]]]]}, "field 'distance': expected a number, got an array"),
        ({"carrier": {"a": 1}}, "field 'carrier': expected a string, got an object"),
        ({"x" * 1000: 1}, "unknown field 'x{40}'…"),
    ],
)
def test_native_values_are_bounded(
    schema: InputSchema, change: dict[str, object], message: str
) -> None:
    with pytest.raises(BadRequest, match=message) as error:
        schema.parse_object({**REQUEST, **change})
    assert len(str(error.value)) < 300


def test_a_field_nested_a_thousand_deep_is_refused_without_recursion(schema: InputSchema) -> None:
    deep = "[" * 1000 + "]" * 1000
    fields = {k: v for k, v in REQUEST.items() if k != "distance"}
    body = orjson.dumps(fields)[:-1] + b', "distance": ' + deep.encode() + b"}"
    with pytest.raises(BadRequest, match="field 'distance': expected a number, got an array"):
        schema.parse_object(jsonbody.loads(body))
    with pytest.raises(BadRequest, match="not valid JSON"):
        jsonbody.loads(b"[" * 2000 + b"]" * 2000)


@pytest.mark.parametrize(
    "body",
    [
        b'{"origin": "EWR", "origin": "JFK"}',
        b'{"a": {"b": 1, "b" : 2}}',
        b'[{"k": 1}, {"k": 2, "k": 3}]',
        b'{"note": "has \\": inside", "note": 1}',
        b'{"a" : 1, "a"\n: 2, "b": "\\":"}',  # spaced keys, and a ":" in a string to even the count
    ],
)
def test_duplicated_keys_are_refused(body: bytes) -> None:
    with pytest.raises(BadRequest, match="appears more than once"):
        jsonbody.loads(body)


@pytest.mark.parametrize(
    "body", [b'{"a": "x\\":y", "b": 1}', b'{"a": [{"b": 1}, {"b": 2}]}', b"[1, 2]", b'"s"']
)
def test_bodies_without_duplicates_pass(body: bytes) -> None:
    assert jsonbody.loads(body) == orjson.loads(body)


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "message"),
    [
        ("UINT8", [1], [300], "300 is not a UINT8 value"),
        ("INT8", [1], [-129], "-129 is not a INT8 value"),
        ("INT64", [1], [5.5], "5.5 is not a INT64 value"),
        ("INT64", [1], [True], "True is not a INT64 value"),
        ("FP32", [1], [1e300], "1e\\+300 is not a FP32 value"),
        ("FP64", [1], ["1.0"], "'1.0' is not a FP64 value"),
        ("BOOL", [1], [1], "1 is not a BOOL value"),
        ("BYTES", [1], [7], "7 is not a BYTES value"),
        ("INT64", [True], [1], "shape \\[True\\], expected"),
        ("INT64", [1.0], [1], "shape \\[1.0\\], expected"),
        ("INT64", [1, 1, 1], [1], "expected \\[N\\] or \\[N, 1\\]"),
        ("INT64", [11], [1] * 11, "11 rows, at most 10 per request"),
        ("INT64", [50_000], [1] * 50_000, "50000 rows, at most 10"),
        ("INT64", [1], [[[1]]], "nested deeper than its shape"),
    ],
)
def test_typed_tensor_values_fit_their_datatype_and_shape(
    datatype: str, shape: list[Any], data: list[Any], message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        oip.decode("x", datatype, shape, data, None, LIMITS.rows)


def test_raw_tensors_are_bounded_too() -> None:
    many = b"".join(struct.pack("<I", 1) + b"a" for _ in range(50))
    with pytest.raises(BadRequest, match="shape \\[2\\] needs 2 values"):
        oip.decode("x", "BYTES", [2], None, many, LIMITS.rows)
    with pytest.raises(BadRequest, match="16 bytes of INT64, the shape needs 8"):
        oip.decode("x", "INT64", [1], None, b"\0" * 16, LIMITS.rows)


def infer_body(**change: Any) -> dict[str, Any]:
    inputs = [
        {"name": "origin", "datatype": "BYTES", "shape": [1], "data": ["EWR"]},
        {"name": "sched_hour", "datatype": "INT64", "shape": [1], "data": [5]},
    ]
    return {"id": "r1", "inputs": inputs, **change}


def parse(request: dict[str, Any], binary: bytes = b"") -> InferRequest:
    head = orjson.dumps(request)
    header = b"%d" % len(head) if binary else None
    return InferRequest.parse(head + binary, header, LIMITS, VIEWS)


@pytest.mark.parametrize(
    ("request_", "binary", "message"),
    [
        (infer_body(parameters=[1]), b"", "parameters: expected an object, got an array"),
        (infer_body(parameters={"binary_data_output": "yes"}), b"", "must be true or false"),
        (infer_body(outputs=5), b"", "outputs: expected an array, got 5"),
        (infer_body(outputs=[{"name": "score"}]), b"", "unknown output 'score'"),
        (infer_body(outputs=[{"name": "probability"}] * 2), b"", "asked for more than once"),
        (infer_body(outputs=[{"name": "probability", "parameters": 3}]), b"", "parameters"),
        (infer_body(id=7), b"", "id: expected a non-empty string"),
        (infer_body(id="x" * 33), b"", "id: 33 characters, at most 32"),
        (infer_body(id="a\nb"), b"", "id: .* has a control character"),
        (
            {"inputs": [{"name": "x", "datatype": "INT64", "shape": [1], "parameters": 1}]},
            b"",
            "input 'x': parameters: expected an object",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "INT64", "shape": [1], "parameters": {}}]},
            b"",
            "'data' is required",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "x",
                        "datatype": "INT64",
                        "shape": [1],
                        "parameters": {"binary_data_size": -8},
                    }
                ]
            },
            b"\0" * 8,
            "binary_data_size -8 does not fit",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "x",
                        "datatype": "INT64",
                        "shape": [1],
                        "parameters": {"binary_data_size": 8},
                    }
                ]
            },
            b"\0" * 12,
            "4 bytes of binary data no input reads",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "x",
                        "datatype": "INT64",
                        "shape": [1],
                        "data": [1],
                        "parameters": {"binary_data_size": 8},
                    }
                ]
            },
            b"\0" * 8,
            "both 'data' and binary_data_size",
        ),
    ],
)
def test_malformed_oip_fields_are_refused_before_serving(
    request_: dict[str, Any], binary: bytes, message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        parse(request_, binary)


def test_duplicated_oip_inputs_are_refused(schema: InputSchema) -> None:
    request = parse(infer_body(inputs=infer_body()["inputs"] * 2))
    with pytest.raises(BadRequest, match="input 'origin' appears more than once"):
        oip.to_rows(schema, request.tensors)


def test_brief_and_bounded_keep_errors_small() -> None:
    assert brief("x" * 1000) == repr("x" * 40) + "…"
    assert brief(10**400) == "an integer of 1329 bits"
    assert brief([[1]]) == "an array"
    long = "é" * 5000
    assert len(orjson.dumps({"error": bounded(long)})) < 1024
    assert len(orjson.dumps(bounded("\x00" * 5000))) <= MAX_MESSAGE_BYTES
    assert bounded("short") == "short"


def test_the_bearer_scheme_is_case_insensitive() -> None:
    token = BearerToken("s3cret")
    for header in (b"Bearer s3cret", b"bearer s3cret", b"BEARER  s3cret"):
        token.check(header)
    for header in (None, b"", b"Basic s3cret", b"Bearer nope", b"s3cret", b"Bearers3cret"):
        with pytest.raises(Unauthorized):
            token.check(header)
