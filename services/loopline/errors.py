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
    ├── MethodNotAllowed       405   a method the route does not answer (with ``Allow``)
    ├── RequestTimeout         408   the body did not arrive within ``body_timeout_s``
    ├── PayloadTooLarge        413   body over ``max_body_bytes``, refused before parsing
    ├── UnsupportedMediaType   415   a body that is not JSON on a JSON route
    ├── Overloaded             429   the admission queue is full (rows or time), or more
    │                                requests in flight than ``max_concurrency``
    └── Unavailable            503   not ready (warming up), or the prediction log
                                     cannot take the records (queue full, write failed)

The predictor's REST paths answer ``{"error": message}`` with the status and the class's
``headers`` (``Retry-After`` on 429 and 503, ``Connection: close`` on 408, ``Allow`` on 405);
gRPC aborts with the code. A message names the field at fault and never carries a whole bad
value: ``brief`` shortens what it echoes, and ``bounded`` caps the message itself (an error body
stays under 1 KiB, and a gRPC status within the metadata limit).
"""

from __future__ import annotations

import orjson

__all__ = [
    "ArtifactIntegrityError",
    "BadRequest",
    "DataNotPreparedError",
    "LooplineError",
    "MethodNotAllowed",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "RegistryError",
    "RequestError",
    "RequestTimeout",
    "RetrainError",
    "SettingsError",
    "SpecError",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
]

ECHO_CHARS = 40
"""Characters of a bad value an error message repeats."""
MAX_MESSAGE_BYTES = 900
"""Most bytes an error message takes as a JSON string (its ``{"error"}`` body stays under 1 KiB,
and a gRPC status's details well within the metadata limit)."""


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


class RetrainError(LooplineError):
    """``loopline retrain`` cannot build its window or read what triggered it."""


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


class MethodNotAllowed(RequestError, status=405, grpc_code="UNIMPLEMENTED"):
    """A method the route does not answer; ``allow`` lists those it does (the ``Allow`` header)."""

    def __init__(self, message: str, allow: str) -> None:
        super().__init__(message)
        self.allow = allow
        self.headers = ((b"allow", allow.encode()),)


class RequestTimeout(RequestError, status=408, grpc_code="DEADLINE_EXCEEDED"):
    """The body did not arrive in time; the connection is closed after the answer."""

    headers = ((b"connection", b"close"),)


class PayloadTooLarge(RequestError, status=413, grpc_code="RESOURCE_EXHAUSTED"):
    """A body over ``max_body_bytes``, refused before it is parsed."""


class UnsupportedMediaType(RequestError, status=415, grpc_code="INVALID_ARGUMENT"):
    """A request body whose ``Content-Type`` is not JSON on a JSON route."""


RETRY_AFTER = ((b"retry-after", b"1"),)


class Overloaded(RequestError, status=429, grpc_code="RESOURCE_EXHAUSTED"):
    """Refused by admission: the queue is full in rows or in time, or ``max_concurrency``."""

    headers = RETRY_AFTER


class Unavailable(RequestError, status=503, grpc_code="UNAVAILABLE"):
    """Not ready (warming up), or the prediction log cannot take the records."""

    headers = RETRY_AFTER


def brief(value: object) -> str:
    """A short rendering of a bad value for an error message: strings and numbers cut to
    ``ECHO_CHARS``, containers by their kind only (a repr of a deeply nested one would recurse,
    and of a long one would fill the answer)."""
    if isinstance(value, str | bytes):
        cut = value[:ECHO_CHARS]
        return repr(cut) + ("…" if len(value) > ECHO_CHARS else "")
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 128:  # 39 digits; a long one would be cut, and str() can refuse
            return f"an integer of {value.bit_length()} bits"
        return repr(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def clip(text: str) -> str:
    """``text`` cut to ``ECHO_CHARS`` characters, unquoted (a name the caller sent)."""
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "…"


def bounded(message: str) -> str:
    """``message``, cut so that it takes at most ``MAX_MESSAGE_BYTES`` as JSON: what is sent back
    never grows with the input."""
    if len(message) * 6 <= MAX_MESSAGE_BYTES:  # no character takes more than 6 bytes escaped
        return message
    if len(orjson.dumps(message)) <= MAX_MESSAGE_BYTES:
        return message
    cut = MAX_MESSAGE_BYTES
    while len(orjson.dumps(message[:cut] + "…")) > MAX_MESSAGE_BYTES:
        cut = cut * 3 // 4
    return message[:cut] + "…"
