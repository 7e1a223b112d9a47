"""Online features for serving: resolved once with Feast, read on the hot path without it.

Importing Feast takes 4-6 s and its per-call overhead is larger than the rest of a prediction,
so the work is split in two:

- ``load_plan`` asks Feast for everything a lookup needs (the feature service's views, join
  keys, TTLs and storage names, the on-demand view's serialised transformation, the ``Value``
  proto descriptor) and keeps it as an ``OnlinePlan``: plain JSON, cached under
  ``<home>/cache`` and keyed by the sha256 of the registry and ``feature_store.yaml``.
- ``OnlineFeatures`` reads the online store (SQLite or single-node Redis) directly, in Feast's
  own storage layout, with one query (SQLite) or one round trip (Redis) for all the views of a
  batch, each entity key read once; enforces each view's TTL against the request's time,
  because Feast returns expired values as present; and runs the on-demand view's own
  transformation, deserialised the way Feast does it. The integration tests compare its values
  with ``get_online_features``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import sqlite3
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict

from loopline.errors import SpecError
from loopline.registry.export import write_text_atomic
from loopline.settings import Settings

Status = Literal["fresh", "stale", "missing", "fallback"]
"""Per view and row: within TTL; older than TTL; no row for the key; the store failed."""
FieldType = Literal["string", "int64", "double"]
_VALUE_TYPE = {"string": 2, "int64": 4}  # feast.value_type.ValueType numbers in serialised keys
_RETRY_AFTER_S = 1.0  # after a store failure, serve defaults this long before trying again
_CACHE_SIZE = 100_000  # entries in the key and value memos before they start over
_MISSING = object()
logger = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The online store could not be read (connection refused, timeout)."""


