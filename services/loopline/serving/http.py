"""The HTTP hot path: native JSON API, OIP v2 REST, health and metrics, as one plain ASGI app.

It sits in front of the BentoML app (see ``service``) and answers its routes without Starlette
request objects, routing tables or BentoML's middleware; only BentoML's own paths (``/livez``,
``/readyz``, its docs) go on to BentoML, so every other path is answered here, in JSON. Routes
match the raw path (``%2f`` is not a separator; path segments are decoded after matching).
Every inference route checks, in this order: bearer token (401), model name and version (404),
method (405 with ``Allow``), ``Content-Type`` (415 unless JSON, or binary with
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

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import orjson

from loopline.errors import (
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestError,
    RequestTimeout,
    UnsupportedMediaType,
    bounded,
    clip,
)
from loopline.serving import jsonbody, oip, oip_rest
from loopline.serving.core import Prediction
from loopline.serving.endpoints import Endpoints
from loopline.serving.events_route import EventsRoute
from loopline.serving.runtime import Runtime
from loopline.serving.schema import parse_objects

logger = logging.getLogger(__name__)
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
JSON = b"application/json"
CLOSE = (b"connection", b"close")
_MODEL_ROUTE = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?")
_POST_ROUTES = frozenset({"predict", "predict_batch", "v2_infer", "events"})
_BENTOML_PATHS = frozenset({"/", "/livez", "/healthz", "/readyz", "/schema.json", "/docs.json"})
_BENTOML_PREFIXES = ("/assets/", "/static_content/")
_GET = "GET, HEAD"


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
        self._limit = runtime.settings.max_body_bytes
        self._body_timeout_s = runtime.settings.body_timeout_s
        self._version = runtime.served.version
        self._fixed: dict[str, tuple[str, Callable[..., Awaitable[_Reply]]]] = {
            "/predict": ("predict", self._predict),
            "/predict_batch": ("predict_batch", self._predict_batch),
            "/v2/health/live": ("v2_health", self._live),
            "/v2/health/ready": ("v2_health", self._ready),
            "/v2": ("v2_metadata", self._server_metadata),
            "/v2/": ("v2_metadata", self._server_metadata),
            "/metrics": ("metrics", self._metrics),
            "/events": ("events", self._events_post),
        }
        self.events = EventsRoute(runtime.settings)
        names = {endpoint for endpoint, _ in self._fixed.values()} | {"v2_infer"}
        runtime.metrics.expose_endpoints(self._version, sorted(names))

    def handles(self, path: str) -> bool:
        """Every path but BentoML's own: an unknown one is answered 404 in JSON here."""
        return path in self._fixed or not (
            path in _BENTOML_PATHS or path.startswith(_BENTOML_PREFIXES)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        raw_path = scope.get("raw_path")
        path: str = raw_path.decode("latin-1") if raw_path else scope["path"]
        endpoint, handler, arguments = self._route(path)
        try:
            if endpoint in ("predict", "predict_batch", "v2_infer", "v2_metadata", "events"):
                self._endpoints.token.check(_header(scope, b"authorization"))
            if arguments:  # a model's route: an unknown model is 404 whatever the method
                self.runtime.check_model(*arguments)
            if handler != self._not_found:
                self._check_method(scope["method"], endpoint)
            reply = await handler(scope, receive, *arguments)
        except RequestError as error:
            body = orjson.dumps({"error": bounded(str(error))})
            reply = _Reply(error.status, body, JSON, error.headers)
        except Exception:
            logger.exception("%s failed", clip(path))
            reply = _json({"error": "internal error"}, 500)
        headers = [
            (b"content-type", reply.content_type),
            (b"content-length", b"%d" % len(reply.body)),
            *reply.headers,
        ]
        if self.runtime.draining:
            headers.append(CLOSE)
        body = b"" if scope["method"] == "HEAD" else reply.body
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        seconds = time.perf_counter() - started
        self.runtime.metrics.observe_request(endpoint, self._version, reply.status, seconds)

    def _route(self, path: str) -> tuple[str, Callable[..., Awaitable[_Reply]], tuple[Any, ...]]:
        if path in self._fixed:
            return (*self._fixed[path], ())
        match = _MODEL_ROUTE.fullmatch(path)
        if match is None:
            return "v2_metadata", self._not_found, ()
        name, version, action = match.groups()
        arguments = (unquote(name), None if version is None else unquote(version))
        if action == "/infer":
            return "v2_infer", self._infer, arguments
        if action == "/ready":
            return "v2_health", self._model_ready, arguments
        return "v2_metadata", self._model_metadata, arguments

    def _check_method(self, method: str, endpoint: str) -> None:
        if endpoint in _POST_ROUTES:
            if method != "POST":
                raise MethodNotAllowed(f"{clip(method)}: this route takes POST", "POST")
        elif method not in ("GET", "HEAD"):
            raise MethodNotAllowed(f"{clip(method)}: this route takes GET", _GET)

    def _check_media(self, scope: Scope, binary: bool = False) -> None:
        """415 for a body that says it is not JSON; no ``Content-Type`` is taken as JSON (some
        clients send none), and binary with the binary extension's header on ``infer``."""
        content_type = _header(scope, b"content-type")
        if content_type is None:
            return
        media = content_type.split(b";", 1)[0].strip().lower()
        if media == JSON or media.endswith(b"+json"):
            return
        binary_header = _header(scope, b"inference-header-content-length")
        if binary and media == b"application/octet-stream" and binary_header is not None:
            return
        raise UnsupportedMediaType(
            f"Content-Type {clip(content_type.decode('latin-1'))}: expected application/json"
        )

    async def _body(self, scope: Scope, receive: Receive, admit: bool = True) -> bytes:
        """The whole body within ``body_timeout_s`` (408), then a first admission check
        (``admit``: the model's; events do not wait for it)."""
        if scope["method"] != "POST":
            raise NotFound(f"{scope['method']} {scope['path']}: use POST")
        length = _header(scope, b"content-length")
        if length is not None and int(length) > self._limit:
            raise PayloadTooLarge(
                f"body of {int(length)} bytes is over the {self._limit}-byte limit"
            )
        try:
            async with asyncio.timeout(self._body_timeout_s):
                body = await self._read(receive)
        except TimeoutError:
            raise RequestTimeout(
                f"the body did not arrive within {self._body_timeout_s:g} s"
            ) from None
        if admit:
            self.runtime.check_admission()
        return body

    async def _read(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                raise PayloadTooLarge(f"body is over the {self._limit}-byte limit")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _predict(self, scope: Scope, receive: Receive) -> _Reply:
        self._check_media(scope)
        body = await self._body(scope, receive)
        row = self.runtime.schema.parse_object(jsonbody.loads(body))
        (prediction,) = await self.runtime.serve([row], "predict")
        return _Reply(200, orjson.dumps(self._native(prediction)))

    async def _predict_batch(self, scope: Scope, receive: Receive) -> _Reply:
        self._check_media(scope)
        body = await self._body(scope, receive)
        rows = parse_objects(self.runtime.schema, jsonbody.loads(body))
        predictions = await self.runtime.serve(rows, "predict_batch")
        return _Reply(200, orjson.dumps([self._native(p) for p in predictions]))

    def _native(self, prediction: Prediction) -> dict[str, Any]:
        return {
            "request_id": prediction.request_id,
            "model": self.runtime.served.name,
            "model_version": self._version,
            "probability": prediction.probability,
            "decision": prediction.decision,
            "threshold": self.runtime.served.spec.decision_threshold,
            "feature_status": prediction.status,
        }

    async def _infer(
        self, scope: Scope, receive: Receive, name: str, version: str | None
    ) -> _Reply:
        self._check_media(scope, binary=True)
        body = await self._body(scope, receive)
        header = _header(scope, b"inference-header-content-length")
        request = oip_rest.InferRequest.parse(
            body, header, self.runtime.schema.limits, self.runtime.views
        )
        predictions = await self.runtime.serve(
            oip.to_rows(self.runtime.schema, request.tensors), "v2_infer"
        )
        tensors = oip.outputs(self.runtime.views, predictions)
        body, binary_header = request.respond(self.runtime.served.name, self._version, tensors)
        if binary_header is None:
            return _Reply(200, body)
        headers = ((b"inference-header-content-length", binary_header),)
        return _Reply(200, body, b"application/octet-stream", headers)

    async def _events_post(self, scope: Scope, receive: Receive) -> _Reply:
        self._check_media(scope)
        body = await self._body(scope, receive, admit=False)
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

    async def _not_found(self, scope: Scope, receive: Receive) -> _Reply:
        raise NotFound(f"no route {clip(scope['path'])}")


def _header(scope: Scope, name: bytes) -> bytes | None:
    """A request header's value (names arrive lower-cased); a scan of the few there are."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None
