"""What a prediction request carries, derived from the model spec and the feature plan.

One ``InputSchema`` serves every protocol: the native JSON API validates objects against it, and
the OIP metadata, tensor decoding and the OpenAPI document (``openapi``) are generated from it.
Required fields are the spec's entity keys and request fields, typed as Feast declares them (join
keys by their entity, request-time fields by their request source) or, failing that, by the spec
(categorical: string, numeric: double). Two fields are optional: the spec's request id (e.g.
``flight_id``), passed through to the prediction log for the outcome join, and
``event_timestamp``, the time the features must be valid at (ISO 8601, UTC when no offset is
given; default: now). The reference data is from 2013, so replayed requests send their own time
and the TTL check applies to it.

A native request may also name its prediction: ``request_id`` (the OIP request's ``id``), at most
``Limits.chars`` characters and no control characters, becomes the server's id of the prediction,
answered and written to the prediction log. Ids repeated within one batch are refused; the server
cannot see across requests, and the log's readers keep the first record of a repeated id, so a
caller's ids should be unique.

Validation bounds every value the model and the prediction log will see, so a row that passes
can be served and logged: integers within int64, numbers finite, strings at most
``Limits.chars`` characters, times between ``EARLIEST`` and ``LATEST`` (UTC), at most
``Limits.rows`` rows per request. Errors name the field and echo at most a few characters of the
bad value (``errors.brief``).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from loopline.errors import BadRequest, brief
from loopline.features.online_plan import FieldType, OnlinePlan
from loopline.settings import Settings
from loopline.spec import ModelSpec
from loopline.times import iso_to_epoch

TIMESTAMP = "event_timestamp"
REQUEST_ID = "request_id"
REQUEST_ID_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
"""A caller's request id: no control characters (one pattern for validation and the OpenAPI
document), at least one character; its length bound is ``Limits.chars``."""
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
OIP_DATATYPE = {"string": "BYTES", "int64": "INT64", "double": "FP64"}
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(2200, 1, 1, tzinfo=UTC).timestamp()
"""``event_timestamp`` must fall in [EARLIEST, LATEST) once in UTC: a time the log can record
(years 1-9999) and a feature TTL can be checked against."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-request bounds (``LOOPLINE_MAX_REQUEST_ROWS``, ``LOOPLINE_MAX_STRING_CHARS``)."""

    rows: int = 1000
    chars: int = 256

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(rows=settings.max_request_rows, chars=settings.max_string_chars)


@dataclass(frozen=True, slots=True)
class Row:
    """One validated request: typed fields (entity keys and request fields), the time its
    features must be valid at (epoch seconds), the caller's value of the spec's id field
    (``client_id``) and the id the caller gave the prediction (``request_id``), if any."""

    fields: dict[str, Any]
    as_of: float
    client_id: str | None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Submission:
    """One request's rows; ``endpoint`` names the protocol in the log and metrics."""

    rows: list[Row]
    endpoint: str
    received: float = field(default_factory=time.perf_counter)
    """When it was submitted (``perf_counter``): the log's ``latency_ms`` counts from here."""


@dataclass(frozen=True)
class InputSchema:
    fields: dict[str, FieldType]
    """Required fields and their types, entity keys first."""
    id_field: str
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def build(cls, spec: ModelSpec, plan: OnlinePlan, limits: Limits | None = None) -> InputSchema:
        declared: dict[str, FieldType] = dict(plan.request_schema)
        for view in plan.views:
            for request_key, (_, kind) in zip(view.request_keys, view.join_keys, strict=True):
                declared[request_key] = kind
        names = list(dict.fromkeys([*spec.entity_keys, *spec.request_fields]))
        missing = sorted(set(plan.request_schema) - set(names))
        if missing:
            raise ValueError(f"feature service reads request fields the spec lacks: {missing}")
        if REQUEST_ID in {*names, spec.request_id, TIMESTAMP}:
            raise ValueError(f"{REQUEST_ID!r} names the prediction: no spec field may take it")
        default: dict[str, FieldType] = {"categorical": "string", "numeric": "double"}
        types = {
            n: declared.get(n) or default[spec.request_fields.get(n, "categorical")] for n in names
        }
        return cls(fields=types, id_field=spec.request_id, limits=limits or Limits())

    @property
    def optional(self) -> tuple[str, str]:
        return self.id_field, TIMESTAMP

    @cached_property
    def oip_datatypes(self) -> dict[str, str]:
        """Each input's OIP datatype ("" for the request id, which may be of any type)."""
        datatypes = {name: OIP_DATATYPE[kind] for name, kind in self.fields.items()}
        return {**datatypes, self.id_field: "", TIMESTAMP: "BYTES"}

    def parse_object(self, value: object, where: str = "") -> Row:
        """Validate one native JSON request object; ``BadRequest`` names the offending field."""
        if not isinstance(value, dict):
            raise BadRequest(f"{where or 'body: '}expected a JSON object, got {brief(value)}")
        unknown = [
            name
            for name in value
            if name not in self.fields and name not in self.optional and name != REQUEST_ID
        ]
        if unknown:
            raise BadRequest(
                f"{where}unknown field {brief(unknown[0])}; fields: {self.describe()}, {REQUEST_ID}"
            )
        fields = {name: self.check(name, value.get(name), where) for name in self.fields}
        return Row(
            fields,
            self.timestamp(value.get(TIMESTAMP), where),
            self.client_id(value.get(self.id_field), where),
            check_request_id(value.get(REQUEST_ID), f"{where}field {REQUEST_ID!r}", self.limits),
        )

    def check(self, name: str, value: Any, where: str = "") -> Any:
        """``value`` as field ``name``'s type, within its bounds, or ``BadRequest``."""
        kind = self.fields[name]
        if value is None:
            raise BadRequest(f"{where}field {name!r} is required ({kind})")
        if kind == "string":
            if isinstance(value, str):
                return self._bounded(name, value, where)
        elif not isinstance(value, bool) and isinstance(value, int | float):
            if kind == "int64":
                return _int64(name, value, where)
            if isinstance(value, float) and math.isfinite(value):
                return value
            if isinstance(value, int) and abs(value) <= 1 << 64:
                return float(value)
        article = (
            "an integer" if kind == "int64" else "a number" if kind == "double" else "a string"
        )
        raise BadRequest(f"{where}field {name!r}: expected {article}, got {brief(value)}")

    def client_id(self, value: object, where: str = "") -> str | None:
        """The caller's request id (a string or an integer), as text; None when absent."""
        if value is None:
            return None
        if isinstance(value, str):
            return self._bounded(self.id_field, value, where)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(_int64(self.id_field, value, where))
        raise BadRequest(f"{where}field {self.id_field!r}: expected a string, got {brief(value)}")

    def timestamp(self, value: object, where: str = "") -> float:
        """Epoch seconds of an ISO 8601 time (UTC unless it has an offset); now when absent."""
        if isinstance(value, str):
            self._bounded(TIMESTAMP, value, where)
        return parse_timestamp(value, where)

    def _bounded(self, name: str, value: str, where: str) -> str:
        if len(value) > self.limits.chars:
            raise BadRequest(
                f"{where}field {name!r}: {len(value)} characters, at most {self.limits.chars}"
            )
        return value

    def describe(self) -> str:
        required = ", ".join(f"{n} ({t})" for n, t in self.fields.items())
        return f"{required}; optional: {self.id_field}, {TIMESTAMP} (ISO 8601)"


