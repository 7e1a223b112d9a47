"""The plan cache holds data only: transformations come from the registry file, and a cache file
that is not a plan of this registry is a miss (GENERATED registries, no Feast import except
where the field numbers are held equal to Feast's)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from loopline.errors import SpecError
from loopline.features import online_plan, registry_reader
from loopline.features.online_plan import (
    OnDemandPlan,
    OnlinePlan,
    ViewPlan,
    load_plan,
)
from loopline.features.registry_reader import registry_transformations
from loopline.settings import Settings

SERVICE = "flight_delay_v1"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _odfv(name: str, project: str, body: bytes) -> bytes:
    """A serialised ``OnDemandFeatureView`` with the fields the reader follows, and others."""
    udf = _field(1, name.encode()) + _field(2, body) + _field(3, b"def f(inputs): ...")
    spec = (
        _field(1, name.encode())
        + _field(2, project.encode())
        + _varint(13 << 3 | 0)  # a varint field (mode, write_to_online_store...)
        + _varint(1)
        + _field(10, _field(1, udf))
    )
    meta = _field(1, _varint(1 << 3 | 1) + bytes(8))  # a fixed64 field inside
    return _field(1, spec) + _field(2, meta)


def _registry(*views: bytes) -> bytes:
    other = _field(3, _field(1, b"flights"))  # an entity, say
    fixed32 = _varint(20 << 3 | 5) + bytes(4)
    return other + fixed32 + b"".join(_field(8, view) for view in views)


def test_transformations_are_read_from_the_registry_per_project() -> None:
    registry = _registry(
        _odfv("flight_context", "loopline", b"BODY-1"),
        _odfv("flight_context", "other", b"BODY-2"),
        _odfv("no_body", "loopline", b""),
    )
    assert registry_transformations(registry, "loopline") == {"flight_context": b"BODY-1"}
    assert registry_transformations(registry, "other") == {"flight_context": b"BODY-2"}
    assert registry_transformations(registry, "none") == {}


def test_singular_fields_follow_protobuf_semantics() -> None:
    """A repeated singular message is merged, a repeated scalar's last value wins: what Feast's
    own parse of the same bytes gives."""
    spec_a = _field(1, b"first") + _field(2, b"loopline")
    spec_b = _field(1, b"second") + _field(10, _field(1, _field(2, b"BODY")))
    view = _field(1, spec_a) + _field(1, spec_b)
    assert registry_transformations(_field(8, view), "loopline") == {"second": b"BODY"}


@pytest.mark.parametrize(
    "data",
    [
        _field(8, b"\x0a\x05abc"),  # an embedded length running past its message
        b"\x42\xff",  # a length that runs past the end
        b"\x43",  # wire type 3 (groups)
        b"\x42" + b"\xff" * 11,  # a varint of more than 10 bytes
    ],
)
def test_malformed_registries_are_value_errors(data: bytes) -> None:
    with pytest.raises(ValueError, match="protobuf"):
        registry_transformations(data, "loopline")


def test_field_numbers_are_feasts() -> None:
    from feast.protos.feast.core import OnDemandFeatureView_pb2, Registry_pb2, Transformation_pb2

    def number(message: Any, field: str) -> int:
        return int(message.DESCRIPTOR.fields_by_name[field].number)

    spec = OnDemandFeatureView_pb2.OnDemandFeatureViewSpec
    transformation = Transformation_pb2.FeatureTransformationV2
    assert (
        number(Registry_pb2.Registry, "on_demand_feature_views"),
        number(OnDemandFeatureView_pb2.OnDemandFeatureView, "spec"),
        number(spec, "name"),
        number(spec, "project"),
        number(spec, "feature_transformation"),
        number(transformation, "user_defined_function"),
        number(Transformation_pb2.UserDefinedFunctionV2, "body"),
    ) == (
        registry_reader.REGISTRY_ON_DEMAND_FEATURE_VIEWS,
        registry_reader.ON_DEMAND_SPEC,
        registry_reader.SPEC_NAME,
        registry_reader.SPEC_PROJECT,
        registry_reader.SPEC_FEATURE_TRANSFORMATION,
        registry_reader.TRANSFORMATION_USER_DEFINED_FUNCTION,
        registry_reader.UDF_BODY,
    )
    # And the reader agrees with protobuf's own parse of a Feast-built registry.
    registry = Registry_pb2.Registry()
    view = registry.on_demand_feature_views.add()
    view.spec.name, view.spec.project = "flight_context", "loopline"
    view.spec.feature_transformation.user_defined_function.body = b"\x80\x04BODY"
    parsed = registry_transformations(registry.SerializeToString(), "loopline")
    assert parsed == {"flight_context": b"\x80\x04BODY"}


class _Canary:
    """Unpickling this writes ``path``: proof that code from the file ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return exec, (f"open({str(self.path)!r}, 'w').write('ran')",)


BODY = pickle.dumps(len)  # a stand-in transformation: the reader never unpickles it


