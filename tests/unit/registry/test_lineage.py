"""Lineage's optional fields: a lineage.json written before them still loads, and a retrained
version's round-trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from loopline.registry.lineage import (
    DataWindow,
    GateRecord,
    Lineage,
    MonitorTrigger,
    Retraining,
)

WINDOW = {"start": "2013-01-01T00:00:00Z", "end": "2013-09-01T00:00:00Z"}
BEFORE_ISSUE_11 = {
    "model_name": "flight-delay",
    "spec": {"name": "flight-delay"},
    "feature_service": "flight_delay_v1",
    "features": ["origin_weather:temp"],
    "train_window": WINDOW,
    "validation_window": WINDOW,
    "holdout_window": WINDOW,
    "rows": {"train": 10, "validation": 5, "holdout": 5},
    "code_commit": "0123abc",
    "parameters": {},
    "metrics": {"model": {"roc_auc": 0.75}},
    "artifact_sha256": "0" * 64,
    "reference_sample": "reference_sample.parquet",
    "trained_at": "2026-11-22T10:00:00Z",
}


def test_a_lineage_written_before_the_optional_fields_still_loads() -> None:
    lineage = Lineage.model_validate_json(json.dumps(BEFORE_ISSUE_11))
    assert lineage.gate is None
    assert lineage.retraining is None


def test_a_retrained_lineage_round_trips() -> None:
    window = DataWindow(
        start=datetime(2013, 5, 3, tzinfo=UTC), end=datetime(2014, 1, 1, tzinfo=UTC)
    )
    lineage = Lineage.model_validate(BEFORE_ISSUE_11).model_copy(
        update={
            "gate": GateRecord(
                alias=None, metric="roc_auc", value=0.7, champion_value=0.72, reasons=["worse"]
            ),
            "retraining": Retraining(
                window=window,
                live_from=datetime(2013, 9, 1, 5, tzinfo=UTC),
                live_rows={"train": 3, "validation": 5, "holdout": 5},
                champion="v1",
                champion_metrics={"roc_auc": 0.72, "rows": 5},
                trigger=MonitorTrigger(
                    path="/r/latest-monitor.json",
                    sha256="a" * 64,
                    decision="retrain",
                    drift_share=0.4,
                ),
            ),
        }
    )
    again = Lineage.model_validate_json(lineage.model_dump_json())
    assert again == lineage
    assert again.retraining is not None
    assert again.retraining.trigger is not None
    assert again.retraining.trigger.drift_share == 0.4