def check_request_id(value: object, label: str, limits: Limits) -> str | None:
    """A caller's id for its prediction (``label`` names the field in errors); None when
    absent. (An OIP request without an ``id`` may send ``""``: those callers pass None.)"""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{label}: expected a non-empty string, got {brief(value)}")
    if len(value) > limits.chars:
        raise BadRequest(f"{label}: {len(value)} characters, at most {limits.chars}")
    if _REQUEST_ID.fullmatch(value) is None:
        raise BadRequest(f"{label}: {brief(value)} has a control character")
    return value


def parse_timestamp(value: object, where: str = "") -> float:
    """Epoch seconds of an ISO 8601 time (UTC unless it has an offset), between ``EARLIEST``
    and ``LATEST``; now when absent."""
    if value is None:
        return time.time()
    if isinstance(value, str):
        try:
            epoch = iso_to_epoch(value)
        except ValueError:
            pass
        else:
            if EARLIEST <= epoch < LATEST:
                return epoch
            raise BadRequest(
                f"{where}field {TIMESTAMP!r}: {brief(value)} is outside 1900-2199 (UTC)"
            )
    raise BadRequest(f"{where}field {TIMESTAMP!r}: expected an ISO 8601 time, got {brief(value)}")


def parse_objects(schema: InputSchema, body: object, limit: int | None = None) -> list[Row]:
    """The rows of a ``/predict_batch`` body: a JSON array of at most ``limit`` (default: the
    schema's row limit) request objects."""
    limit = schema.limits.rows if limit is None else limit
    if not isinstance(body, list) or not body:
        raise BadRequest("body: expected a non-empty JSON array of request objects")
    if len(body) > limit:
        raise BadRequest(f"body: at most {limit} requests per batch, got {len(body)}")
    rows = [schema.parse_object(item, f"[{i}] ") for i, item in enumerate(body)]
    first: dict[str, int] = {}
    for i, row in enumerate(rows):
        if row.request_id is not None:
            seen = first.setdefault(row.request_id, i)
            if seen != i:
                raise BadRequest(
                    f"[{i}] field {REQUEST_ID!r}: {brief(row.request_id)} is item [{seen}]'s too"
                )
    return rows


def columns_to_rows(
    schema: InputSchema,
    columns: Mapping[str, Sequence[Any]],
    rows: int,
    request_id: str | None = None,
) -> list[Row]:
    """Rows from typed columns (OIP tensors): every required field, optional id and time.
    ``request_id`` (the OIP request's ``id``, validated) names the prediction of a one-row
    request; the rows of a longer one are ``<id>:0``, ``<id>:1``, … (the log keeps one record
    per id)."""
    for name in schema.fields:
        if name not in columns:
            raise BadRequest(f"input {name!r} is required; inputs: {schema.describe()}")
    ids = columns.get(schema.id_field)
    times = columns.get(TIMESTAMP)
    return [
        Row(
            {
                name: schema.check(name, columns[name][i], f"input {name!r}[{i}]: ")
                for name in schema.fields
            },
            schema.timestamp(times[i] if times is not None else None, f"[{i}] "),
            schema.client_id(ids[i], f"[{i}] ") if ids is not None else None,
            _row_request_id(request_id, i, rows),
        )
        for i in range(rows)
    ]


def _row_request_id(request_id: str | None, row: int, rows: int) -> str | None:
    """Row ``row``'s id, of ``rows``, in a request named ``request_id``."""
    if request_id is None or rows == 1:
        return request_id
    return f"{request_id}:{row}"


def _int64(name: str, value: int | float, where: str) -> int:
    """``value`` as an integer within int64 (a float only if integral)."""
    if isinstance(value, float):
        if not value.is_integer():
            raise BadRequest(f"{where}field {name!r}: expected an integer, got {brief(value)}")
        value = int(value)
    if INT64_MIN <= value <= INT64_MAX:
        return value
    raise BadRequest(f"{where}field {name!r}: {brief(value)} is out of the int64 range")