def _plan(body: bytes = BODY) -> OnlinePlan:
    return OnlinePlan(
        feature_service=SERVICE,
        project="loopline",
        store="sqlite",
        sqlite_path="/nonexistent",
        value_proto="",
        views=[],
        on_demand=[
            OnDemandPlan(
                name="flight_context",
                features=["hour_sin"],
                inputs=["sched_hour"],
                singleton=False,
                udf_sha256=hashlib.sha256(body).hexdigest(),
            )
        ],
        request_schema={"sched_hour": "int64"},
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A feature repo whose registry file holds one on-demand view with ``BODY``."""
    repo = tmp_path / "feature_repo"
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text("project: loopline\nregistry: data/registry.db\n")
    (repo / "data" / "registry.db").write_bytes(
        _registry(_odfv("flight_context", "loopline", BODY))
    )
    return Settings(feature_repo=repo, home=tmp_path / "home")


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Stands in for Feast: each compile is recorded and gives ``_plan()`` with ``BODY``."""
    calls: list[str] = []

    def compile_plan(settings: Settings, service: str, registry: bytes | None) -> OnlinePlan:
        calls.append(service)
        assert registry is not None
        return _plan().with_transformations(registry_transformations(registry, "loopline"))

    monkeypatch.setattr(online_plan, "compile_plan", compile_plan)
    return calls


def _cache_file(settings: Settings) -> Path:
    (path,) = (settings.home / "cache").glob(f"online-plan-{SERVICE}-*.json")
    return path


def test_a_warm_load_takes_the_transformation_from_the_registry(
    settings: Settings, compiles: list[str]
) -> None:
    cold = load_plan(settings, SERVICE)
    warm = load_plan(settings, SERVICE)
    assert compiles == [SERVICE]  # compiled once, then read from the cache
    assert warm == cold
    assert warm.transformation("flight_context") == BODY
    cached = json.loads(_cache_file(settings).read_text())
    assert cached["on_demand"][0]["udf_sha256"] == hashlib.sha256(BODY).hexdigest()
    assert "udf" not in cached["on_demand"][0]
    assert base64.b64encode(BODY).decode() not in _cache_file(settings).read_text()


def test_a_planted_pickle_in_the_cache_is_never_unpickled(
    settings: Settings, compiles: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    load_plan(settings, SERVICE)
    path = _cache_file(settings)
    planted = json.loads(path.read_text())
    canary = tmp_path / "canary"
    planted["on_demand"][0]["udf"] = base64.b64encode(pickle.dumps(_Canary(canary))).decode()
    path.write_text(json.dumps(planted))
    with caplog.at_level(logging.WARNING, logger=online_plan.__name__):
        plan = load_plan(settings, SERVICE)
    assert compiles == [SERVICE, SERVICE]  # the planted file is a miss
    assert plan.transformation("flight_context") == BODY
    assert "ignoring the plan cache" in caplog.text
    assert "udf" not in json.loads(path.read_text())["on_demand"][0]  # rewritten by the compile
    assert not canary.exists()


_VIEW = {
    "name": "origin_weather",
    "join_keys": [["origin", "string"]],
    "request_keys": ["origin"],
    "features": ["temp"],
    "ttl_seconds": 7200,
    "table": "loopline_origin_weather",
    "hash_fields": ["00"],
    "ts_field": "_ts:origin_weather",
}


@pytest.mark.parametrize(
    "tamper",
    [
        lambda plan: plan | {"on_demand": [plan["on_demand"][0] | {"udf_sha256": "0" * 64}]},
        lambda plan: plan | {"on_demand": [plan["on_demand"][0] | {"name": "another_view"}]},
        lambda plan: plan | {"views": [_VIEW | {"table": 'x" UNION SELECT 1 --'}]},
        lambda plan: plan | {"code": "anything"},
        lambda plan: "not a plan",
    ],
)
def test_a_cache_file_that_is_not_this_registrys_plan_is_recompiled(
    settings: Settings, compiles: list[str], tamper: Any
) -> None:
    load_plan(settings, SERVICE)
    path = _cache_file(settings)
    path.write_text(json.dumps(tamper(json.loads(path.read_text()))))
    assert load_plan(settings, SERVICE).transformation("flight_context") == BODY
    assert compiles == [SERVICE, SERVICE]


def test_a_changed_registry_is_a_new_cache_key(settings: Settings, compiles: list[str]) -> None:
    load_plan(settings, SERVICE)
    registry = settings.feature_repo / "data" / "registry.db"
    registry.write_bytes(registry.read_bytes() + _field(3, b"another entity"))
    load_plan(settings, SERVICE)
    assert compiles == [SERVICE, SERVICE]
    assert len(list((settings.home / "cache").glob("*.json"))) == 2


def test_a_plan_holds_only_the_transformations_it_was_compiled_with() -> None:
    with pytest.raises(SpecError, match="the registry holds none"):
        _plan().with_transformations({})
    with pytest.raises(SpecError, match="compiled with transformation sha256"):
        _plan().with_transformations({"flight_context": b"another function"})
    with pytest.raises(SpecError, match="come from load_plan"):
        _plan().transformation("flight_context")  # built by hand: no transformations
    plan = _plan().with_transformations({"flight_context": BODY, "unrelated": b"x"})
    assert plan.transformation("flight_context") == BODY
    assert "BODY" not in plan.model_dump_json()
    assert "unrelated" not in plan.model_dump_json()


def test_a_table_name_cannot_leave_its_quotes() -> None:
    assert ViewPlan.model_validate(_VIEW).table == "loopline_origin_weather"
    with pytest.raises(ValidationError, match="table"):
        ViewPlan.model_validate(_VIEW | {"table": 'x" UNION SELECT 1 --'})
