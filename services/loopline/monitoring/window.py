"""The live window: the champion's logged predictions of the last days, as columns.

Records are read from whichever sink serving writes (segment files, or the Redis Stream) and
folded into column arrays a chunk at a time, so a million records never exist as objects at
once: a numeric column is float64 (a missing value is NaN), a categorical one holds the values
as served.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from loopline.monitoring.drift import PREDICTION
from loopline.monitoring.stattests import ColumnKind
from loopline.predictions import PredictionRecord, PredictionStream, read_segments
from loopline.settings import Settings

CHUNK = 65_536
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


def window_frame(
    records: Iterable[PredictionRecord], model: str, version: str, columns: Mapping[str, ColumnKind]
) -> pd.DataFrame:
    """One row per record of ``model`` ``version``: request id, event time, probability and
    each of ``columns`` (a request field, else a served feature)."""
    numeric = [name for name, kind in columns.items() if kind == "numeric"]
    categorical = [name for name, kind in columns.items() if kind == "categorical"]
    numbers: list[np.ndarray] = []
    texts: list[np.ndarray] = []
    ids: list[str] = []
    times: list[datetime] = []
    rows: list[list[object]] = []
    labels: list[list[object]] = []

    def flush() -> None:
        numbers.append(np.array(rows, dtype=np.float64).reshape(len(rows), len(numeric) + 1))
        texts.append(np.array(labels, dtype=object).reshape(len(labels), len(categorical)))
        rows.clear()
        labels.clear()

    for record in records:
        if record.model != model or record.model_version != version:
            continue
        get = (record.request | record.features).get
        ids.append(record.request_id)
        times.append(record.event_timestamp)
        row = [get(name) for name in numeric]
        row.append(record.probability)
        rows.append(row)
        labels.append([get(name) for name in categorical])
        if len(rows) == CHUNK:
            flush()
    flush()
    number_block = np.concatenate(numbers)
    text_block = np.concatenate(texts)
    frame = pd.DataFrame(
        {
            REQUEST_ID: np.array(ids, dtype=object),
            EVENT_TIME: pd.to_datetime(times, utc=True),
            PREDICTION: number_block[:, -1],
            **{name: number_block[:, i] for i, name in enumerate(numeric)},
            **{name: text_block[:, i] for i, name in enumerate(categorical)},
        }
    )
    return frame[[REQUEST_ID, EVENT_TIME, PREDICTION, *columns]]
