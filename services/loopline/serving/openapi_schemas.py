"""The OpenAPI document's component schemas, from what the server validates with.

The native request schema is the ``InputSchema``: its fields and types, the optional ids and
time, every bound (``Limits``, int64, the request id's pattern); unknown fields are refused. The
OIP schemas are the Open Inference Protocol's REST schemas, under their names in the protocol's
OpenAPI document (``metadata_server_response``, ``inference_request``, …), each narrowed to what
this model takes: its input and output names, the datatypes decoded (``oip.NUMPY``), shapes of
``[N]`` or ``[N, 1]``, the ``id``'s bounds. ``tests/integration/serving/test_openapi.py`` checks
them against the protocol's document and the server's real answers.
"""

from __future__ import annotations

from typing import Any

from loopline.events.record import EventType
from loopline.serving import oip
from loopline.serving.schema import (
    INT64_MAX,
    INT64_MIN,
    REQUEST_ID,
    REQUEST_ID_PATTERN,
    TIMESTAMP,
    InputSchema,
)
from loopline.spec import ModelSpec

Schema = dict[str, Any]
STATUSES = ["fresh", "stale", "missing", "fallback"]
DATATYPES = [*oip.NUMPY, "BYTES"]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def flag(name: str) -> Schema:
    """A health answer: ``{"live": true}``, ``{"ready": true}``."""
    return {"type": "object", "properties": {name: {"const": True}}, "required": [name]}


BINARY_HEADER: Schema = {
    "name": "Inference-Header-Content-Length",
    "in": "header",
    "required": False,
    "description": "Binary tensor data extension: the length of the JSON header; the body's "
    "bytes after it are the inputs' `binary_data_size` bytes, in order.",
    "schema": {"type": "integer", "minimum": 0},
}


def request_id(chars: int) -> Schema:
    return {"type": "string", "minLength": 1, "maxLength": chars, "pattern": REQUEST_ID_PATTERN}


