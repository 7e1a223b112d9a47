"""Rows upserted into Feast's Redis online store in Feast's layout, without ``FeatureStore.push``.

``push`` costs about 40 ms a call whatever the rows (it re-reads the views from the registry,
builds an Arrow table, runs typeguard's checks), so a live consumer writing a few dozen rows a
batch spent most of its time there (docs/decisions.md, §17). ``FeastRedisWriter`` resolves each
view with Feast once, at start-up; per batch it encodes the values with Feast's own type map
and hands the rows to ``RedisOnlineStore.online_write_batch``, the call ``push`` ends in: the
keys, the hash fields, the bytes and the newer-timestamp-wins rule are Feast's.
``tests/integration/features/test_redis_writer.py`` holds what it writes equal to ``push``.
Only Redis: the embedded SQLite store keeps ``push``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from feast import FeatureStore
from feast.infra.online_stores.redis import RedisOnlineStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.type_map import python_values_to_proto_values
from feast.value_type import ValueType

Row = Mapping[str, object]
_NUMPY = {ValueType.DOUBLE: np.float64, ValueType.FLOAT: np.float32, ValueType.INT64: np.int64}
"""The arrays Feast converts from (``to_numpy`` of the Arrow columns ``push`` builds)."""


@dataclass(frozen=True)
class _View:
    definition: Any  # feast.FeatureView
    join_keys: dict[str, ValueType]
    features: list[tuple[str, ValueType]]
    timestamp_field: str


class FeastRedisWriter:
    def __init__(self, store: FeatureStore, views: Iterable[str]) -> None:
        self._config = store.config
        self._online = RedisOnlineStore()
        self._views: dict[str, _View] = {}
        for name in views:
            view = store.get_feature_view(name)
            self._views[name] = _View(
                view,
                {column.name: column.dtype.to_value_type() for column in view.entity_columns},
                [(field.name, field.dtype.to_value_type()) for field in view.features],
                view.batch_source.timestamp_field,  # type: ignore[union-attr]  # every view has one
            )

    def write(self, view_name: str, rows: Sequence[Row]) -> None:
        """Upsert ``rows`` (join keys, the timestamp field, every feature) into the view."""
        if not rows:
            return
        view = self._views[view_name]
        columns = {
            name: _proto_values([row[name] for row in rows], value_type)
            for name, value_type in [*view.features, *view.join_keys.items()]
        }
        data: list[tuple[EntityKey, dict[str, Any], datetime, datetime | None]] = [
            (
                EntityKey(
                    join_keys=list(view.join_keys),
                    entity_values=[columns[key][i] for key in view.join_keys],
                ),
                {name: columns[name][i] for name, _ in view.features},
                _datetime(row[view.timestamp_field]),
                None,
            )
            for i, row in enumerate(rows)
        ]
        self._online.online_write_batch(self._config, view.definition, data, None)


def _proto_values(values: list[object], value_type: ValueType) -> list[Any]:
    dtype = _NUMPY.get(value_type)
    if dtype is None:
        array = np.array(values, dtype=object)
    elif value_type is ValueType.INT64:
        array = np.array(values, dtype=dtype)
    else:  # a null float is NaN in the array push converts
        array = np.array([np.nan if v is None else v for v in values], dtype=dtype)
    # Feast's stub says list; push hands it the numpy arrays of its Arrow columns, as here.
    return list(python_values_to_proto_values(array, value_type))  # type: ignore[arg-type]


def _datetime(value: object) -> datetime:
    if isinstance(value, pd.Timestamp):
        moment: datetime = value.to_pydatetime()
        return moment
    if isinstance(value, datetime):
        return value
    raise TypeError(f"a row's timestamp must be a datetime, not {type(value).__name__}")
