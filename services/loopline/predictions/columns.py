"""The file sink's segments read straight into column arrays, for the monitor (decisions.md §19).

``read_segments`` builds a ``PredictionRecord`` of every line; the monitor keeps eight of its
fields. ``read_columns`` gives the same rows, in the same order, from the same lines, with only
those fields: each segment is parsed by pyarrow's JSON reader (C++) against a schema of the
record's required fields and the wanted columns, keys outside it ignored (fields added to the
record later cost nothing). A row is accepted as is only where that cannot differ from
``decode``: a row with a null in a required field (missing, or null), a wanted column null in
the features but set in the request, or a NaN or infinity (a literal orjson refuses) is read
again by ``_parse``, which checks a line as ``decode`` does. A segment pyarrow refuses (a torn
or foreign line, a value of another type than the schema's, blank lines) is read line by line
the same way. The gaps: a NaN literal in a field the monitor does not read, and a time that
pyarrow parses and ``datetime.fromisoformat`` would not; our encoder (orjson, ``isoformat``)
writes neither. (A record without ``id_value``, null, is one of the rows read again.) Records
are then merged by ``timestamp`` (as ``heapq.merge`` does), kept in ``[since, until)``, each
``request_id`` once, and filtered to one model version.

``ColumnFold`` folds ``PredictionRecord`` objects (the ``redis`` sink's) into the same columns.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from loopline.predictions.record import REQUIRED, PredictionRecord, RecordError, parse
from loopline.predictions.writer import SUFFIX

logger = logging.getLogger(__name__)
_TIME = pa.timestamp("us", tz="UTC")
_TOP = {"timestamp": _TIME, "event_timestamp": _TIME, "probability": pa.float64()}
_TOP |= {"decision": pa.bool_(), "feature_status": pa.struct([])}
_KINDS = {bool: pa.bool_(), int: pa.int64(), str: pa.string()}
"""Arrow types of categorical values (a float one is read line by line: 1 and 1.0 differ)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_SAMPLE = 1000
"""Lines read first to learn the categorical columns' types."""


@dataclass(frozen=True)
class Columns:
    """One model version's rows: ids, event times (UTC microseconds), the ``numeric`` columns
    then the probability (float64, a missing value is NaN), the ``categorical`` columns (the
    values as served)."""

    request_ids: np.ndarray
    event_times: np.ndarray
    numbers: np.ndarray
    """Shape (rows, len(numeric) + 1): the last column is the probability."""
    texts: np.ndarray
    """Shape (rows, len(categorical)), dtype object."""


_Rows = dict[str, np.ndarray]
"""Rows before filtering: ``line``, ``stamp`` and ``event`` (µs), ``id``, ``model``,
``version``, ``numbers``, ``texts``."""


def read_columns(
    directory: Path,
    model: str,
    version: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
    since: datetime | None = None,
    until: datetime | None = None,
) -> Columns:
    """The ``model`` ``version`` rows of the records ``read_segments(directory, since, until)``
    gives, in its order; a column is a request field, else a served feature (the features win)."""
    files = sorted(directory.glob(f"*{SUFFIX}"))
    parts = [_segment(path, numeric, categorical) for path in files]
    rows = _concat([_rows([], numeric, categorical), *parts])
    if all(np.all(np.diff(part["stamp"]) >= 0) for part in parts):
        order = np.argsort(rows["stamp"], kind="stable")  # heapq.merge's order on sorted inputs
    else:  # a clock stepped back within a segment: merge as read_segments does
        starts = np.cumsum([0] + [len(part["stamp"]) for part in parts])
        runs = [enumerate(p["stamp"].tolist(), s) for p, s in zip(parts, starts, strict=False)]
        order = np.array([i for i, _ in heapq.merge(*runs, key=itemgetter(1))], dtype=np.int64)
    low = -np.inf if since is None else _micros(since)
    high = np.inf if until is None else _micros(until)
    stamps = rows["stamp"][order]
    order = order[(stamps >= low) & (stamps < high)]
    order = order[~pd.Series(rows["id"][order]).duplicated().to_numpy()]
    order = order[(rows["model"][order] == model) & (rows["version"][order] == version)]
    rows = _take(rows, order)  # the wide arrays are copied once
    return Columns(rows["id"], rows["event"], rows["numbers"], rows["texts"])


