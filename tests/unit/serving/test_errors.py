"""Every request error maps to one HTTP status and one gRPC code; the module exports every error."""

from __future__ import annotations

import grpc
import pytest

from loopline import errors
from loopline.errors import LooplineError


def test_exported_members_are_the_request_errors() -> None:
    exported = {name for name in dir(errors) if not name.startswith("_")}
    classes = {name for name in exported if isinstance(getattr(errors, name), type)}
    assert set(errors.__all__) == classes


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.BadRequest, 400, "INVALID_ARGUMENT"),
        (errors.Unauthorized, 401, "UNAUTHENTICATED"),
        (errors.NotFound, 404, "NOT_FOUND"),
        (errors.PayloadTooLarge, 413, "RESOURCE_EXHAUSTED"),
        (errors.Overloaded, 429, "RESOURCE_EXHAUSTED"),
        (errors.Unavailable, 503, "UNAVAILABLE"),
    ],
)
def test_status_and_code(error: type[errors.RequestError], status: int, code: str) -> None:
    assert issubclass(error, LooplineError)
    assert (error.status, error.grpc_code) == (status, code)
    assert isinstance(getattr(grpc.StatusCode, code), grpc.StatusCode)
