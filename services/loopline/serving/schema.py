"""What a prediction request carries, derived from the model spec and the feature plan.

One ``InputSchema`` serves every protocol: the native JSON API validates objects against it, and
the OIP metadata and tensor decoding are generated from it. Required fields are the spec's entity
keys and request fields, typed as Feast declares them (join keys by their entity, request-time
fields by their request source) or, failing that, by the spec (categorical: string, numeric:
double). Two fields are optional: the spec's request id (e.g. ``flight_id``), passed through to
the prediction log for the outcome join, and ``event_timestamp``, the time the features must be
valid at (ISO 8601, UTC when no offset is given; default: now). The reference data is from 2013,
so replayed requests send their own time and the TTL check applies to it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from loopline.errors import BadRequest
from loopline.features.online_plan import FieldType, OnlinePlan
from loopline.spec import ModelSpec
from loopline.times import iso_to_epoch

TIMESTAMP = "event_timestamp"
OIP_DATATYPE = {"string": "BYTES", "int64": "INT64", "double": "FP64"}


@dataclass(frozen=True, slots=True)
class Row:
    """One validated request: typed fields (entity keys and request fields), the time its
    features must be valid at (epoch seconds) and the caller's request id, if any."""

    fields: dict[str, Any]
    as_of: float
    client_id: str | None


@dataclass(frozen=True)
class InputSchema:
    fields: dict[str, FieldType]
    """Required fields and their types, entity keys first."""
    id_field: str

    @classmethod
    def build(cls, spec: ModelSpec, plan: OnlinePlan) -> InputSchema:
        declared: dict[str, FieldType] = dict(plan.request_schema)
        for view in plan.views:
            for request_key, (_, kind) in zip(view.request_keys, view.join_keys, strict=True):
                declared[request_key] = kind
        names = list(dict.fromkeys([*spec.entity_keys, *spec.request_fields]))
        missing = sorted(set(plan.request_schema) - set(names))
        if missing:
            raise ValueError(f"feature service reads request fields the spec lacks: {missing}")
        default: dict[str, FieldType] = {"categorical": "string", "numeric": "double"}
        types = {
            n: declared.get(n) or default[spec.request_fields.get(n, "categorical")] for n in names
        }
        return cls(fields=types, id_field=spec.request_id)

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
            raise BadRequest(f"{where or 'body'}: expected a JSON object")
        unknown = sorted(set(value) - set(self.fields) - set(self.optional))
        if unknown:
            raise BadRequest(f"{where}unknown field {unknown[0]!r}; fields: {self.describe()}")
        fields = {name: self.check(name, value.get(name), where) for name in self.fields}
        client_id = value.get(self.id_field)
        if client_id is not None and not isinstance(client_id, str | int):
            raise BadRequest(f"{where}field {self.id_field!r}: expected a string")
        return Row(fields, parse_timestamp(value.get(TIMESTAMP), where), _text(client_id))

    def check(self, name: str, value: Any, where: str = "") -> Any:
        """``value`` as field ``name``'s type, or ``BadRequest``."""
        kind = self.fields[name]
        if value is None:
            raise BadRequest(f"{where}field {name!r} is required ({kind})")
        if kind == "string" and isinstance(value, str):
            return value
        if not isinstance(value, bool) and isinstance(value, int | float):
            if kind == "int64" and float(value).is_integer():
                return int(value)
            if kind == "double" and math.isfinite(value):
                return float(value)
        article = (
            "an integer" if kind == "int64" else "a number" if kind == "double" else "a string"
        )
        raise BadRequest(f"{where}field {name!r}: expected {article}, got {value!r}")

    def describe(self) -> str:
        required = ", ".join(f"{n} ({t})" for n, t in self.fields.items())
        return f"{required}; optional: {self.id_field}, {TIMESTAMP} (ISO 8601)"


def parse_timestamp(value: object, where: str = "") -> float:
    """Epoch seconds of an ISO 8601 time (UTC unless it has an offset); now when absent."""
    if value is None:
        return time.time()
    if isinstance(value, str):
        try:
            return iso_to_epoch(value)
        except ValueError:
            pass
    raise BadRequest(f"{where}field {TIMESTAMP!r}: expected an ISO 8601 time, got {value!r}")


def parse_objects(schema: InputSchema, body: object, limit: int) -> list[Row]:
    """The rows of a ``/predict_batch`` body: a JSON array of request objects."""
    if not isinstance(body, list) or not body:
        raise BadRequest("body: expected a non-empty JSON array of request objects")
    if len(body) > limit:
        raise BadRequest(f"body: at most {limit} requests per batch, got {len(body)}")
    return [schema.parse_object(item, f"[{i}] ") for i, item in enumerate(body)]


def columns_to_rows(
    schema: InputSchema, columns: Mapping[str, Sequence[Any]], rows: int
) -> list[Row]:
    """Rows from typed columns (OIP tensors): every required field, optional id and time."""
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
            parse_timestamp(times[i] if times is not None else None, f"[{i}] "),
            _text(ids[i]) if ids is not None else None,
        )
        for i in range(rows)
    ]


def _text(value: object) -> str | None:
    return None if value is None else str(value)
