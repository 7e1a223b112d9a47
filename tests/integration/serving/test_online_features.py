"""The serving reader reads Feast's online store as Feast does: same keys, same values, same
on-demand features, plus the TTL that Feast's online read does not apply."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import pandas as pd
import pytest
from feast.infra.key_encoding_utils import serialize_entity_key as feast_serialize
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from loopline.features.entity_key import serialize_entity_key
from loopline.features.online import OnlineFeatures
from loopline.features.online_plan import load_plan
from loopline.features.store import feature_store
from loopline.model.artifact import REFERENCE_SAMPLE
from tests.conftest import TrainedSetup

pytestmark = pytest.mark.integration
AS_OF = datetime(2013, 8, 31, 23, 50, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("keys", "values"),
    [
        ([("origin", "string")], ["EWR"]),
        ([("tailnum", "string")], ["N14228"]),
        ([("airport", "string"), ("hour", "int64")], ["JFK", 17]),
    ],
)
def test_entity_keys_serialise_as_feasts(keys: list[tuple[str, str]], values: list[object]) -> None:
    proto = EntityKey(
        join_keys=[name for name, _ in keys],
        entity_values=[
            Value(string_val=v) if kind == "string" else Value(int64_val=v)  # type: ignore[arg-type]
            for (_, kind), v in zip(keys, values, strict=True)
        ],
    )
    ours = serialize_entity_key(keys, values)  # type: ignore[arg-type]
    assert ours == feast_serialize(proto, entity_key_serialization_version=3)


def test_lookup_equals_get_online_features_on_sqlite(trained: TrainedSetup) -> None:
    settings = trained.settings
    plan = load_plan(settings, trained.spec.feature_service)
    assert load_plan(settings, trained.spec.feature_service) == plan  # from the cache
    sample = pd.read_parquet(trained.outcome.version.path / REFERENCE_SAMPLE).head(200)
    rows = sample[["origin", "carrier", "tailnum", "distance", "sched_hour", "weekday"]]
    entity_rows = rows.to_dict("records")
    lookup = asyncio.run(
        OnlineFeatures(plan, settings).lookup(entity_rows, [AS_OF] * len(entity_rows))
    )
    store = feature_store(settings)
    expected = store.get_online_features(
        features=store.get_feature_service(trained.spec.feature_service), entity_rows=entity_rows
    ).to_dict()
    compared = 0
    for name, values in lookup.values.items():
        for ours, theirs in zip(values, expected[name], strict=True):
            if ours is None:  # missing (an unknown tail number) or flagged stale
                continue
            assert ours == theirs or (math.isnan(ours) and math.isnan(theirs)), name
            compared += 1
    assert compared > 20 * len(entity_rows)
    assert set(lookup.status["origin_weather"]) == {"fresh"}
    missing = lookup.status["plane_attributes"].count("missing")
    assert missing == sum(v is None for v in expected["seats"]) > 0


def test_values_older_than_the_ttl_are_stale_planes_never_expire(trained: TrainedSetup) -> None:
    plan = load_plan(trained.settings, trained.spec.feature_service)
    row = {"origin": "EWR", "carrier": "UA", "tailnum": "N14228"}
    row |= {"distance": 1400.0, "sched_hour": 5, "weekday": 1}
    reader = OnlineFeatures(plan, trained.settings)
    later = asyncio.run(reader.lookup([row], [AS_OF + 3 * 3600]))
    assert later.status == {
        "origin_weather": ["stale"],
        "plane_attributes": ["fresh"],
        "origin_departure_stats": ["stale"],
        "carrier_departure_stats": ["stale"],
    }
    assert later.values["temp"] == [None]
    assert later.values["origin_delay_trend"] == [None]  # computed from the stale inputs
    assert later.values["log_distance"] == [pytest.approx(math.log1p(1400.0))]
