"""The prediction-log record: what was asked, what the model saw, what it answered.

A record crosses process boundaries (the serving worker writes it; the outcome join, the monitor
and the skew check read it, from segment files or a Redis Stream), so it is defined once here,
with one encoder and one decoder. A line is JSON (orjson), times in RFC 3339 UTC::

    {"request_id": "…", "timestamp": "2026-…+00:00", "model": "flight-delay",
     "model_version": "v1", "endpoint": "predict", "event_timestamp": "2013-…+00:00",
     "id_field": "flight_id", "id_value": "2013-08-31-UA1545", "request": {…},
     "features": {…}, "feature_status": {…}, "probability": 0.12, "decision": false,
     "latency_ms": 3.1, "shadow": {"version": "v2", "probability": 0.1, "decision": false}}

``latency_ms`` and ``shadow`` came later and are optional: a line without them (an older log)
decodes with None. ``shadow`` is the challenger's score of the same request when a shadow
rollout runs (docs/rollout.md): the answer is the champion's, ``model_version`` and
``probability`` are what was answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE


class RecordError(ValueError):
    """A line that is not a prediction record."""


@dataclass(frozen=True, slots=True)
class ShadowScore:
    """What the shadow challenger scored for the request (never answered)."""

    version: str
    probability: float
    decision: bool


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    request_id: str
    """The server's id of the prediction, returned in the answer."""
    timestamp: datetime
    """When the prediction was made (UTC, the server's clock)."""
    model: str
    model_version: str
    endpoint: str
    """The protocol it came in by: ``predict``, ``predict_batch``, ``v2_infer``, ``grpc_infer``."""
    event_timestamp: datetime
    """The time the features had to be fresh at (the request's, or the server's now)."""
    id_field: str
    """The spec's ``request_id`` field (e.g. ``flight_id``), by which outcomes are joined."""
    id_value: str | None
    """The caller's value of ``id_field``; None when it sent none."""
    request: dict[str, Any]
    """The request's fields as validated (entity keys and request-time fields)."""
    features: dict[str, Any]
    """The online features as served (None where missing, stale or not read)."""
    feature_status: Mapping[str, str]
    """Per feature view: fresh, stale, missing or fallback."""
    probability: float
    decision: bool
    latency_ms: float | None = None
    """From the request's submission to the batcher until it was logged, in the server."""
    shadow: ShadowScore | None = None
    """The shadow challenger's score of the same request, when one ran."""


FIELDS = tuple(field.name for field in fields(PredictionRecord))
OPTIONAL = ("latency_ms", "shadow")
"""Fields a line may lack (written by an older server)."""
REQUIRED = tuple(name for name in FIELDS if name not in OPTIONAL)
TIMES = ("timestamp", "event_timestamp")


def encode(record: PredictionRecord) -> bytes:
    """One log line: JSON ending in a newline."""
    return orjson.dumps(record, option=_OPTIONS)


def parse(line: bytes | str) -> dict[str, Any]:
    """A log line's fields, checked as ``decode`` checks them: a JSON object holding every
    required field, its two times as ``datetime`` (the rest as JSON gives them). ``decode``
    builds the record from it; the columnar reader (``columns``) reads columns from it."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise RecordError(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise RecordError("not a JSON object")
    missing = [name for name in REQUIRED if name not in data]
    if missing:
        raise RecordError(f"missing fields {missing}")
    try:
        for name in TIMES:
            data[name] = datetime.fromisoformat(data[name])
    except (TypeError, ValueError) as error:
        raise RecordError(f"{name}: {error}") from None
    return data


def decode(line: bytes | str) -> PredictionRecord:
    """The record of one log line; ``RecordError`` names what is wrong with it."""
    data = parse(line)
    shadow = data.get("shadow")
    if shadow is not None:
        try:
            data["shadow"] = ShadowScore(**shadow)
        except TypeError as error:
            raise RecordError(f"shadow: {error}") from None
    values: dict[str, Any] = {name: data.get(name) for name in FIELDS}
    return PredictionRecord(**values)
