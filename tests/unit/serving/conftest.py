"""Small fitted objects for serving unit tests: no trained model, no feature store."""

from __future__ import annotations

import pandas as pd
import pytest

from loopline.features.online_plan import OnlinePlan, ViewPlan
from loopline.model.preprocessing import Preprocessor
from loopline.serving.schema import InputSchema
from loopline.spec import load_spec


@pytest.fixture(scope="session")
def preprocessor() -> Preprocessor:
    frame = pd.DataFrame(
        {
            "carrier": ["UA", "AA", "UA", "B6", None, "AA"] * 10,
            "sched_hour": [5, 7, 7, 23, 5, 7] * 10,
            "distance": [1400.0, 200.0, None, 950.5, 17.0, 3000.0] * 10,
            "temp": [50.0, 60.0, 70.0, None, 80.0, 90.0] * 10,
        }
    )
    return Preprocessor.fit(frame, ["carrier", "sched_hour"], ["distance", "temp"], 5)


@pytest.fixture(scope="session")
def plan() -> OnlinePlan:
    """The shape of the flight-delay feature service's plan (no Feast involved)."""
    view = ViewPlan(
        name="origin_weather",
        join_keys=[("origin", "string")],
        request_keys=["origin"],
        features=["temp"],
        ttl_seconds=7200,
        table="loopline_origin_weather",
        hash_fields=["00000000"],
        ts_field="_ts:origin_weather",
    )
    return OnlinePlan(
        feature_service="flight_delay_v1",
        project="loopline",
        store="sqlite",
        sqlite_path="/nonexistent",
        value_proto="",
        views=[view],
        on_demand=[],
        request_schema={"distance": "double", "sched_hour": "int64", "weekday": "int64"},
    )


@pytest.fixture(scope="session")
def schema(plan: OnlinePlan) -> InputSchema:
    return InputSchema.build(load_spec("flight-delay"), plan)
