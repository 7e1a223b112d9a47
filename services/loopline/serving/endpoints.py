"""What both transports answer besides predictions: OIP metadata and the bearer-token check.

Built once per worker by ``worker`` and handed to the HTTP app and the gRPC server.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from loopline.errors import Unauthorized
from loopline.serving import oip
from loopline.serving.runtime import Runtime


class BearerToken:
    """``Authorization: Bearer <token>`` when a token is configured; anything when not. The
    scheme is case-insensitive (RFC 9110 §11.1), so ``bearer <token>`` is accepted too."""

    def __init__(self, token: str | None) -> None:
        self._expected = token.encode() if token else None

    def check(self, presented: bytes | None) -> None:
        if self._expected is None:
            return
        scheme, _, credentials = (presented or b"").partition(b" ")
        valid = hmac.compare_digest(credentials.lstrip(b" "), self._expected)
        if not valid or scheme.lower() != b"bearer":
            raise Unauthorized("missing or invalid bearer token")


@dataclass(frozen=True)
class Endpoints:
    server_metadata: dict[str, Any]
    model_metadata: dict[str, Any]
    token: BearerToken

    @classmethod
    def of(cls, runtime: Runtime) -> Endpoints:
        return cls(
            server_metadata=oip.server_metadata(),
            model_metadata=oip.model_metadata(runtime.served, runtime.schema, runtime.views),
            token=BearerToken(runtime.settings.auth_token),
        )
