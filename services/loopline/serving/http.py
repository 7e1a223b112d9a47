"""The HTTP hot path: native JSON API, OIP v2 REST, health, metrics and the API document, as one
plain ASGI app.

It sits in front of the BentoML app (see ``service``) and answers its routes (``routes.ROUTES``)
without Starlette request objects or BentoML's middleware; only BentoML's own paths (``/livez``,
``/readyz``, its UI and static files) go on to BentoML, so every other path is answered here, in
JSON. Routes match the raw path (``%2f`` is not a separator; path segments are decoded after
matching). ``GET /openapi.json`` is the OpenAPI 3.1 document of every route (``openapi``), and
``GET /docs`` a Swagger UI page for it, from the assets BentoML serves (nothing from outside).
Every inference route checks, in this order: bearer token (401), model name and version (404),
method (405 with ``Allow``), then (``http_body``) ``Content-Type`` (415 unless JSON, or binary with
``Inference-Header-Content-Length``), body size from ``Content-Length`` before reading and again
while reading (413), the body arriving within ``body_timeout_s`` (408, and the connection is
closed), a first admission check once the body is in (503 not ready or log queue full, 429 queue
full), then parses (400 naming the field) and is admitted with its row count
(``Runtime.serve``). So a slow client holds no admission slot while its body trickles in. Errors
are ``{"error": ...}``, under 1 KiB (``errors.bounded``), with ``Retry-After`` on 429 and 503.
While the worker drains (after SIGTERM) every answer carries ``Connection: close``, so clients
move their next request to a new connection (another replica, once the endpoint is removed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import orjson

from loopline.errors import (
    MethodNotAllowed,
    NotFound,
    RequestError,
    bounded,
    clip,
)
from loopline.serving import jsonbody, oip, oip_rest, openapi
from loopline.serving.core import Prediction
from loopline.serving.endpoints import Endpoints
from loopline.serving.events_route import EventsRoute
from loopline.serving.http_body import JSON, BodyReader, Receive, Scope, header
from loopline.serving.http_protocol import RECEIVED
from loopline.serving.routes import BENTOML_PATHS, BENTOML_PREFIXES, ROUTES, Route
from loopline.serving.runtime import Runtime
from loopline.serving.schema import parse_objects

logger = logging.getLogger(__name__)
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Handler = Callable[..., Awaitable["_Reply"]]
HTML = b"text/html; charset=utf-8"
CLOSE = (b"connection", b"close")
_BENTOML = frozenset(BENTOML_PATHS)
_GET = "GET, HEAD"
_UNKNOWN = Route("", "GET", "", "v2_metadata", protected=True)
"""What an unknown path is answered as: 404, after the token check (which paths exist is not
told to a caller without the token)."""


class _Reply:
    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: bytes = JSON,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        self.status, self.body, self.content_type, self.headers = (
            status,
            body,
            content_type,
            headers,
        )


def _json(payload: Any, status: int = 200) -> _Reply:
    return _Reply(status, orjson.dumps(payload))


class PredictorApp:
    """Routes requests; ``handles(path)`` says whether a path is this app's."""

    def __init__(self, runtime: Runtime, endpoints: Endpoints) -> None:
        self.runtime = runtime
        self._endpoints = endpoints
        settings = runtime.settings
        self._bodies = BodyReader(
            settings.max_body_bytes, settings.body_timeout_s, runtime.check_admission
        )
        self._version = runtime.served.version
        handlers: dict[str, Handler] = {
            "predict": self._predict,
            "predict_batch": self._predict_batch,
            "server_live": self._live,
            "server_ready": self._ready,
            "server_metadata": self._server_metadata,
            "server_metadata_slash": self._server_metadata,
            "model_metadata": self._model_metadata,
            "model_version_metadata": self._model_metadata,
            "model_ready": self._model_ready,
            "model_version_ready": self._model_ready,
            "model_infer": self._infer,
            "model_version_infer": self._infer,
            "metrics": self._metrics,
            "openapi": self._openapi,
            "docs": self._docs,
            "post_events": self._events_post,
        }
        self.events = EventsRoute(runtime.settings)
        routes = [(route, handlers[route.operation]) for route in ROUTES]
        self._fixed = {route.path: (route, h) for route, h in routes if not route.parameters}
        # Inference first: an infer request tries one or two patterns before it is routed.
        templated = sorted(
            (r for r in routes if r[0].parameters), key=lambda r: r[0].endpoint != "v2_infer"
        )
        self._templated = [(route, route.pattern.fullmatch, h) for route, h in templated]
        self._document = orjson.dumps(openapi.document(ROUTES, runtime, endpoints))
        runtime.metrics.expose_endpoints(self._version, sorted({r.endpoint for r in ROUTES}))

    def handles(self, path: str) -> bool:
        """Every path but BentoML's own: an unknown one is answered 404 in JSON here."""
        return path in self._fixed or not (path in _BENTOML or path.startswith(BENTOML_PREFIXES))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = scope.get("extensions", {}).get(RECEIVED) or time.perf_counter()
        raw_path = scope.get("raw_path")
        path: str = raw_path.decode("latin-1") if raw_path else scope["path"]
        route, handler, arguments = self._route(path)
        try:
            if route.protected:
                self._endpoints.token.check(header(scope, b"authorization"))
            if arguments:  # a model's route: an unknown model is 404 whatever the method
                self.runtime.check_model(*arguments)
            if route is not _UNKNOWN:
                _check_method(scope["method"], route.method)
            reply = await handler(scope, receive, *arguments)
        except RequestError as error:
            body = orjson.dumps({"error": bounded(str(error))})
            reply = _Reply(error.status, body, JSON, error.headers)
        except Exception:
            logger.exception("%s failed", clip(path))
            reply = _json({"error": "internal error"}, 500)
        seconds = time.perf_counter() - started
        headers = [
            (b"content-type", reply.content_type),
            (b"content-length", b"%d" % len(reply.body)),
            (b"server-timing", b"total;dur=%.3f" % (seconds * 1000)),
            *reply.headers,
        ]
        if self.runtime.draining:
            headers.append(CLOSE)
        body = b"" if scope["method"] == "HEAD" else reply.body
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.runtime.metrics.observe_request(route.endpoint, self._version, reply.status, seconds)

    def _route(self, path: str) -> tuple[Route, Handler, tuple[Any, ...]]:
        """The route, its handler and, for a model's route, the model name and version (None
        when the path has none)."""
        fixed = self._fixed.get(path)
        if fixed is not None:
            return (*fixed, ())
        for route, fullmatch, handler in self._templated:
            match = fullmatch(path)
            if match is not None:
                name, *version = match.groups()
                return route, handler, (unquote(name), unquote(version[0]) if version else None)
        return _UNKNOWN, self._not_found, ()

    async def _predict(self, scope: Scope, receive: Receive) -> _Reply:
        self._bodies.check_media(scope)
        body = await self._bodies.read(scope, receive)
        row = self.runtime.schema.parse_object(jsonbody.loads(body))
        (prediction,) = await self.runtime.serve([row], "predict")
        return _Reply(200, orjson.dumps(self._native(prediction)))

    async def _predict_batch(self, scope: Scope, receive: Receive) -> _Reply:
        self._bodies.check_media(scope)
        body = await self._bodies.read(scope, receive)
        rows = parse_objects(self.runtime.schema, jsonbody.loads(body))
        predictions = await self.runtime.serve(rows, "predict_batch")
        return _Reply(200, orjson.dumps([self._native(p) for p in predictions]))

    def _native(self, prediction: Prediction) -> dict[str, Any]:
        return {
            "request_id": prediction.request_id,
            "model": self.runtime.served.name,
            "model_version": prediction.version,
            "probability": prediction.probability,
            "decision": prediction.decision,
            "threshold": self.runtime.served.spec.decision_threshold,
            "feature_status": prediction.status,
        }

    async def _infer(
        self, scope: Scope, receive: Receive, name: str, version: str | None
    ) -> _Reply:
        self._bodies.check_media(scope, binary=True)
        body = await self._bodies.read(scope, receive)
        binary = header(scope, b"inference-header-content-length")
        request = oip_rest.InferRequest.parse(
            body, binary, self.runtime.schema.limits, self.runtime.views
        )
        predictions = await self.runtime.serve(
            oip.to_rows(self.runtime.schema, request.tensors, request.request_id), "v2_infer"
        )
        tensors = oip.outputs(self.runtime.views, predictions)
        # A canary may answer some rows: the version that answered the first names the response.
        version = predictions[0].version if predictions else self.runtime.served.version
        body, binary_header = request.respond(self.runtime.served.name, version, tensors)
        if binary_header is None:
            return _Reply(200, body)
        headers = ((b"inference-header-content-length", binary_header),)
        return _Reply(200, body, b"application/octet-stream", headers)

    async def _events_post(self, scope: Scope, receive: Receive) -> _Reply:
        self._bodies.check_media(scope)
        body = await self._bodies.read(scope, receive, admit=False)
        return _json(await self.events.post(jsonbody.loads(body)), 202)

    async def _live(self, scope: Scope, receive: Receive) -> _Reply:
        return _json({"live": True})

    async def _ready(self, scope: Scope, receive: Receive) -> _Reply:
        return _json({"ready": True}) if self.runtime.ready else _json({"error": "not ready"}, 503)

    async def _model_ready(
        self, scope: Scope, receive: Receive, name: str, version: str | None
    ) -> _Reply:
        return await self._ready(scope, receive)

    async def _server_metadata(self, scope: Scope, receive: Receive) -> _Reply:
        return _json(self._endpoints.server_metadata)

    async def _model_metadata(
        self, scope: Scope, receive: Receive, name: str, version: str | None
    ) -> _Reply:
        return _json(self._endpoints.model_metadata)

    async def _metrics(self, scope: Scope, receive: Receive) -> _Reply:
        body, content_type = self.runtime.metrics.exposition()
        return _Reply(200, body, content_type.encode())

    async def _openapi(self, scope: Scope, receive: Receive) -> _Reply:
        return _Reply(200, self._document)

    async def _docs(self, scope: Scope, receive: Receive) -> _Reply:
        return _Reply(200, openapi.DOCS_PAGE, HTML)

    async def _not_found(self, scope: Scope, receive: Receive) -> _Reply:
        raise NotFound(f"no route {clip(scope['path'])}")


def _check_method(method: str, allowed: str) -> None:
    if allowed == "POST":
        if method != "POST":
            raise MethodNotAllowed(f"{clip(method)}: this route takes POST", "POST")
    elif method not in ("GET", "HEAD"):
        raise MethodNotAllowed(f"{clip(method)}: this route takes GET", _GET)
