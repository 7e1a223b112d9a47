"""The predictor's OpenAPI 3.1 document (``GET /openapi.json``) and its Swagger UI page (``/docs``).

Built once per worker from the route table (``routes.ROUTES``: every route the app answers has an
operation here, or the worker refuses to start), the request schemas the server validates with
(``openapi_schemas``), the model's OIP metadata and the settings that change answers: the bearer
token (a ``bearer`` security scheme on the routes that check it, when one is set), the limits.
BentoML's own paths (health probes, its UI) are documented too, so the document covers the port.

The page reuses the Swagger UI assets BentoML already serves under ``/static_content/``, by
relative URLs: it loads nothing from outside, and works behind a path prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopline.serving import openapi_schemas
from loopline.serving.openapi_schemas import Schema, ref
from loopline.serving.routes import Route

if TYPE_CHECKING:
    from loopline.serving.endpoints import Endpoints
    from loopline.serving.runtime import Runtime

OPENAPI_VERSION = "3.1.1"
DOCS_PAGE = b"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Loopline predictor API</title>
    <link rel="stylesheet" href="./static_content/swagger-ui.css">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="./static_content/swagger-ui-bundle.js"></script>
    <script src="./static_content/swagger-ui-standalone-preset.js"></script>
    <script>
      window.ui = SwaggerUIBundle({
        url: "./openapi.json",
        dom_id: "#swagger-ui",
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        layout: "StandaloneLayout",
      });
    </script>
  </body>
</html>
"""
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
_ERRORS = {
    400: "Malformed input; the message names the field or input at fault.",
    401: "Missing or wrong bearer token.",
    404: "Unknown model or version.",
    405: "A method the route does not take (`Allow` lists those it does).",
    408: "The body did not arrive in time; the connection is closed.",
    413: "A body over the size limit.",
    415: "A `Content-Type` that is not JSON.",
    429: "Over capacity: admission's queue is full.",
    503: "Not ready (warming up), or the prediction log cannot take the records.",
}
_INFERENCE_ERRORS = (400, 404, 408, 413, 415, 429, 503)
_OIP_ERROR = {
    "server_metadata": "metadata_server_error_response",
    "model_metadata": "metadata_model_error_response",
    "model_infer": "inference_error_response",
}
"""The OIP document's names for the error bodies of its operations (all ``error_response``)."""


@dataclass(frozen=True)
class _Operation:
    tag: str
    summary: str
    answer: tuple[str, Schema]
    """The 200 answer's media type and schema."""
    body: str | None = None
    """The JSON request body's component schema."""
    errors: tuple[int, ...] = ()
    status: int = 200
    """The status of the answer that succeeds."""


def _json(schema: Schema) -> tuple[str, Schema]:
    return "application/json", schema


_READY = _json(openapi_schemas.flag("ready"))
_TEXT = ("text/plain", {"type": "string"})
_OPERATIONS = {
    "predict": _Operation(
        "native",
        "Predict one request",
        _json(ref("predict_response")),
        "predict_request",
        (400, 408, 413, 415, 429, 503),
    ),
    "predict_batch": _Operation(
        "native",
        "Predict a batch of requests, answered in order",
        _json(ref("predict_batch_response")),
        "predict_batch_request",
        (400, 408, 413, 415, 429, 503),
    ),
    "server_live": _Operation("OIP", "Server live", _json(openapi_schemas.flag("live"))),
    "server_ready": _Operation("OIP", "Server ready (the readiness probe)", _READY, errors=(503,)),
    "server_metadata": _Operation("OIP", "Server metadata", _json(ref("metadata_server_response"))),
    "model_metadata": _Operation(
        "OIP", "Model metadata", _json(ref("metadata_model_response")), errors=(404,)
    ),
    "model_ready": _Operation("OIP", "Model ready", _READY, errors=(404, 503)),
    "model_infer": _Operation(
        "OIP",
        "Inference (JSON, or the binary tensor data extension)",
        _json(ref("inference_response")),
        "inference_request",
        _INFERENCE_ERRORS,
    ),
    "post_events": _Operation(
        "events",
        "Append one event or a list to the event stream, all or none (docs/events.md)",
        _json(ref("events_response")),
        "events_request",
        (400, 408, 413, 415, 503),
        status=202,
    ),
    "metrics": _Operation("operations", "Prometheus metrics (text exposition format)", _TEXT),
    "openapi": _Operation("operations", "This document", _json({"type": "object"})),
    "docs": _Operation(
        "operations", "Swagger UI for this document", ("text/html", {"type": "string"})
    ),
}
_SAME = {
    "server_metadata_slash": "server_metadata",
    "model_version_metadata": "model_metadata",
    "model_version_ready": "model_ready",
    "model_version_infer": "model_infer",
}
_BENTOML = {
    "/livez": "BentoML's liveness probe",
    "/healthz": "BentoML's liveness probe (deprecated name)",
    "/readyz": "BentoML's readiness probe (the same flag as /v2/health/ready)",
    "/": "BentoML's own UI",
    "/docs.json": "BentoML's own OpenAPI document (its service has no APIs of its own)",
    "/schema.json": "BentoML's service schema",
    "/static_content/{file}": "BentoML's static files (Swagger UI assets, used by /docs)",
}


