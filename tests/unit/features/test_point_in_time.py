"""Point-in-time correctness on a small hand-made case.

A hand-made Feast repo (DuckDB offline store, like the real one) with one sensor-style view:
values stamped 10:00 (1.0) and 12:00 (99.0). A request at 11:00 must see 1.0, never the value
stamped after it; a request at 12:00 sees 99.0; a request beyond the TTL sees nothing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from loopline.features.store import apply
from loopline.features.training_set import entity_frame, training_set
from loopline.settings import Settings
from loopline.spec import ModelSpec

DEFINITIONS = """
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

station = Entity(name="station", join_keys=["station"], value_type=ValueType.STRING)
readings = FeatureView(
    name="readings",
    entities=[station],
    ttl=timedelta(hours=3),
    schema=[Field(name="reading", dtype=Float64)],
    source=FileSource(name="readings_source", path="data/readings.parquet",
                      timestamp_field="event_timestamp"),
)
readings_v1 = FeatureService(name="readings_v1", features=[readings])
"""

CONFIG = """project: pit
registry: data/registry.db
provider: local
offline_store:
    type: duckdb
online_store:
    type: sqlite
    path: data/online_store.db
entity_key_serialization_version: 3
"""


def at(hhmm: str) -> pd.Timestamp:
    return pd.Timestamp(f"2013-03-01 {hhmm}", tz="UTC")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "pit_definitions.py").write_text(DEFINITIONS)
    (repo / "feature_store.yaml").write_text(CONFIG)
    pd.DataFrame(
        {
            "station": ["A", "A", "B"],
            "event_timestamp": [at("10:00"), at("12:00"), at("09:00")],
            "reading": [1.0, 99.0, 5.0],
        }
    ).astype({"event_timestamp": "datetime64[us, UTC]"}).to_parquet(
        repo / "data" / "readings.parquet"
    )
    settings = Settings(feature_repo=repo, home=tmp_path / "home")
    apply(settings)
    return settings


SPEC = ModelSpec.model_validate(
    {
        "name": "pit",
        "dataset": "hand-made",
        "feature_service": "readings_v1",
        "request_id": "request_id",
        "entity_keys": ["station"],
        "request_fields": {"station": "categorical"},
        "label": {"name": "label", "source": "outcomes", "exclude_statuses": ["cancelled"]},
        "split": {
            "start": "2013-03-01",
            "validation_start": "2013-03-02",
            "holdout_start": "2013-03-03",
            "end": "2013-03-04",
        },
    }
)


def requests(*rows: tuple[str, str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.DataFrame(rows, columns=["request_id", "station", "time"])
    frame["event_timestamp"] = frame.pop("time").map(at)
    outcomes = pd.DataFrame({"request_id": frame["request_id"], "status": "done", "label": 1})
    return frame, outcomes


def test_a_value_stamped_after_the_request_never_reaches_its_row(settings: Settings) -> None:
    frame, outcomes = requests(
        ("before-update", "A", "11:00"),
        ("just-before-update", "A", "11:59:59"),
        ("at-update", "A", "12:00"),
        ("before-any-value", "A", "09:30"),
        ("past-ttl", "B", "12:30"),
    )
    rows = training_set(settings, SPEC, frame, outcomes).frame.set_index("request_id")
    assert rows.loc["before-update", "reading"] == 1.0
    assert rows.loc["just-before-update", "reading"] == 1.0
    assert rows.loc["at-update", "reading"] == 99.0
    assert pd.isna(rows.loc["before-any-value", "reading"])
    assert pd.isna(rows.loc["past-ttl", "reading"])


def test_unlabelled_outcomes_are_counted_not_silently_dropped() -> None:
    frame, outcomes = requests(
        ("kept", "A", "11:00"), ("gone", "A", "11:00"), ("lost", "B", "11:00")
    )
    outcomes.loc[outcomes["request_id"] == "gone", "status"] = "cancelled"
    outcomes = outcomes[outcomes["request_id"] != "lost"]
    kept, excluded = entity_frame(SPEC, frame, outcomes)
    assert list(kept["request_id"]) == ["kept"]
    assert excluded == {"cancelled": 1, "no_outcome": 1}
