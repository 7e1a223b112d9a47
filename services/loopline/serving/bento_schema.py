"""The inference routes as BentoML's service schema lists them (``/schema.json``, a Bento's
``apis/schema.json`` and ``bento.yaml``).

The predictor's routes are served by its own ASGI app (``service.FastPath``), not by
``@bentoml.api`` methods, so BentoML would list none. These entries describe them in BentoML's
route format, generated from the same ``InputSchema`` the server validates with: name, route,
a JSON Schema of the input and of the output. BentoML's own client
(``bentoml.SyncHTTPClient``) calls them from it: ``client.predict(origin="EWR", ...)``,
``client.predict_batch([...])``, ``client.v2_infer(inputs=[...])``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

from loopline.features.online import Status
from loopline.serving import oip
from loopline.serving.schema import TIMESTAMP, InputSchema

JsonSchema = dict[str, Any]
_JSON_TYPE = {"string": "string", "int64": "integer", "double": "number"}


def request_object(schema: InputSchema) -> JsonSchema:
    """One native request: the required fields, typed; the optional request id and time."""
    properties: JsonSchema = {
        name: {"type": _JSON_TYPE[kind]} for name, kind in schema.fields.items()
    }
    properties[schema.id_field] = {
        "type": ["string", "integer"],
        "description": "the caller's request id, written to the prediction log",
    }
    properties[TIMESTAMP] = {
        "type": "string",
        "format": "date-time",
        "description": "the time the features must be valid at (ISO 8601; default now)",
    }
    return {
        "type": "object",
        "properties": properties,
        "required": list(schema.fields),
        "additionalProperties": False,
    }


def prediction_object(model: str, views: Sequence[str]) -> JsonSchema:
    statuses = {"type": "string", "enum": list(get_args(Status))}
    return {
        "type": "object",
        "properties": {
            "request_id": {"type": "string"},
            "model": {"type": "string", "const": model},
            "model_version": {"type": "string"},
            "probability": {"type": "number", "minimum": 0, "maximum": 1},
            "decision": {"type": "boolean"},
            "threshold": {"type": "number"},
            "feature_status": {
                "type": "object",
                "properties": {view: statuses for view in views},
            },
        },
    }


def infer_request(schema: InputSchema) -> JsonSchema:
    """An OIP v2 inference request: one tensor per input, the request id and time optional."""
    datatypes = {**schema.oip_datatypes, schema.id_field: "BYTES"}
    tensor = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "enum": list(datatypes)},
            "datatype": {"type": "string", "enum": sorted(set(datatypes.values()))},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
        "required": ["name", "datatype", "shape"],
    }
    return {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "inputs": {"type": "array", "items": tensor, "minItems": len(schema.fields)},
            "parameters": {"type": "object"},
            "outputs": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["inputs"],
    }


def infer_response(model: str, views: Sequence[str]) -> JsonSchema:
    tensors = oip.outputs(views, [])
    return {
        "type": "object",
        "properties": {
            "model_name": {"type": "string", "const": model},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "enum": [t.name for t in tensors]},
                        "datatype": {
                            "type": "string",
                            "enum": sorted({t.datatype for t in tensors}),
                        },
                        "shape": {"type": "array", "items": {"type": "integer"}},
                        "data": {"type": "array"},
                    },
                },
            },
        },
    }


def inference_routes(model: str, schema: InputSchema, views: Sequence[str]) -> list[JsonSchema]:
    """BentoML route entries for ``/predict``, ``/predict_batch`` and OIP ``infer``."""
    request, prediction = request_object(schema), prediction_object(model, views)
    batch = {"type": "array", "items": request, "minItems": 1, "maxItems": schema.limits.rows}
    entries = [
        ("predict", "/predict", "One prediction (native JSON).", request, prediction),
        (
            "predict_batch",
            "/predict_batch",
            "Predictions for a JSON array of requests, in order.",
            {**batch, "root_input": True},
            {"type": "array", "items": prediction},
        ),
        (
            "v2_infer",
            f"/v2/models/{model}/infer",
            "Open Inference Protocol v2 (REST); OIP gRPC serves the same on its own port.",
            infer_request(schema),
            infer_response(model, views),
        ),
    ]
    return [
        {
            "name": name,
            "route": route,
            "description": description,
            "batchable": False,
            "input": input_schema,
            "output": output_schema,
            "is_task": False,
        }
        for name, route, description, input_schema, output_schema in entries
    ]
