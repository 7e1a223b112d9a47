"""One ingest batch into Feast's SQLite online store: every view's rows in one transaction.

Feast's ``SqliteOnlineStore.online_write_batch`` runs one ``execute`` per feature value and
commits once per view; in the replay, most of the ingest writer's time, itself two thirds of the
shard's step (docs/decisions.md, 23). ``write_views`` writes the rows Feast's call would, with one
``executemany`` per view and one transaction for all the views of a batch, so a batch that
fails midway leaves nothing of itself. The rows are Feast's: the table ``compute_table_id``
names, the columns and upsert of ``online_write_batch``, the entity key by
``serialize_entity_key`` with the config's version, the value's serialized bytes, its text by
``extract_text_and_num``, and naive UTC times (``to_naive_utc``) handed to ``sqlite3`` for the
adapter Feast's module registers to convert. Only the loop and the transaction are ours; a test
holds the tables equal to Feast's, column by column.

Not replicated: the layouts with more columns, a ``vector_value`` (``vector_enabled``) or a
``value_num`` (``enable_openai_compatible_store``). For those ``replicates`` is false and the
caller writes through Feast's ``online_write_batch``, one view at a time.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator, Sequence

from feast import FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import compute_table_id, extract_text_and_num
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.repo_config import RepoConfig
from feast.utils import to_naive_utc

from loopline.features.online_rows import OnlineRow

_UPSERT = (
    "INSERT INTO {table} (entity_key, feature_name, value, value_text, event_ts, created_ts) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
    "value = excluded.value, value_text = excluded.value_text, "
    "event_ts = excluded.event_ts, created_ts = excluded.created_ts;"
)
"""Feast's upsert for a table without ``value_num`` and ``vector_value``."""

Parameters = tuple[bytes, str, bytes, str | None, object, object]


def replicates(config: RepoConfig) -> bool:
    """Whether the store is Feast's SQLite store with the layout ``write_views`` writes.

    (Importing Feast's SQLite module, as this one does, registers the ``datetime`` adapter its
    writes go through; ``sqlite3``'s own would write ISO text instead.)"""
    store = config.online_store
    return isinstance(store, SqliteOnlineStoreConfig) and not (
        store.vector_enabled or store.enable_openai_compatible_store
    )


def write_views(
    connection: sqlite3.Connection,
    config: RepoConfig,
    batch: Sequence[tuple[FeatureView, Sequence[OnlineRow]]],
) -> None:
    """Upsert each view's rows into its table, all in one transaction."""
    statements = [(_upsert(config, view), list(_parameters(config, rows))) for view, rows in batch]
    with connection:
        for sql, values in statements:
            connection.executemany(sql, values)


def _upsert(config: RepoConfig, view: FeatureView) -> str:
    """The upsert into ``view``'s table, its name quoted as Feast quotes it."""
    versioned = config.registry.enable_online_feature_view_versioning
    table = compute_table_id(config.project, view, versioned)
    return _UPSERT.format(table='"' + table.replace('"', '""') + '"')


def _parameters(config: RepoConfig, rows: Sequence[OnlineRow]) -> Iterator[Parameters]:
    """One upsert's parameters per feature value of ``rows``."""
    version = config.entity_key_serialization_version
    for key, values, event_ts, created_ts in rows:
        key_bytes = _entity_key(key.SerializeToString(), version)
        event = to_naive_utc(event_ts)
        created = None if created_ts is None else to_naive_utc(created_ts)
        for name, value in values.items():
            data = value.SerializeToString()
            yield key_bytes, name, data, _text(data), event, created


@functools.lru_cache(maxsize=65_536)
def _entity_key(key: bytes, version: int) -> bytes:
    """``serialize_entity_key`` of the key ``key`` encodes: a batch writes the same few keys
    (an airport, a carrier) again at every bucket end, and Feast's encoding was an eighth of the
    write's CPU, the proto's own encoding a fiftieth."""
    return serialize_entity_key(EntityKey.FromString(key), entity_key_serialization_version=version)


@functools.lru_cache(maxsize=65_536)
def _text(value: bytes) -> str | None:
    """``value_text`` (``extract_text_and_num``) of the ``Value`` ``value`` encodes: the values
    of a batch repeat (a count, a quiet key's mean) and this is kept per distinct encoding."""
    return extract_text_and_num(Value.FromString(value), False)[0]
