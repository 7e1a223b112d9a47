"""Errors a request can end in, each with its HTTP status and gRPC status code.

LooplineError
└── RequestError                     the request is answered with an OIP error body
    ├── BadRequest             400   malformed input; the message names the field
    ├── Unauthorized           401   missing or wrong bearer token
    ├── NotFound               404   unknown model, version or route
    ├── PayloadTooLarge        413   body over ``max_body_bytes``, refused before parsing
    ├── Overloaded             429   more requests in flight than ``max_concurrency``
    └── Unavailable            503   not ready (warming up, draining), or the prediction log
                                     cannot take the records (queue full, write failed)

The REST paths answer ``{"error": message}`` with the status; gRPC aborts with the code.
"""

from __future__ import annotations

from loopline.errors import LooplineError

__all__ = [
    "BadRequest",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "RequestError",
    "Unauthorized",
    "Unavailable",
]


class RequestError(LooplineError):
    status = 500
    grpc_code = "INTERNAL"


class BadRequest(RequestError):
    status = 400
    grpc_code = "INVALID_ARGUMENT"


class Unauthorized(RequestError):
    status = 401
    grpc_code = "UNAUTHENTICATED"


class NotFound(RequestError):
    status = 404
    grpc_code = "NOT_FOUND"


class PayloadTooLarge(RequestError):
    status = 413
    grpc_code = "RESOURCE_EXHAUSTED"


class Overloaded(RequestError):
    status = 429
    grpc_code = "RESOURCE_EXHAUSTED"


class Unavailable(RequestError):
    status = 503
    grpc_code = "UNAVAILABLE"