class _Plain(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ViewPlan(_Plain):
    name: str
    join_keys: list[tuple[str, FieldType]]
    """Sorted by name, the order Feast serialises them in."""
    request_keys: list[str]
    """The request field holding each join key (a service may rename join keys)."""
    features: list[str]
    ttl_seconds: float
    """0 means the values never expire."""
    table: str
    """SQLite table name."""
    hash_fields: list[str]
    """Redis hash field (hex) of each feature; the hash key is the entity key + project."""
    ts_field: str


class OnDemandPlan(_Plain):
    name: str
    features: list[str]
    inputs: list[str]
    singleton: bool
    udf: str
    """Feast's dill serialisation of the python-mode transformation, base64."""


class OnlinePlan(_Plain):
    feature_service: str
    project: str
    store: Literal["sqlite", "redis"]
    sqlite_path: str | None
    value_proto: str
    """Serialised ``FileDescriptorProto`` of ``feast/types/Value.proto``, base64."""
    views: list[ViewPlan]
    on_demand: list[OnDemandPlan]
    request_schema: dict[str, FieldType]
    """Request fields the on-demand views read, typed as their request sources declare."""


def load_plan(settings: Settings, feature_service: str) -> OnlinePlan:
    """The cached plan for this registry and config, compiled with Feast on a miss."""
    key = _cache_key(settings, feature_service)
    path = settings.home / "cache" / f"online-plan-{feature_service}-{key}.json"
    if key and path.is_file():
        return OnlinePlan.model_validate_json(path.read_bytes())
    plan = compile_plan(settings, feature_service)
    if key:
        with contextlib.suppress(OSError):  # a read-only home costs the next start a compile
            write_text_atomic(path, plan.model_dump_json())
    return plan


def _cache_key(settings: Settings, feature_service: str) -> str:
    """sha256 over everything the plan depends on; empty when the registry is not a file."""
    repo = settings.feature_repo.resolve()
    config_text = (repo / "feature_store.yaml").read_bytes()
    registry = yaml.safe_load(config_text).get("registry")
    location = registry.get("path") if isinstance(registry, dict) else registry
    if not isinstance(location, str) or "://" in location:
        return ""
    registry_path = repo / location
    if not registry_path.is_file():
        return ""
    digest = hashlib.sha256(config_text + registry_path.read_bytes())
    digest.update(f"{feature_service}|{settings.redis_url is not None}|{version('feast')}".encode())
    return digest.hexdigest()[:20]


def compile_plan(settings: Settings, feature_service: str) -> OnlinePlan:
    """Resolve ``feature_service`` with Feast (imports Feast: seconds)."""
    from feast import FeatureView, OnDemandFeatureView
    from feast.infra.online_stores.helpers import _mmh3, compute_table_id, compute_versioned_name
    from feast.protos.feast.types import Value_pb2

    from loopline.features.store import feature_store

    store = feature_store(settings)
    config = store.config
    store_type = config.online_store.type
    if store_type not in ("sqlite", "redis"):
        raise SpecError(f"serving reads sqlite or redis online stores, not {store_type!r}")
    versioned = config.registry.enable_online_feature_view_versioning
    views: list[ViewPlan] = []
    on_demand: list[OnDemandPlan] = []
    schema: dict[str, FieldType] = {}
    service = store.get_feature_service(feature_service)
    for projection in service.feature_view_projections:
        definition = _resolve(store, projection.name)
        features = [feature.name for feature in projection.features]
        if isinstance(definition, FeatureView):
            name = compute_versioned_name(definition, versioned)
            keys = sorted(
                (c.name, _field_type(c.dtype.to_value_type().name))
                for c in definition.entity_columns
            )
            views.append(
                ViewPlan(
                    name=definition.name,
                    join_keys=keys,
                    request_keys=[projection.join_key_map.get(k, k) for k, _ in keys],
                    features=features,
                    ttl_seconds=definition.ttl.total_seconds() if definition.ttl else 0.0,
                    table=compute_table_id(config.project, definition, versioned),
                    hash_fields=[_mmh3(f"{name}:{feature}").hex() for feature in features],
                    ts_field=f"_ts:{name}",
                )
            )
        elif isinstance(definition, OnDemandFeatureView):
            on_demand.append(_on_demand_plan(definition, features, schema))
    sqlite_path = None
    if store_type == "sqlite":
        sqlite_path = str((Path(config.repo_path or ".") / config.online_store.path).resolve())
    return OnlinePlan(
        feature_service=feature_service,
        project=config.project,
        store=store_type,
        sqlite_path=sqlite_path,
        value_proto=base64.b64encode(Value_pb2.DESCRIPTOR.serialized_pb).decode(),
        views=views,
        on_demand=on_demand,
        request_schema=schema,
    )


def _resolve(store: Any, name: str) -> Any:
    from feast.errors import FeatureViewNotFoundException

    try:
        return store.get_feature_view(name)
    except FeatureViewNotFoundException:
        return store.get_on_demand_feature_view(name)


def _on_demand_plan(odfv: Any, features: list[str], schema: dict[str, FieldType]) -> OnDemandPlan:
    if odfv.mode != "python" or odfv.write_to_online_store:
        raise SpecError(f"on-demand view {odfv.name}: serving runs python-mode transformations")
    inputs: list[str] = []
    for source in odfv.source_request_sources.values():
        for field in source.schema:
            schema[field.name] = _field_type(field.dtype.to_value_type().name)
            inputs.append(field.name)
    for projection in odfv.source_feature_view_projections.values():
        inputs += [feature.name for feature in projection.features]
    udf = odfv.to_proto().spec.feature_transformation.user_defined_function.body
    return OnDemandPlan(
        name=odfv.name,
        features=features,
        inputs=inputs,
        singleton=bool(odfv.singleton),
        udf=base64.b64encode(udf).decode(),
    )


def _field_type(value_type: str) -> FieldType:
    types: dict[str, FieldType] = {"STRING": "string", "INT64": "int64", "INT32": "int64"}
    types |= {"DOUBLE": "double", "FLOAT": "double"}
    if value_type not in types:
        raise SpecError(f"unsupported key or request field type {value_type}")
    return types[value_type]


def serialize_entity_key(
    join_keys: Sequence[tuple[str, FieldType]], values: Sequence[Any]
) -> bytes:
    """Feast's entity key serialisation, version 3 (``feast.infra.key_encoding_utils``)."""
    parts = [struct.pack("<I", len(join_keys))]
    for name, _ in join_keys:
        encoded = name.encode()
        parts += [struct.pack("<II", _VALUE_TYPE["string"], len(encoded)), encoded]
    for (_, kind), value in zip(join_keys, values, strict=True):
        data = str(value).encode() if kind == "string" else struct.pack("<q", int(value))
        parts += [struct.pack("<II", _VALUE_TYPE.get(kind, 4), len(data)), data]
    return b"".join(parts)


@dataclass(frozen=True)
class Lookup:
    """Features for a batch, by column; a value is None when missing, stale or not read."""

    values: dict[str, list[Any]]
    status: dict[str, list[Status]]


@dataclass(frozen=True)
class _Hit:
    timestamp: float
    values: dict[str, Any]


_Reads = list[dict[bytes, _Hit] | None]  # per view: the rows found, or None if the view failed


class OnlineFeatures:
    """Reads one plan's features; one instance per worker, used from one thread."""

    def __init__(self, plan: OnlinePlan, settings: Settings) -> None:
        import dill
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        self.plan = plan
        pool = descriptor_pool.DescriptorPool()
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(plan.value_proto)))
        self._value = message_factory.GetMessageClass(
            pool.FindMessageTypeByName("feast.types.Value")
        )
        self._udfs = [(odfv, dill.loads(base64.b64decode(odfv.udf))) for odfv in plan.on_demand]
        self._keys: list[dict[tuple[Any, ...], bytes]] = [{} for _ in plan.views]
        self._decoded: dict[bytes, Any] = {}
        self._down_until = 0.0
        timeout = settings.feature_timeout_ms / 1000
        self._read: Callable[[list[tuple[ViewPlan, list[bytes]]]], _Reads]
        if plan.store == "redis":
            self._read = _RedisReader(settings, plan.project, timeout, self._decode).read
        else:
            self._read = _SqliteReader(plan.sqlite_path or "", timeout, self._decode).read

    @property
    def feature_names(self) -> list[str]:
        return [f for view in self.plan.views for f in view.features] + [
            f for odfv in self.plan.on_demand for f in odfv.features
        ]

    def lookup(self, rows: Sequence[Mapping[str, Any]], as_of: Sequence[float]) -> Lookup:
        """Features of ``rows`` (request fields and join keys) as valid at ``as_of`` (epoch s)."""
        keys = [self._row_keys(i, view, rows) for i, view in enumerate(self.plan.views)]
        reads: _Reads = [None] * len(keys)
        if time.monotonic() >= self._down_until:
            unique = [list(dict.fromkeys(k for k in view_keys if k)) for view_keys in keys]
            try:
                reads = self._read(list(zip(self.plan.views, unique, strict=True)))
            except StoreUnavailable as error:
                # Degrade to defaults (flagged "fallback") and stop trying for a moment, so a
                # dead store costs one timeout per second rather than one per batch.
                logger.warning("online store unavailable, serving defaults: %s", error)
                self._down_until = time.monotonic() + _RETRY_AFTER_S
        values: dict[str, list[Any]] = {}
        status: dict[str, list[Status]] = {}
        for view, view_keys, found in zip(self.plan.views, keys, reads, strict=True):
            columns: list[list[Any]] = [[None] * len(rows) for _ in view.features]
            states: list[Status] = []
            for row, key in enumerate(view_keys):
                hit = found.get(key) if found is not None and key else None
                if found is None:
                    states.append("fallback")
                elif hit is None:
                    states.append("missing")
                elif view.ttl_seconds and as_of[row] - hit.timestamp > view.ttl_seconds:
                    states.append("stale")
                else:
                    states.append("fresh")
                    for column, feature in zip(columns, view.features, strict=True):
                        column[row] = hit.values.get(feature)
            values.update(zip(view.features, columns, strict=True))
            status[view.name] = states
        for odfv, udf in self._udfs:
            inputs = {n: values[n] if n in values else [r[n] for r in rows] for n in odfv.inputs}
            values.update(_transform(odfv, udf, inputs, len(rows)))
        return Lookup(values, status)

    def _row_keys(
        self, index: int, view: ViewPlan, rows: Sequence[Mapping[str, Any]]
    ) -> list[bytes]:
        cache = self._keys[index]
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        keys = []
        for row in rows:
            parts = tuple(row.get(name) for name in view.request_keys)
            if None in parts:
                keys.append(b"")
            elif (key := cache.get(parts)) is None:
                key = cache[parts] = serialize_entity_key(view.join_keys, parts)
                keys.append(key)
            else:
                keys.append(key)
        return keys

    def _decode(self, raw: bytes | None) -> Any:
        """A stored ``Value`` as a Python value; memoised, as the same values repeat."""
        if not raw:
            return None
        value = self._decoded.get(raw, _MISSING)
        if value is _MISSING:
            message = self._value.FromString(raw)
            kind: str | None = message.WhichOneof("val")
            if kind is None or kind == "null_val":
                value = None
            elif kind.endswith(("_list_val", "_set_val")):
                value = tuple(getattr(message, kind).val)
            else:
                value = getattr(message, kind)
            if len(self._decoded) >= _CACHE_SIZE:
                self._decoded.clear()
            self._decoded[raw] = value
        return value