def document(routes: Sequence[Route], runtime: Runtime, endpoints: Endpoints) -> dict[str, Any]:
    """The OpenAPI document of ``routes`` and BentoML's paths, for this worker's model."""
    schema, served, settings = runtime.schema, runtime.served, runtime.settings
    auth = settings.auth_token is not None
    example = served.spec.example_request
    components = {
        **openapi_schemas.native(schema, served.spec, runtime.views),
        **openapi_schemas.oip_protocol(endpoints.model_metadata, schema.limits.chars, example),
        **openapi_schemas.events(),
    }
    paths: dict[str, Any] = {}
    for route in routes:
        operation = _operation(route, auth and route.protected)
        paths.setdefault(route.path, {})[route.method.lower()] = operation
        if route.parameters:
            paths[route.path]["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in route.parameters
            ]
    for path, summary in _BENTOML.items():
        paths[path] = {"get": _bentoml(path, summary)}
    described: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": f"Loopline predictor: {served.name}",
            "version": endpoints.server_metadata["version"],
            "description": f"Serves {served.name} {served.version}. Every GET route answers "
            'HEAD too. Errors are `{"error": message}`. The OIP routes are the Open '
            "Inference Protocol v2's, for this model's tensors.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
    if auth:
        described["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
    return described


def _operation(route: Route, protected: bool) -> dict[str, Any]:
    kind = _SAME.get(route.operation, route.operation)
    described = _OPERATIONS[kind]
    media, schema = described.answer
    responses: dict[str, Any] = {
        str(described.status): {"description": "OK", "content": {media: {"schema": schema}}}
    }
    for status in sorted({*described.errors, 405, *((401,) if protected else ())}):
        responses[str(status)] = _error(status, _OIP_ERROR.get(kind, "error_response"))
    operation: dict[str, Any] = {
        "operationId": route.operation,
        "summary": described.summary,
        "tags": [described.tag],
        "responses": responses,
    }
    if described.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(described.body)}},
        }
    if route.endpoint == "v2_infer":
        operation["requestBody"]["content"]["application/octet-stream"] = {
            "schema": {"type": "string", "contentMediaType": "application/octet-stream"},
        }
        operation["parameters"] = [openapi_schemas.BINARY_HEADER]
    if protected:
        operation["security"] = [{"bearer": []}]
    return operation


def _error(status: int, schema: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": _ERRORS[status],
        "content": {"application/json": {"schema": ref(schema)}},
    }
    if status in (429, 503):
        answer["headers"] = _RETRY_AFTER
    if status == 405:
        answer["headers"] = {"Allow": {"schema": {"type": "string"}}}
    return answer


def _bentoml(path: str, summary: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": "bentoml" + path.replace("/", "_").replace(".", "_").strip("{}"),
        "summary": summary,
        "tags": ["BentoML"],
        "responses": {"200": {"description": "OK"}},
    }
    if "{file}" in path:
        operation["parameters"] = [
            {"name": "file", "in": "path", "required": True, "schema": {"type": "string"}}
        ]
        operation["responses"]["404"] = {"description": "No such file"}
    return operation
