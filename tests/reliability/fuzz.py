"""What every answer to bad input must look like, and how many generated cases a run sends.

``LOOPLINE_FUZZ_CASES`` (default ``DEFAULT_CASES``, small enough for CI) is the total number of
generated cases across the fuzz tests, shared out by ``SHARES``; the acceptance run sets it to
20,000 or more. ``TALLY`` counts what was sent and answered, printed at the end of the session.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import grpc
import orjson
from hypothesis import HealthCheck, settings

DEFAULT_CASES = 1500
SHARES = {
    "schemathesis": 0.1,  # its generation costs ~0.1 s a case, 5x the others'
    "native_predict": 0.25,
    "native_batch": 0.1,
    "oip_rest": 0.3,
    "grpc_infer": 0.2,
    "grpc_bytes": 0.05,
}
MAX_ERROR_BYTES = 1024
BAD_GRPC_CODES = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}


def total_cases() -> int:
    return int(os.environ.get("LOOPLINE_FUZZ_CASES", DEFAULT_CASES))


def budget(name: str) -> settings:
    """Hypothesis settings for the fuzz test ``name``: its share of the cases, no deadline
    (the server runs on a shared machine), no example database (nothing written to the tree)."""
    return settings(
        max_examples=max(10, round(total_cases() * SHARES[name])),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)

    def count(self, test: str, answer: object) -> None:
        self.cases[test] += 1
        self.answers[f"{test} {answer}"] += 1

    def summary(self) -> str:
        lines = [f"bad-input corpus: {sum(self.cases.values())} generated cases"]
        lines += [f"  {test}: {n}" for test, n in sorted(self.cases.items())]
        lines += [f"    {answer}: {n}" for answer, n in sorted(self.answers.items())]
        return "\n".join(lines)


TALLY = Tally()


def check_http(
    test: str, status: int, body: bytes, tags: set[str], expect_ok: bool = False
) -> str | None:
    """Assert the answer is no 5xx, and an error is ``{"error": str}`` under 1 KiB that names
    one of ``tags`` (the fields the case made invalid) when it is a 400. The message, if any."""
    TALLY.count(test, status)
    assert status < 500, f"{status}: {body[:300]!r}"
    if expect_ok:
        assert status == 200, f"a valid request got {status}: {body[:300]!r}"
    if status < 400:
        return None
    assert len(body) <= MAX_ERROR_BYTES, f"error body of {len(body)} bytes"
    payload = orjson.loads(body)
    assert isinstance(payload, dict), payload
    assert list(payload) == ["error"], payload
    message = payload["error"]
    assert isinstance(message, str), message
    assert message, "an empty error message"
    if status == 400 and tags:
        assert any(tag in message for tag in tags), f"{message!r} names none of {sorted(tags)}"
    return message


def check_grpc(test: str, error: grpc.RpcError | None, tags: set[str]) -> None:
    """Assert a gRPC answer is OK or a deliberate status with short details, which for
    ``INVALID_ARGUMENT`` name one of ``tags``."""
    if error is None:
        TALLY.count(test, "OK")
        return
    code = error.code()
    details = error.details() or ""
    TALLY.count(test, code.name)
    assert code not in BAD_GRPC_CODES, f"{code}: {details[:300]}"
    assert len(details.encode()) <= MAX_ERROR_BYTES, f"details of {len(details)} characters"
    if code == grpc.StatusCode.INVALID_ARGUMENT and tags:
        assert any(tag in details for tag in tags), f"{details!r} names none of {sorted(tags)}"
