"""The online-feature plan: everything a lookup needs, resolved once with Feast and cached.

Importing Feast takes seconds and its per-call overhead is larger than the rest of a prediction
(docs/decisions.md, §2), so ``load_plan`` asks Feast once for the feature service's views, join
keys, TTLs and storage names and the ``Value`` proto descriptor, and keeps them as an
``OnlinePlan``: plain JSON, cached under ``<home>/cache`` and keyed by the sha256 of the registry
and ``feature_store.yaml``. ``loopline.features.online`` reads the store with it, without Feast.

The cache holds data only, never code (docs/decisions.md, §11). The one piece of code a plan
needs, each on-demand view's transformation (Feast's dill serialisation of the function), is taken
on every load from the Feast registry file itself: the bytes ``feast apply`` wrote and Feast would
unpickle, read by ``registry_transformations`` without importing Feast. The cache records only
the sha256 of each transformation it was compiled with, so a plan and a transformation that do
not belong together are a miss (recompiled), and so is a cache file that fails to parse or has
fields a plan does not (such as a planted ``udf``): nothing in ``<home>/cache`` is ever
unpickled or executed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from loopline.errors import SpecError
from loopline.features.registry_reader import registry_transformations
from loopline.files import write_text_atomic
from loopline.settings import Settings

FieldType = Literal["string", "int64", "double"]
logger = logging.getLogger(__name__)


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
    table: str = Field(pattern=r'^[^"\x00]+$')
    """SQLite table name (quoted in the query, so it may not hold a double quote)."""
    hash_fields: list[str]
    """Redis hash field (hex) of each feature; the hash key is the entity key + project."""
    ts_field: str


class OnDemandPlan(_Plain):
    name: str
    features: list[str]
    inputs: list[str]
    singleton: bool
    udf_sha256: str
    """sha256 of the transformation (Feast's dill serialisation of the python-mode function) in
    the registry the plan was compiled from. The bytes themselves are never cached: they are
    read from the registry on every load (``OnlinePlan.transformation``)."""


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
    _transformations: dict[str, bytes] = PrivateAttr(default_factory=dict)
    """On-demand view name -> its transformation as read from the Feast registry; not part of
    the JSON, so never cached."""

    def transformation(self, name: str) -> bytes:
        """The dill-serialised transformation of on-demand view ``name``, from the registry."""
        try:
            return self._transformations[name]
        except KeyError:
            raise SpecError(
                f"the plan has no transformation for the on-demand view {name!r}: "
                "plans that compute on-demand features come from load_plan"
            ) from None

    def with_transformations(self, transformations: Mapping[str, bytes]) -> OnlinePlan:
        """A copy holding ``transformations``; ``SpecError`` unless each on-demand view has one
        whose sha256 is the one the plan was compiled with."""
        for odfv in self.on_demand:
            body = transformations.get(odfv.name)
            if body is None or _sha256(body) != odfv.udf_sha256:
                found = "none" if body is None else f"sha256 {_sha256(body)}"
                raise SpecError(
                    f"on-demand view {odfv.name!r}: the plan was compiled with transformation "
                    f"sha256 {odfv.udf_sha256}, the registry holds {found}"
                )
        plan = self.model_copy()
        plan._transformations = {o.name: transformations[o.name] for o in self.on_demand}
        return plan


@dataclass(frozen=True)
class _Source:
    """What a plan is compiled from: the config, and the registry's bytes when it is a file."""

    config: bytes
    registry: bytes | None


def load_plan(settings: Settings, feature_service: str) -> OnlinePlan:
    """The cached plan for this registry and config, compiled with Feast on a miss.

    A cache file is only data: one that does not parse as a plan, or whose on-demand views are
    not those of the registry, is a miss. Transformations always come from the registry."""
    source = _read_source(settings)
    key = _cache_key(source, feature_service, settings)
    path = settings.home / "cache" / f"online-plan-{feature_service}-{key}.json"
    if key and source.registry is not None and path.is_file():
        plan = _read_cached(path, source.registry, feature_service)
        if plan is not None:
            return plan
    plan = compile_plan(settings, feature_service, source.registry)
    if key:
        with contextlib.suppress(OSError):  # a read-only home costs the next start a compile
            write_text_atomic(path, plan.model_dump_json())
    return plan


def _read_cached(path: Path, registry: bytes, feature_service: str) -> OnlinePlan | None:
    try:
        plan = OnlinePlan.model_validate_json(path.read_bytes())
        if plan.feature_service != feature_service:
            raise SpecError(f"it is the plan of {plan.feature_service!r}")
        return plan.with_transformations(registry_transformations(registry, plan.project))
    except (OSError, ValueError, SpecError) as error:  # ValidationError is a ValueError
        reason = error.errors()[0]["msg"] if isinstance(error, ValidationError) else error
        logger.warning("ignoring the plan cache %s, compiling anew: %s", path, reason)
        return None


def _read_source(settings: Settings) -> _Source:
    """``feature_store.yaml`` and the registry it names, read once (``registry`` is None when
    the registry is not a local file)."""
    repo = settings.feature_repo.resolve()
    config_text = (repo / "feature_store.yaml").read_bytes()
    registry = yaml.safe_load(config_text).get("registry")
    location = registry.get("path") if isinstance(registry, dict) else registry
    if not isinstance(location, str) or "://" in location:
        return _Source(config_text, None)
    try:
        return _Source(config_text, (repo / location).read_bytes())
    except OSError:
        return _Source(config_text, None)


def _cache_key(source: _Source, feature_service: str, settings: Settings) -> str:
    """sha256 over everything the plan depends on; empty when the registry is not a file."""
    if source.registry is None:
        return ""
    digest = hashlib.sha256(source.config + source.registry)
    digest.update(f"{feature_service}|{settings.redis_url is not None}|{version('feast')}".encode())
    return digest.hexdigest()[:20]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def compile_plan(
    settings: Settings, feature_service: str, registry: bytes | None = None
) -> OnlinePlan:
    """Resolve ``feature_service`` with Feast (imports Feast: seconds). Transformations are
    taken from ``registry`` (the registry file's bytes) when given, else from Feast."""
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
    transformations: dict[str, bytes] = {}
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
            odfv, transformations[definition.name] = _on_demand_plan(definition, features, schema)
            on_demand.append(odfv)
    sqlite_path = None
    if store_type == "sqlite":
        sqlite_path = str((Path(config.repo_path or ".") / config.online_store.path).resolve())
    if registry is not None:
        stored = registry_transformations(registry, config.project)
        for name in transformations:
            if name in stored:
                transformations[name] = stored[name]
            else:  # the plan works, but its cache never will: every start compiles
                logger.warning("on-demand view %s: no transformation in the registry file", name)
    plan = OnlinePlan(
        feature_service=feature_service,
        project=config.project,
        store=store_type,
        sqlite_path=sqlite_path,
        value_proto=base64.b64encode(Value_pb2.DESCRIPTOR.serialized_pb).decode(),
        views=views,
        on_demand=[
            odfv.model_copy(update={"udf_sha256": _sha256(transformations[odfv.name])})
            for odfv in on_demand
        ],
        request_schema=schema,
    )
    return plan.with_transformations(transformations)


def _resolve(store: Any, name: str) -> Any:
    from feast.errors import FeatureViewNotFoundException

    try:
        return store.get_feature_view(name)
    except FeatureViewNotFoundException:
        return store.get_on_demand_feature_view(name)


def _on_demand_plan(
    odfv: Any, features: list[str], schema: dict[str, FieldType]
) -> tuple[OnDemandPlan, bytes]:
    if odfv.mode != "python" or odfv.write_to_online_store:
        raise SpecError(f"on-demand view {odfv.name}: serving runs python-mode transformations")
    inputs: list[str] = []
    for source in odfv.source_request_sources.values():
        for field in source.schema:
            schema[field.name] = _field_type(field.dtype.to_value_type().name)
            inputs.append(field.name)
    for projection in odfv.source_feature_view_projections.values():
        inputs += [feature.name for feature in projection.features]
    udf: bytes = odfv.to_proto().spec.feature_transformation.user_defined_function.body
    plan = OnDemandPlan(
        name=odfv.name,
        features=features,
        inputs=inputs,
        singleton=bool(odfv.singleton),
        udf_sha256=_sha256(udf),
    )
    return plan, udf


def _field_type(value_type: str) -> FieldType:
    types: dict[str, FieldType] = {"STRING": "string", "INT64": "int64", "INT32": "int64"}
    types |= {"DOUBLE": "double", "FLOAT": "double"}
    if value_type not in types:
        raise SpecError(f"unsupported key or request field type {value_type}")
    return types[value_type]