def _transform(
    odfv: OnDemandPlan, udf: Any, inputs: dict[str, list[Any]], rows: int
) -> dict[str, list[Any]]:
    if not odfv.singleton:
        outputs = udf(inputs)
        return {feature: list(outputs[feature]) for feature in odfv.features}
    results = [udf({name: column[i] for name, column in inputs.items()}) for i in range(rows)]
    return {feature: [result[feature] for result in results] for feature in odfv.features}


class _RedisReader:
    """All the batch's HMGETs (entity key + project → feature fields, timestamp) written at once
    on one connection and their replies read back: one round trip, none of redis-py's pipeline
    bookkeeping (about half the cost of a small read)."""

    def __init__(
        self,
        settings: Settings,
        project: str,
        timeout: float,
        decode: Callable[[bytes | None], Any],
    ) -> None:
        import redis

        if settings.redis_url is None:
            raise SpecError("the feature plan reads Redis but LOOPLINE_REDIS_URL is not set")
        pool = redis.ConnectionPool.from_url(
            settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._connection = pool.make_connection()  # reconnects on the next use after an error
        self._errors = (redis.RedisError, OSError)
        self._suffix = project.encode()
        self._decode = decode
        self._fields: dict[str, list[bytes]] = {}

    def read(self, requests: list[tuple[ViewPlan, list[bytes]]]) -> _Reads:
        from google.protobuf.timestamp_pb2 import Timestamp

        commands = []
        for view, keys in requests:
            fields = self._fields.get(view.name)
            if fields is None:
                fields = [bytes.fromhex(h) for h in view.hash_fields] + [view.ts_field.encode()]
                self._fields[view.name] = fields
            commands += [("HMGET", key + self._suffix, *fields) for key in keys]
        connection = self._connection
        try:
            if commands:
                connection.send_packed_command(connection.pack_commands(commands))
            replies = iter([connection.read_response() for _ in commands])
        except self._errors as error:
            connection.disconnect()  # replies may be left unread: start clean next time
            raise StoreUnavailable(str(error)) from error
        reads: _Reads = []
        for view, keys in requests:
            found: dict[bytes, _Hit] = {}
            for key in keys:
                reply = next(replies)
                if reply[-1] is not None:
                    stamp = Timestamp.FromString(reply[-1])
                    decoded = {
                        f: self._decode(v) for f, v in zip(view.features, reply, strict=False)
                    }
                    found[key] = _Hit(stamp.seconds + stamp.nanos / 1e9, decoded)
            reads.append(found)
        return reads


class _SqliteReader:
    """One ``SELECT ... UNION ALL ...`` over the views' tables, on a read-only connection."""

    def __init__(self, path: str, timeout: float, decode: Callable[[bytes | None], Any]) -> None:
        self._connection = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, timeout=timeout, check_same_thread=False
        )
        self._decode = decode

    def read(self, requests: list[tuple[ViewPlan, list[bytes]]]) -> _Reads:
        selects, keys = [], []
        for index, (view, view_keys) in enumerate(requests):
            if view_keys:
                marks = ",".join("?" * len(view_keys))
                selects.append(
                    f"SELECT {index}, entity_key, feature_name, value, event_ts "
                    f'FROM "{view.table}" WHERE entity_key IN ({marks})'
                )
                keys += view_keys
        found: list[dict[bytes, _Hit]] = [{} for _ in requests]
        if not selects:
            return list(found)
        try:
            rows = self._connection.execute(" UNION ALL ".join(selects), keys).fetchall()
        except sqlite3.Error as error:
            raise StoreUnavailable(str(error)) from error
        for index, key, feature, value, stamp in rows:
            hit = found[index].get(key)
            if hit is None:
                hit = found[index][key] = _Hit(_epoch(stamp), {})
            hit.values[feature] = self._decode(value)
        return list(found)


def _epoch(stamp: object) -> float:
    """Feast's SQLite store keeps ``event_ts`` as epoch seconds or an ISO string (UTC)."""
    if isinstance(stamp, int | float):
        return float(stamp)
    from datetime import UTC, datetime

    parsed = datetime.fromisoformat(str(stamp))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