def native(schema: InputSchema, spec: ModelSpec, views: list[str]) -> dict[str, Schema]:
    chars, rows = schema.limits.chars, schema.limits.rows
    types: dict[str, Schema] = {
        "string": {"type": "string", "maxLength": chars},
        "int64": {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
        "double": {"type": "number", "description": "an integer within ±2^64 is a number too"},
    }
    properties: dict[str, Schema] = {name: types[kind] for name, kind in schema.fields.items()}
    properties[schema.id_field] = {
        "description": "The caller's id of the event (the spec's `request_id`), logged with the "
        "prediction: outcomes are joined on it.",
        "anyOf": [types["string"], types["int64"], {"type": "null"}],
    }
    properties[TIMESTAMP] = {
        "description": "The time the features must be valid at: ISO 8601, UTC when it has no "
        "offset, between 1900 and 2200 (UTC). Default: now.",
        "type": ["string", "null"],
        "maxLength": chars,
    }
    properties[REQUEST_ID] = {
        "description": "The prediction's id, answered as `request_id` and written to the "
        "prediction log; unique within a batch. Default: a random 32-hex-digit id.",
        "anyOf": [request_id(chars), {"type": "null"}],
    }
    answer = {
        "type": "object",
        "properties": {
            "request_id": {"type": "string"},
            "model": {"type": "string", "const": spec.name},
            "model_version": {"type": "string"},
            "probability": {"type": "number", "minimum": 0, "maximum": 1},
            "decision": {"type": "boolean", "description": "probability >= threshold"},
            "threshold": {"type": "number", "const": spec.decision_threshold},
            "feature_status": {
                "type": "object",
                "description": "Per feature view: whether its features were fresh.",
                "properties": {view: {"enum": STATUSES} for view in views},
                "required": views,
                "additionalProperties": False,
            },
        },
        "required": [
            *("request_id", "model", "model_version", "probability", "decision", "threshold"),
            "feature_status",
        ],
    }
    example = {**spec.example_request, TIMESTAMP: "2013-08-31T23:50:00Z"}
    return {
        "predict_request": {
            "type": "object",
            "properties": properties,
            "required": list(schema.fields),
            "additionalProperties": False,
            "examples": [example],
        },
        "predict_batch_request": {
            "type": "array",
            "items": ref("predict_request"),
            "minItems": 1,
            "maxItems": rows,
            "examples": [[example, {**example, REQUEST_ID: "order-2"}]],
        },
        "predict_response": answer,
        "predict_batch_response": {"type": "array", "items": ref("predict_response")},
        "error_response": {
            "type": "object",
            "properties": {"error": {"type": "string", "maxLength": 1000}},
            "required": ["error"],
        },
    }


def oip_protocol(
    metadata: dict[str, Any], chars: int, example: dict[str, Any]
) -> dict[str, Schema]:
    """The OIP REST schemas; ``metadata``: the model's (``oip.model_metadata``); ``example``: a
    native request, whose fields become the example's input tensors."""
    inputs = [tensor["name"] for tensor in metadata["inputs"]]
    outputs = [tensor["name"] for tensor in metadata["outputs"]]
    shape: Schema = {
        "type": "array",
        "items": {"type": "integer", "minimum": 0},
        "minItems": 1,
        "maxItems": 2,
    }
    tensors = [
        {"name": t["name"], "shape": [1], "datatype": t["datatype"], "data": [example[t["name"]]]}
        for t in metadata["inputs"]
        if t["name"] in example
    ]
    return {
        "metadata_server_response": _object(
            name={"type": "string"},
            version={"type": "string"},
            extensions={"type": "array", "items": {"type": "string"}},
            required=["name", "version", "extensions"],
        ),
        "metadata_server_error_response": ref("error_response"),
        "metadata_model_response": {
            **_object(
                name={"type": "string"},
                versions={"type": "array", "items": {"type": "string"}},
                platform={"type": "string"},
                inputs={"type": "array", "items": ref("metadata_tensor")},
                outputs={"type": "array", "items": ref("metadata_tensor")},
                required=["name", "platform"],
            ),
            "examples": [metadata],
        },
        "metadata_tensor": _object(
            name={"type": "string"},
            datatype={"type": "string"},
            shape={"type": "array", "items": {"type": "integer"}},
            required=["name", "datatype", "shape"],
        ),
        "metadata_model_error_response": ref("error_response"),
        "inference_request": {
            **_object(
                id={
                    "description": "Names the predictions: their `request_id` is the id (one "
                    "row) or `<id>:<row>`. Echoed as the answer's `id`.",
                    **request_id(chars),
                    "minLength": 0,
                },
                parameters=ref("parameters"),
                inputs={"type": "array", "items": ref("request_input")},
                outputs={"type": "array", "items": ref("request_output")},
                required=["inputs"],
            ),
            "description": "One input tensor per request field: "
            + ", ".join(f"`{t['name']}` ({t['datatype']})" for t in metadata["inputs"])
            + ". The last two are optional.",
            "examples": [{"id": "order-1", "inputs": tensors}],
        },
        "parameters": {"type": "object"},
        "request_input": _object(
            name={"type": "string", "enum": inputs},
            shape=shape,
            datatype={"type": "string", "enum": DATATYPES},
            parameters=ref("parameters"),
            data=ref("tensor_data"),
            required=["name", "shape", "datatype", "data"],
        ),
        "tensor_data": {
            "type": "array",
            "items": {
                "anyOf": [
                    ref("tensor_data"),
                    {"type": "number"},
                    {"type": "string"},
                    {"type": "boolean"},
                ]
            },
        },
        "request_output": _object(
            name={"type": "string", "enum": outputs},
            parameters=ref("parameters"),
            required=["name"],
        ),
        "response_output": _object(
            name={"type": "string", "enum": outputs},
            shape={"type": "array", "items": {"type": "integer"}},
            datatype={"type": "string", "enum": DATATYPES},
            parameters=ref("parameters"),
            data=ref("tensor_data"),
            required=["name", "shape", "datatype", "data"],
        ),
        "inference_response": _object(
            model_name={"type": "string", "const": metadata["name"]},
            model_version={"type": "string"},
            id={"type": "string"},
            parameters=ref("parameters"),
            outputs={"type": "array", "items": ref("response_output")},
            required=["model_name", "outputs"],
        ),
        "inference_error_response": ref("error_response"),
    }


def events() -> dict[str, Schema]:
    """``POST /events``: the event record of ``loopline.events.record`` (its parser is the
    validation; this describes it)."""
    value = {"type": ["number", "string", "null"]}
    event = _object(
        ["event_id", "event_type", "event_timestamp", "keys", "payload"],
        event_id={"type": "string", "minLength": 1, "maxLength": 128},
        event_type={"enum": [kind.value for kind in EventType]},
        event_timestamp={"type": "string", "format": "date-time"},
        keys={"type": "object", "additionalProperties": {"type": "string"}},
        payload={"type": "object", "additionalProperties": value},
    )
    return {
        "event": event,
        "events_request": {"oneOf": [ref("event"), {"type": "array", "items": ref("event")}]},
        "events_response": _object(["accepted"], accepted={"type": "integer", "minimum": 0}),
    }


def _object(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "properties": properties, "required": required}
