"""Errors Loopline raises on purpose. Each names what went wrong and what to do about it.

LooplineError
├── SettingsError             LOOPLINE_* settings that are invalid, alone or together
├── DataNotPreparedError      a job needs `loopline data prepare` first
├── SpecError                 a model spec is missing or invalid
├── ArtifactIntegrityError    an artifact's files do not match their recorded sha256
├── RegistryError             an unknown model, version or alias
└── RequestError              a served request ends in an error, with its HTTP status and gRPC code
    ├── BadRequest             400   malformed input; the message names the field
    ├── Unauthorized           401   missing or wrong bearer token
    ├── NotFound               404   unknown model, version or route
    ├── RequestTimeout         408   the body did not arrive within ``body_timeout_s``
    ├── PayloadTooLarge        413   body over ``max_body_bytes``, refused before parsing
    ├── Overloaded             429   the admission queue is full (rows or time), or more
    │                                requests in flight than ``max_concurrency``
    └── Unavailable            503   not ready (warming up), or the prediction log
                                     cannot take the records (queue full, write failed)

The predictor's REST paths answer ``{"error": message}`` with the status and the class's
``headers`` (``Retry-After`` on 429 and 503, ``Connection: close`` on 408); gRPC aborts with the
code.
"""

from __future__ import annotations

__all__ = [
    "ArtifactIntegrityError",
    "BadRequest",
    "DataNotPreparedError",
    "LooplineError",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "RegistryError",
    "RequestError",
    "RequestTimeout",
    "SettingsError",
    "SpecError",
    "Unauthorized",
    "Unavailable",
]


class LooplineError(Exception):
    """Base class of every error Loopline raises on purpose."""


class SettingsError(LooplineError):
    """``LOOPLINE_*`` settings that cannot work, alone or together."""


class DataNotPreparedError(LooplineError):
    """A prepared source file is missing."""


class SpecError(LooplineError):
    """A model spec cannot be read or does not validate."""


class ArtifactIntegrityError(LooplineError):
    """An artifact file is missing or its sha256 differs from the recorded one."""


class RegistryError(LooplineError):
    """The registry has no such model, version or alias."""


class RequestError(LooplineError):
    """A request the predictor answers with an error: ``status`` (HTTP) and ``grpc_code``."""

    status = 500
    grpc_code = "INTERNAL"
    headers: tuple[tuple[bytes, bytes], ...] = ()
    """Response headers that go with the status (HTTP only)."""

    def __init_subclass__(cls, status: int, grpc_code: str, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.status, cls.grpc_code = status, grpc_code


class BadRequest(RequestError, status=400, grpc_code="INVALID_ARGUMENT"):
    """Malformed input; the message names the field."""


class Unauthorized(RequestError, status=401, grpc_code="UNAUTHENTICATED"):
    """Missing or wrong bearer token."""


class NotFound(RequestError, status=404, grpc_code="NOT_FOUND"):
    """Unknown model, version or route."""


class RequestTimeout(RequestError, status=408, grpc_code="DEADLINE_EXCEEDED"):
    """The body did not arrive in time; the connection is closed after the answer."""

    headers = ((b"connection", b"close"),)


class PayloadTooLarge(RequestError, status=413, grpc_code="RESOURCE_EXHAUSTED"):
    """A body over ``max_body_bytes``, refused before it is parsed."""


RETRY_AFTER = ((b"retry-after", b"1"),)


class Overloaded(RequestError, status=429, grpc_code="RESOURCE_EXHAUSTED"):
    """Refused by admission: the queue is full in rows or in time, or ``max_concurrency``."""

    headers = RETRY_AFTER


class Unavailable(RequestError, status=503, grpc_code="UNAVAILABLE"):
    """Not ready (warming up), or the prediction log cannot take the records."""

    headers = RETRY_AFTER