class ColumnFold:
    """Records of ``model`` ``version`` folded into arrays a chunk at a time, so a million rows
    never exist as objects at once."""

    CHUNK = 65_536

    def __init__(
        self, model: str, version: str, numeric: Sequence[str], categorical: Sequence[str]
    ) -> None:
        self._model, self._version = model, version
        self._numeric, self._categorical = numeric, categorical
        self._parts = [_rows([], numeric, categorical)]
        self._records: list[PredictionRecord] = []

    def add(self, record: PredictionRecord) -> None:
        if record.model == self._model and record.model_version == self._version:
            self._records.append(record)
            if len(self._records) == self.CHUNK:
                self._flush()

    def columns(self) -> Columns:
        self._flush()
        rows = _concat(self._parts)
        return Columns(rows["id"], rows["event"], rows["numbers"], rows["texts"])

    def _flush(self) -> None:
        kept = [(0, r.timestamp, r.event_timestamp, _fields(r)) for r in self._records]
        self._parts.append(_rows(kept, self._numeric, self._categorical))
        self._records.clear()


def _segment(path: Path, numeric: Sequence[str], categorical: Sequence[str]) -> _Rows:
    """A segment's valid lines: parsed by pyarrow where it can, else line by line."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1]
    tail = [(len(lines) + 1, data[end:])] if data[end:] else []  # being written, or torn
    fast = _arrow(data[:end], lines, numeric, categorical)
    if fast is None:
        logger.info("%s: read line by line", path)
        return _lines(path, [*enumerate(lines, 1), *tail], numeric, categorical)
    rows, again = fast
    if not again and not tail:
        return rows
    rest = _lines(path, [*((n, lines[n - 1]) for n in again), *tail], numeric, categorical)
    both = _concat([rows, rest])
    return _take(both, np.argsort(both["line"], kind="stable"))


def _arrow(
    data: bytes, lines: list[bytes], numeric: Sequence[str], categorical: Sequence[str]
) -> tuple[_Rows, list[int]] | None:
    """The rows pyarrow reads that equal ``decode``'s, and the line numbers to read again."""
    kinds = _categorical_kinds(lines, categorical)
    if kinds is None:
        return None
    wanted = [(name, pa.float64()) for name in numeric] + list(kinds.items())
    types = _TOP | {"request": pa.struct(wanted), "features": pa.struct(wanted)}
    schema = pa.schema([(name, types.get(name, pa.string())) for name in REQUIRED])
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        table = pj.read_json(pa.BufferReader(data), parse_options=options).combine_chunks()
    except pa.ArrowInvalid:
        return None
    if table.num_rows != len(lines):  # blank lines, which decode refuses
        return None
    again = np.zeros(table.num_rows, dtype=bool)
    for name in REQUIRED:
        again |= _mask(table[name].is_null())
    values = {}
    for name, _ in wanted:
        feature = pc.struct_field(table["features"], name)
        request = pc.struct_field(table["request"], name)
        again |= _mask(feature.is_null()) & _mask(request.is_valid())
        values[name] = pc.coalesce(feature, request)
    floats = [*(values[n] for n in numeric), table["probability"]]
    block = np.column_stack([array.to_numpy(zero_copy_only=False) for array in floats])
    for array in floats:  # a NaN literal (not a null), which orjson refuses
        again |= _mask(pc.fill_null(pc.is_nan(array), False))
    again |= np.isinf(block).any(axis=1)
    texts = np.empty((len(lines), len(categorical)), dtype=object)
    for i, name in enumerate(categorical):
        texts[:, i] = _objects(values[name])
    rows = {
        "line": np.arange(1, len(lines) + 1),
        "stamp": _stamps(table["timestamp"]),
        "event": _stamps(table["event_timestamp"]),
        "id": np.asarray(table["request_id"].to_numpy(zero_copy_only=False), dtype=object),
        "model": _objects(table["model"]),
        "version": _objects(table["model_version"]),
        "numbers": block,
        "texts": texts,
    }
    return _take(rows, ~again), (np.flatnonzero(again) + 1).tolist()


