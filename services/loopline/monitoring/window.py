"""The live window: the champion's logged predictions of the last days, as columns.

Records are read from whichever sink serving writes into column arrays, so a million records
never exist as objects at once: a numeric column is float64 (a missing value is NaN), a
categorical one holds the values as served. The ``file`` sink's segments are read straight into
columns (``read_columns``: pyarrow's JSON reader, no record objects, decisions.md §19); the
``redis`` sink's stream is read as records and folded a chunk at a time (``ColumnFold``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from loopline.monitoring.drift import PREDICTION
from loopline.monitoring.stattests import ColumnKind
from loopline.predictions import PredictionRecord, PredictionStream, read_segments
from loopline.predictions.columns import ColumnFold, Columns, read_columns
from loopline.settings import Settings

REQUEST_ID = "request_id"
EVENT_TIME = "event_timestamp"


@dataclass(frozen=True)
class Window:
    """Predictions made (the server's clock) in ``[start, end)``."""

    start: datetime
    end: datetime

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def logged(settings: Settings, window: Window) -> Iterator[PredictionRecord]:
    """The window's records, from the sink serving writes (``prediction_log_sink``)."""
    url = settings.prediction_log_url
    if url is None:
        return read_segments(settings.log_dir, window.start, window.end)
    stream = PredictionStream.from_url(url, settings.prediction_log_stream)
    return stream.read(since=window.start, until=window.end)


def live_frame(
    settings: Settings, window: Window, model: str, version: str, columns: Mapping[str, ColumnKind]
) -> pd.DataFrame:
    """``window_frame`` of the window's records, from the sink serving writes."""
    if settings.prediction_log_url is None:
        return segments_frame(settings.log_dir, model, version, columns, window)
    return window_frame(logged(settings, window), model, version, columns)


def segments_frame(
    directory: Path,
    model: str,
    version: str,
    columns: Mapping[str, ColumnKind],
    window: Window | None = None,
) -> pd.DataFrame:
    """``window_frame(read_segments(directory, …))``, read without record objects."""
    numeric, categorical = _kinds(columns)
    since, until = (None, None) if window is None else (window.start, window.end)
    folded = read_columns(directory, model, version, numeric, categorical, since, until)
    return _frame(folded, numeric, categorical, columns)


def window_frame(
    records: Iterable[PredictionRecord], model: str, version: str, columns: Mapping[str, ColumnKind]
) -> pd.DataFrame:
    """One row per record of ``model`` ``version``: request id, event time, probability and
    each of ``columns`` (a request field, else a served feature)."""
    numeric, categorical = _kinds(columns)
    fold = ColumnFold(model, version, numeric, categorical)
    for record in records:
        fold.add(record)
    return _frame(fold.columns(), numeric, categorical, columns)


def _kinds(columns: Mapping[str, ColumnKind]) -> tuple[list[str], list[str]]:
    numeric = [name for name, kind in columns.items() if kind == "numeric"]
    return numeric, [name for name, kind in columns.items() if kind == "categorical"]


def _frame(
    folded: Columns, numeric: list[str], categorical: list[str], columns: Mapping[str, ColumnKind]
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            REQUEST_ID: folded.request_ids,
            EVENT_TIME: pd.to_datetime(folded.event_times, unit="us", utc=True),
            PREDICTION: folded.numbers[:, -1],
            **{name: folded.numbers[:, i] for i, name in enumerate(numeric)},
            **{name: folded.texts[:, i] for i, name in enumerate(categorical)},
        }
    )
    return frame[[REQUEST_ID, EVENT_TIME, PREDICTION, *columns]]
