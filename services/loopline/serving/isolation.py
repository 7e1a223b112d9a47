"""One request that cannot be served never fails the others in its micro-batch.

Validation (``schema``, ``oip``) bounds every value up front, so this is the second line of
defence, for what slips past it: when a batch's feature read or preprocessing raises, ``core``
serves the batch again request by request, and when a row's prediction record cannot be built or
encoded, only its request fails. A request that fails is answered 400 naming its row (``[i]``,
when it has several) and, where it can be told, the field at fault; none of its rows is logged.
A batch where nothing raises takes none of these paths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from loopline.errors import BadRequest, RequestError
from loopline.features.online import Lookup, OnlineFeatures
from loopline.serving.schema import TIMESTAMP, Row, Submission


def spans(sizes: Sequence[int]) -> list[tuple[int, int]]:
    """The ``[start, stop)`` row range of each request of a batch, from their row counts."""
    result, start = [], 0
    for size in sizes:
        result.append((start, start + size))
        start += size
    return result


def sliced(lookup: Lookup, start: int, stop: int) -> Lookup:
    return Lookup(
        {name: column[start:stop] for name, column in lookup.values.items()},
        {view: states[start:stop] for view, states in lookup.status.items()},
    )


def merged(lookups: Sequence[Lookup], features: Sequence[str], views: Sequence[str]) -> Lookup:
    """The lookups of consecutive requests as one."""
    return Lookup(
        {name: [v for lookup in lookups for v in lookup.values[name]] for name in features},
        {view: [s for lookup in lookups for s in lookup.status[view]] for view in views},
    )


NEUTRAL = {"string": "", "int64": 0, "double": 0.0}
"""A value of each field type that any feature read takes (to tell which field one refuses)."""


async def lookup_one_by_one(
    features: OnlineFeatures,
    batch: Sequence[Submission],
    names: Sequence[str],
    views: Sequence[str],
    kinds: Mapping[str, str],
) -> tuple[list[Row], Lookup, dict[int, RequestError]]:
    """The feature lookups of ``batch`` request by request, after the batch's raised (a failing
    store does not raise, it is served as ``fallback``; an on-demand transformation may, on a
    value it cannot take): the rows whose lookup worked, their features (``names``) and
    statuses, and the requests (by position) whose own lookup raised, with the field to blame:
    the one that, set to a ``NEUTRAL`` value (``kinds``: each field's type), lets it pass."""
    rows: list[Row] = []
    lookups: list[Lookup] = []
    failed: dict[int, RequestError] = {}
    for k, submission in enumerate(batch):
        own = submission.rows
        times = [r.as_of for r in own]
        try:
            lookups.append(await features.lookup([r.fields for r in own], times))
        except Exception as error:
            culprit = "the request"
            for name, kind in kinds.items():
                try:
                    await features.lookup([{**r.fields, name: NEUTRAL[kind]} for r in own], times)
                except Exception:
                    continue
                culprit = f"field {name!r}"
                break
            failed[k] = BadRequest(
                f"{culprit}: the feature lookup failed on it ({type(error).__name__})"
            )
            continue
        rows += own
    return rows, merged(lookups, names, views), failed


def _where(index: int, rows: int) -> str:
    return f"[{index}] " if rows > 1 else ""


def preprocessing_failed(
    rows: Sequence[Row], attempt: Callable[[Sequence[Row], int], object], error: Exception
) -> BadRequest:
    """The error for a request whose rows ``attempt(rows, offset)`` (preprocessing and the
    network) raised on: the first row that fails alone, and the field that, left out (served as
    missing, as preprocessing serves any missing value), lets it pass."""
    for index, row in enumerate(rows):
        try:
            attempt([row], index)
        except Exception as row_error:
            for name in row.fields:
                try:
                    attempt([Row({**row.fields, name: None}, row.as_of, row.client_id)], index)
                except Exception:
                    continue
                return BadRequest(
                    f"{_where(index, len(rows))}field {name!r} cannot be preprocessed "
                    f"({type(row_error).__name__})"
                )
            return BadRequest(
                f"{_where(index, len(rows))}the row cannot be preprocessed "
                f"({type(row_error).__name__})"
            )
    return BadRequest(f"the request cannot be preprocessed ({type(error).__name__})")


def record_failed(row: Row, id_field: str, index: int, rows: int, error: Exception) -> BadRequest:
    """The error for a row whose prediction record could not be built or encoded, naming the
    value that cannot be logged."""
    return BadRequest(
        f"{_where(index, rows)}{_unloggable(row, id_field)} cannot be logged "
        f"({type(error).__name__})"
    )


def _unloggable(row: Row, id_field: str) -> str:
    try:
        datetime.fromtimestamp(row.as_of, UTC)
    except (ValueError, OverflowError, OSError):
        return f"field {TIMESTAMP!r}"
    values: list[tuple[str, Any]] = [*row.fields.items(), (id_field, row.client_id)]
    for name, value in values:
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError:
            return f"field {name!r}"
    return "the row"
