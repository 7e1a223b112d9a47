"""The labelled prediction dataset: logged predictions joined with their outcomes, as parquet.

One row per logged prediction that was joined (its outcome arrived) or expired (none arrived
within the maximum label delay), partitioned by the day of the request (``day=YYYY-MM-DD``, the
UTC date of ``event_timestamp``), one file per flush and day. The monitor and retraining read it
with ``read_labelled``. Columns:

- the record's ``request_id``, ``prediction_timestamp`` (the server's clock), ``model``,
  ``model_version``, ``endpoint``, ``event_timestamp``, the id field (e.g. ``flight_id``),
  ``probability`` and ``decision``;
- the outcome's ``status`` (``on_time``, ``delayed``, ``cancelled``, ``diverted``, or
  ``expired``), ``outcome_timestamp``, ``arr_delay``, ``label_delay_s`` and the label (the
  spec's label name, e.g. ``delayed``; null where the status has no label);
- ``latency_ms``: the answer's time in the server, from the log (null in older logs);
- the request fields and the features as served, by name, and each feature view's status as
  ``status_<view>``;
- ``shadow``: true for a shadow challenger's row (docs/rollout.md): the same request as the
  answered row of that ``request_id``, with the challenger's ``model_version``,
  ``probability`` and ``decision``; never answered. Files written before the column existed
  read as false. ``read_labelled`` leaves these rows out unless asked for them, so that every
  other reader sees one row per answered prediction.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loopline.predictions import PredictionRecord

PARTITION = "day"
EXPIRED = "expired"
"""The status of a prediction whose outcome did not arrive within the maximum label delay."""
_TIME = pa.timestamp("us", tz="UTC")
_VALUE_TYPES: list[tuple[type, pa.DataType]] = [
    (bool, pa.bool_()),
    (int, pa.int64()),
    (float, pa.float64()),
    (str, pa.string()),
]


@dataclass(frozen=True, slots=True)
class Joined:
    """A logged prediction and what became of its outcome."""

    record: PredictionRecord
    status: str
    """The outcome's status, or ``expired``."""
    outcome_timestamp: datetime | None
    """When the outcome became known (world time); None when expired."""
    arr_delay: float | None
    label: int | None
    """1 or 0; None for statuses without a label (cancelled, diverted, expired)."""
    shadow: bool = False
    """The shadow challenger's score of the request (``shadow_row``), not an answer."""

    def with_shadow(self) -> list[Joined]:
        """This row, and the shadow challenger's row of the same request when one scored it."""
        scored = self.record.shadow
        if scored is None:
            return [self]
        record = replace(
            self.record,
            model_version=scored.version,
            probability=scored.probability,
            decision=scored.decision,
            shadow=None,
        )
        return [self, replace(self, record=record, shadow=True)]

    @property
    def label_delay_s(self) -> float | None:
        """From the request to its label, in world time."""
        if self.outcome_timestamp is None:
            return None
        return (self.outcome_timestamp - self.record.event_timestamp).total_seconds()


