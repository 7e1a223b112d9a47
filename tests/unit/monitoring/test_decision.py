"""The monitor's decision, the live window's columns and its live performance with the label
delay, on generated records (tests.unit.predictions.records: generated values) and a labelled
dataset written by the outcome join's own writer."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from loopline.monitoring.drift import DriftResult, FeatureDrift
from loopline.monitoring.monitor import decide
from loopline.monitoring.performance import WindowPerformance, live_performance
from loopline.monitoring.window import window_frame
from loopline.outcomes import EXPIRED, LabelledDataset
from loopline.outcomes.dataset import Joined
from loopline.spec import load_spec
from tests.unit.predictions.records import record

SPEC = load_spec("flight-delay")
DAY = datetime(2013, 9, 2, tzinfo=UTC)
DELAY = timedelta(hours=24)


def drift(scores: dict[str, float], prediction: float = 0.0) -> DriftResult:
    threshold = SPEC.drift.stattest_threshold
    features = [FeatureDrift(n, "numeric", "wasserstein", s, threshold) for n, s in scores.items()]
    served = FeatureDrift("probability", "numeric", "wasserstein", prediction, threshold)
    return DriftResult(features, served, SPEC.drift.drift_share)


def performance(roc_auc: float | None) -> WindowPerformance:
    return WindowPerformance(1000, 600, 10, 5, 385, 0, roc_auc, 0.2)


def test_too_few_rows_is_no_decision() -> None:
    outcome, reasons = decide(SPEC, SPEC.drift.min_rows - 1, drift({"a": 1.0}), performance(0.5))
    assert outcome == "too-few-rows"
    assert "fewer than drift.min_rows" in reasons[0]


def test_a_drifted_share_at_the_threshold_retrains_and_names_the_features() -> None:
    scores = {"a": 0.2, "b": 0.01, "c": 0.0, "d": 0.0, "e": 0.0, "f": 0.0}  # 1 of 6 < 0.3
    outcome, _ = decide(SPEC, 1000, drift(scores), performance(0.8))
    assert outcome == "no-retrain"
    scores["c"] = 0.05  # 2 of 6 >= drift_share 0.3
    outcome, reasons = decide(SPEC, 1000, drift(scores), performance(0.8))
    assert outcome == "retrain"
    assert reasons == ["0.33 of 6 features drifted (≥ drift_share 0.3): a, c"]


def test_prediction_drift_and_a_live_roc_auc_below_the_floor_each_retrain() -> None:
    calm = {"a": 0.0, "b": 0.0}
    outcome, reasons = decide(SPEC, 1000, drift(calm, prediction=0.2), performance(0.8))
    assert (outcome, len(reasons)) == ("retrain", 1)
    assert reasons[0].startswith("prediction drift 0.200")
    outcome, reasons = decide(SPEC, 1000, drift(calm), performance(0.65))
    assert outcome == "retrain"
    assert reasons == [f"live ROC AUC 0.650 < promotion.min_value {SPEC.promotion.min_value}"]
    outcome, reasons = decide(SPEC, 1000, drift(calm), performance(None))
    assert outcome == "no-retrain"
    assert "live ROC AUC not measured: 600 labelled predictions" in reasons


def test_the_window_keeps_the_champions_rows_as_columns() -> None:
    records = [record(i) for i in range(5)]
    records[1] = replace(records[1], model_version="v2")
    records[2] = replace(records[2], model="other")
    columns = {"carrier": "categorical", "sched_hour": "categorical", "temp": "numeric"}
    frame = window_frame(records, "flight-delay", "v1", {**columns, "dep_delay_mean_1h": "numeric"})
    assert list(frame["request_id"]) == ["r0", "r3", "r4"]
    assert list(frame["temp"]) == [61.5, 64.5, 65.5]
    assert frame["dep_delay_mean_1h"].isna().all()
    assert list(frame["sched_hour"]) == [8, 8, 8]
    assert list(frame["probability"]) == pytest.approx([0.125, 0.1253, 0.1254])


def test_recent_predictions_without_an_outcome_are_pending_not_missing(tmp_path: Path) -> None:
    """Hourly predictions over three days; outcomes came for the first day's and the join's
    clock (the latest outcome) is at hour 45: the predictions of the last 24 hours
    before it may still get theirs (pending), older ones without a row are missing."""
    predictions = [
        replace(record(i), event_timestamp=DAY + timedelta(hours=i), probability=(i % 10) / 10)
        for i in range(72)
    ]
    labelled = [
        Joined(
            p,
            "delayed" if i % 3 else "on_time",
            p.event_timestamp + timedelta(hours=2),
            1.0,
            int(i % 3 != 0),
        )
        for i, p in enumerate(predictions[:20])
    ]
    labelled.append(Joined(predictions[20], EXPIRED, None, None, None))
    clock = DAY + timedelta(hours=45)
    labelled.append(
        Joined(
            replace(record(999), event_timestamp=clock - timedelta(hours=3)),
            "on_time",
            clock,
            -1.0,
            0,
        )
    )
    LabelledDataset(tmp_path, "delayed").write(labelled)
    columns = {"carrier": "categorical"}
    window = window_frame(predictions, "flight-delay", "v1", columns)
    found = live_performance(window, tmp_path, "delayed", DELAY, min_labels=10)
    assert found.predictions == 72
    assert (found.labelled, found.expired, found.without_label) == (20, 1, 0)
    assert found.pending == 72 - 22  # event time > clock - 24 h: hours 22..71
    assert found.missing == 1  # hour 21: no row, and the clock is past its delay
    labels = np.array([int(i % 3 != 0) for i in range(20)])
    assert found.positive_rate == pytest.approx(labels.mean())
    assert found.roc_auc is not None
