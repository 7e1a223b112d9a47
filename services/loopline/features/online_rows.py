"""Ingest's rows as Feast's online-write tuples, converted the way Feast's own write path does.

``provider.ingest_df`` builds a pandas frame into an Arrow table and converts its columns; for
the few dozen rows of an ingest batch that costs far more than the write itself (docs/decisions.md,
17). ``online_rows`` takes the rows as they are (dicts of Python values), gives each column to
Feast's value converter (``python_values_to_proto_values``) as the numpy array Arrow would have
handed it (floats with NaN for null, int64, objects), and builds the entity keys and naive UTC
timestamps as ``_convert_arrow_fv_to_proto`` does. A test holds the result equal to Feast's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from feast import FeatureView
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.type_map import python_values_to_proto_values
from feast.value_type import ValueType

OnlineRow = tuple[EntityKey, dict[str, Value], datetime, datetime | None]
"""(entity key, feature values, event time, created time: none here)."""

_NUMPY = {ValueType.DOUBLE: np.float64, ValueType.FLOAT: np.float32, ValueType.INT64: np.int64}
"""The numpy dtype Arrow gives Feast a column of each value type in (others: objects)."""


def _column(values: list[Any], kind: ValueType) -> list[Value]:
    dtype = _NUMPY.get(kind)
    if dtype is np.float64 or dtype is np.float32:
        values = [np.nan if v is None else v for v in values]
    array = np.array(values, dtype=dtype if dtype is not None else object)
    return python_values_to_proto_values(array, kind)  # type: ignore[arg-type]


def _naive_utc(moment: object) -> datetime:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(UTC).tz_localize(None)
    result: datetime = stamp.to_pydatetime()
    return result


def online_rows(view: FeatureView, rows: Sequence[Mapping[str, object]]) -> list[OnlineRow]:
    """``rows`` (join keys, ``timestamp_field`` and every feature of ``view``) as the tuples
    ``OnlineStore.online_write_batch`` takes."""
    join_keys = {e.name: e.dtype.to_value_type() for e in view.entity_columns}
    features = {f.name: f.dtype.to_value_type() for f in view.features}
    values = {
        name: _column([row[name] for row in rows], kind)
        for name, kind in (features | join_keys).items()
    }
    assert view.batch_source is not None
    stamp = view.batch_source.timestamp_field
    return [
        (
            EntityKey(join_keys=list(join_keys), entity_values=[values[k][i] for k in join_keys]),
            {name: values[name][i] for name in features},
            _naive_utc(row[stamp]),
            None,
        )
        for i, row in enumerate(rows)
    ]