class LabelledDataset:
    """Writes joined predictions under ``directory``; ``label`` names the label column."""

    def __init__(self, directory: Path, label: str) -> None:
        self.directory = directory
        self._label = label
        self._sequence = 0

    def write(self, joined: Sequence[Joined]) -> list[Path]:
        """Write ``joined``, one file per day of request; returns the files written."""
        if not joined:
            return []
        schema = self._schema(joined)
        by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in joined:
            by_day[f"{item.record.event_timestamp:%Y-%m-%d}"].append(self._row(item))
        written = []
        for day, rows in sorted(by_day.items()):
            table = pa.Table.from_pylist(rows, schema=schema)
            directory = self.directory / f"{PARTITION}={day}"
            directory.mkdir(parents=True, exist_ok=True)
            self._sequence += 1
            name = f"part-{time.time_ns()}-{os.getpid()}-{self._sequence:06d}.parquet"
            partial = directory / f".{name}.partial"
            pq.write_table(table, partial)
            os.replace(partial, directory / name)
            written.append(directory / name)
        return written

    def _schema(self, joined: Sequence[Joined]) -> pa.Schema:
        first = joined[0].record
        fields = [
            ("request_id", pa.string()),
            ("prediction_timestamp", _TIME),
            ("model", pa.string()),
            ("model_version", pa.string()),
            ("endpoint", pa.string()),
            ("event_timestamp", _TIME),
            (first.id_field, pa.string()),
            ("probability", pa.float64()),
            ("decision", pa.bool_()),
            ("status", pa.string()),
            ("outcome_timestamp", _TIME),
            ("arr_delay", pa.float64()),
            (self._label, pa.int64()),
            ("label_delay_s", pa.float64()),
            ("latency_ms", pa.float64()),
            ("shadow", pa.bool_()),
        ]
        fields += [
            (name, _value_type([item.record.request.get(name) for item in joined]))
            for name in first.request
        ]
        fields += [(name, pa.float64()) for name in first.features]
        fields += [(f"status_{view}", pa.string()) for view in first.feature_status]
        names = [name for name, _ in fields]
        if len(set(names)) != len(names):
            clash = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"request fields or features reuse column names: {clash}")
        return pa.schema(fields)

    def _row(self, item: Joined) -> dict[str, Any]:
        record = item.record
        values: dict[str, Any] = {
            "request_id": record.request_id,
            "prediction_timestamp": record.timestamp,
            "model": record.model,
            "model_version": record.model_version,
            "endpoint": record.endpoint,
            "event_timestamp": record.event_timestamp,
            record.id_field: record.id_value,
            "probability": record.probability,
            "decision": record.decision,
            "status": item.status,
            "outcome_timestamp": item.outcome_timestamp,
            "arr_delay": item.arr_delay,
            self._label: item.label,
            "label_delay_s": item.label_delay_s,
            "latency_ms": record.latency_ms,
            "shadow": item.shadow,
            **record.request,
        }
        values.update(
            (name, None if value is None else float(value))
            for name, value in record.features.items()
        )
        values.update((f"status_{view}", s) for view, s in record.feature_status.items())
        return values


def _value_type(values: Sequence[Any]) -> pa.DataType:
    """A request field's type, from its values (the serving schema gives each field one)."""
    for value in values:
        for python, arrow in _VALUE_TYPES:
            if isinstance(value, python):
                return arrow
    return pa.string()


def read_labelled(
    directory: Path,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    shadow: bool = False,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The dataset's rows with ``event_timestamp`` in ``[since, until)``, each request once
    (a join restarted on the same log writes a row again; the first is kept). ``shadow``:
    the shadow challengers' rows too (once per request and version; column ``shadow``).
    ``columns``: only these (and the three above), read from only the days' partitions that
    can hold rows of the span: a count over months reads in a fraction of the time."""
    files = [
        path
        for path in sorted(directory.glob(f"{PARTITION}=*/*.parquet"))
        if _may_hold(path.parent.name.removeprefix(f"{PARTITION}="), since, until)
    ]
    if not files:
        return pd.DataFrame(columns=["request_id", "event_timestamp", "shadow"])
    frame = pd.concat([_read(path, columns) for path in files], ignore_index=True, sort=False)
    if "shadow" not in frame.columns:
        frame["shadow"] = False
    frame["shadow"] = frame["shadow"].fillna(False).astype(bool)
    if not shadow:
        frame = frame[~frame["shadow"]]
    frame = frame.drop_duplicates(["request_id", "shadow"], keep="first")
    if since is not None:
        frame = frame[frame["event_timestamp"] >= pd.Timestamp(since)]
    if until is not None:
        frame = frame[frame["event_timestamp"] < pd.Timestamp(until)]
    return frame.sort_values(["event_timestamp", "request_id"], ignore_index=True)


def _may_hold(day: str, since: datetime | None, until: datetime | None) -> bool:
    """Whether partition ``day`` may hold rows stamped in ``[since, until)``: a day on either
    side too, since a partition is the day of the request's own time zone."""
    margin = timedelta(days=1)
    if since is not None and day < f"{since - margin:%Y-%m-%d}":
        return False
    return until is None or day <= f"{until + margin:%Y-%m-%d}"


def _read(path: Path, columns: Sequence[str] | None) -> pd.DataFrame:
    if columns is None:
        return pq.read_table(path).to_pandas()
    names = set(pq.read_schema(path).names)
    wanted = dict.fromkeys(["request_id", "event_timestamp", "shadow", *columns])
    return pq.read_table(path, columns=[c for c in wanted if c in names]).to_pandas()
