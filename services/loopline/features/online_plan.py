"""The online-feature plan: everything a lookup needs, resolved once with Feast and cached.

Importing Feast takes seconds and its per-call overhead is larger than the rest of a prediction
(docs/decisions.md, §2), so ``load_plan`` asks Feast once for the feature service's views, join
keys, TTLs and storage names, the on-demand view's serialised transformation and the ``Value``
proto descriptor, and keeps them as an ``OnlinePlan``: plain JSON, cached under
``<home>/cache`` and keyed by the sha256 of the registry and ``feature_store.yaml``.
``loopline.features.online`` reads the store with it, without Feast.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import struct
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict

from loopline.errors import SettingsError, SpecError
from loopline.files import write_text_atomic
from loopline.settings import Settings

FieldType = Literal["string", "int64", "double"]
_VALUE_TYPE = {"string": 2, "int64": 4}  # feast.value_type.ValueType numbers in serialised keys


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


def configured_online_store(settings: Settings) -> str:
    """The online store type serving will read, from ``feature_store.yaml`` without Feast:
    ``redis`` whenever ``LOOPLINE_REDIS_URL`` is set (``features.store`` swaps it in)."""
    if settings.redis_url is not None:
        return "redis"
    path = settings.feature_repo / "feature_store.yaml"
    try:
        online = yaml.safe_load(path.read_text()).get("online_store", "sqlite")
    except (OSError, AttributeError, yaml.YAMLError) as error:
        raise SettingsError(f"cannot read {path}: {error}") from None
    return str(online.get("type", "sqlite") if isinstance(online, dict) else online)


def redis_url_for(store: str, settings: Settings) -> str | None:
    """The Redis an online store of type ``store`` is at, None for SQLite; ``SettingsError``
    when it needs one and none is configured (``feature_store.yaml`` names Redis, and
    ``LOOPLINE_REDIS_URL`` is unset)."""
    if store != "redis":
        return None
    if settings.redis_url is None:
        raise SettingsError(
            "the feature repo's online store is Redis (feature_store.yaml) but "
            "LOOPLINE_REDIS_URL is not set"
        )
    return settings.redis_url


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