def _categorical_kinds(lines: list[bytes], categorical: Sequence[str]) -> dict[str, Any] | None:
    """Each categorical column's arrow type, from its first value in the first lines; None
    where a value has no exact arrow type here (a float, a list)."""
    kinds: dict[str, Any] = {}
    for line in lines[:_SAMPLE]:
        try:
            data = orjson.loads(line)
            get = {**data["request"], **data["features"]}.get
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
        for name in categorical:
            value = get(name)
            if name not in kinds and value is not None:
                if type(value) not in _KINDS:
                    return None
                kinds[name] = _KINDS[type(value)]
    return {name: kinds.get(name, pa.string()) for name in categorical}


def _lines(
    path: Path,
    numbered: Iterable[tuple[int, bytes]],
    numeric: Sequence[str],
    categorical: Sequence[str],
) -> _Rows:
    """Rows of the lines ``decode`` accepts; the others logged as ``read_segments`` logs them."""
    kept = []
    for number, line in numbered:
        try:
            kept.append((number, *_parse(line)))
        except RecordError as error:
            logger.warning("%s:%d is not a record (%s); skipped", path, number, error)
    return _rows(kept, numeric, categorical)


def _parse(line: bytes) -> tuple[datetime, datetime, dict[str, Any]]:
    """A line's times and fields, checked as ``record.decode`` checks them."""
    data = parse(line)
    return data["timestamp"], data["event_timestamp"], data


def _fields(record: PredictionRecord) -> dict[str, Any]:
    names = ("request_id", "model", "model_version", "request", "features", "probability")
    return {name: getattr(record, name) for name in names}


def _rows(
    kept: Sequence[tuple[int, datetime, datetime, Mapping[str, Any]]],
    numeric: Sequence[str],
    categorical: Sequence[str],
) -> _Rows:
    """Rows of parsed records: (line number, timestamp, event time, the record's fields)."""
    numbers, texts = [], []
    for *_, data in kept:
        get = {**data["request"], **data["features"]}.get
        numbers.append([*map(get, numeric), data["probability"]])
        texts.append([*map(get, categorical)])
    return {
        "line": np.array([k[0] for k in kept], dtype=np.int64),
        "stamp": np.array([_micros(k[1]) for k in kept], dtype=np.int64),
        "event": np.array([_micros(k[2]) for k in kept], dtype=np.int64),
        "id": np.array([k[3]["request_id"] for k in kept], dtype=object),
        "model": np.array([k[3]["model"] for k in kept], dtype=object),
        "version": np.array([k[3]["model_version"] for k in kept], dtype=object),
        "numbers": np.array(numbers, dtype=np.float64).reshape(len(kept), len(numeric) + 1),
        "texts": np.array(texts, dtype=object).reshape(len(kept), len(categorical)),
    }


def _concat(parts: list[_Rows]) -> _Rows:
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _take(rows: _Rows, index: np.ndarray) -> _Rows:
    return {key: values[index] for key, values in rows.items()}


def _objects(array: pa.ChunkedArray) -> np.ndarray:
    """Python values (None for null), one object per distinct value."""
    encoded = pc.dictionary_encode(array).combine_chunks()
    values = np.empty(len(encoded.dictionary) + 1, dtype=object)
    values[:-1] = encoded.dictionary.to_pylist()
    picked: np.ndarray = values[encoded.indices.fill_null(len(values) - 1).to_numpy()]
    return picked


def _mask(array: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=bool)


def _stamps(array: pa.ChunkedArray) -> np.ndarray:
    stamps: np.ndarray = array.cast(pa.int64()).to_numpy()
    return stamps


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _US
