"""The file sink's segments read straight into column arrays, for the monitor (decisions.md §19).

``read_segments`` builds a ``PredictionRecord`` of every line; the monitor then keeps eight of
its fields. On a million logged rows that cost about 200 µs a record (bench/monitor.py). This
reads the same segments, in the same order, with the same outcome per line: each line is
parsed once (orjson), held only as its dict until its values are folded, and checked as
``decode`` checks it (a JSON object holding every required field, both times ISO 8601), else
skipped and logged. Records are merged by ``timestamp``, kept in ``[since, until)`` and each
``request_id`` is kept once, exactly as ``read_segments`` does. Keys it does not read (optional
fields added to the record later) are never looked at.

``ColumnFold`` is the one fold of records into columns: both this reader and the records of
the ``redis`` sink (``PredictionRecord``) go through it.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from loopline.predictions.record import PredictionRecord, RecordError
from loopline.predictions.writer import SUFFIX

logger = logging.getLogger(__name__)
CHUNK = 65_536
REQUIRED = tuple(
    f.name
    for f in fields(PredictionRecord)
    if f.default is MISSING and f.default_factory is MISSING
)
"""The fields ``decode`` requires: those without a default."""
_TIMES = ("timestamp", "event_timestamp")


@dataclass(frozen=True)
class Columns:
    """One model version's rows: ids, event times, ``numeric`` columns then the probability
    (float64, a missing value is NaN) and the ``categorical`` columns (the values as served)."""

    request_ids: np.ndarray
    event_times: list[datetime]
    numbers: np.ndarray
    """Shape (rows, len(numeric) + 1): the last column is the probability."""
    texts: np.ndarray
    """Shape (rows, len(categorical)), dtype object."""


class ColumnFold:
    """Rows of ``model`` ``version`` folded into arrays a chunk at a time, so a million rows
    never exist as Python objects at once. A column is read from the request's fields, else
    the served features (the features win where both hold the name)."""

    def __init__(
        self, model: str, version: str, numeric: Sequence[str], categorical: Sequence[str]
    ) -> None:
        self._model, self._version = model, version
        self.numeric, self.categorical = list(numeric), list(categorical)
        self._numbers: list[np.ndarray] = []
        self._texts: list[np.ndarray] = []
        self._ids: list[str] = []
        self._times: list[datetime] = []
        self._rows: list[list[object]] = []
        self._labels: list[list[object]] = []

    def add(
        self,
        model: str,
        version: str,
        request_id: str,
        event_time: datetime,
        probability: object,
        request: Mapping[str, Any],
        features: Mapping[str, Any],
    ) -> None:
        if model != self._model or version != self._version:
            return
        get = {**request, **features}.get
        self._ids.append(request_id)
        self._times.append(event_time)
        row = [get(name) for name in self.numeric]
        row.append(probability)
        self._rows.append(row)
        self._labels.append([get(name) for name in self.categorical])
        if len(self._rows) == CHUNK:
            self._flush()

    def add_record(self, record: PredictionRecord) -> None:
        self.add(
            record.model,
            record.model_version,
            record.request_id,
            record.event_timestamp,
            record.probability,
            record.request,
            record.features,
        )

    def columns(self) -> Columns:
        self._flush()
        return Columns(
            np.array(self._ids, dtype=object),
            self._times,
            np.concatenate(self._numbers),
            np.concatenate(self._texts),
        )

    def _flush(self) -> None:
        rows, labels = self._rows, self._labels
        shape = (len(rows), len(self.numeric) + 1)
        self._numbers.append(np.array(rows, dtype=np.float64).reshape(shape))
        self._texts.append(np.array(labels, dtype=object).reshape(len(labels), -1))
        rows.clear()
        labels.clear()


def fold_segments(
    directory: Path, fold: ColumnFold, since: datetime | None = None, until: datetime | None = None
) -> None:
    """Fold the records made in ``[since, until)`` in ``directory``'s segments into ``fold``:
    the records ``read_segments`` gives, in its order."""
    files = sorted(directory.glob(f"*{SUFFIX}"))
    seen: set[str] = set()
    for stamp, event_time, data in heapq.merge(*map(_lines, files), key=itemgetter(0)):
        if (since is not None and stamp < since) or (until is not None and stamp >= until):
            continue
        request_id = data["request_id"]
        if request_id in seen:
            continue
        seen.add(request_id)
        fold.add(
            data["model"],
            data["model_version"],
            request_id,
            event_time,
            data["probability"],
            data["request"],
            data["features"],
        )


def _lines(path: Path) -> Iterator[tuple[datetime, datetime, dict[str, Any]]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                yield _parse(line)
            except RecordError as error:
                logger.warning("%s:%d is not a record (%s); skipped", path, number, error)


def _parse(line: bytes) -> tuple[datetime, datetime, dict[str, Any]]:
    """A line's times and dict, checked as ``record.decode`` checks it."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise RecordError(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise RecordError("not a JSON object")
    missing = [name for name in REQUIRED if name not in data]
    if missing:
        raise RecordError(f"missing fields {missing}")
    times = []
    for name in _TIMES:
        try:
            times.append(datetime.fromisoformat(data[name]))
        except (TypeError, ValueError) as error:
            raise RecordError(f"{name}: {error}") from None
    return times[0], times[1], data
