"""The monitor's gauges (names fixed: the chart's alerts read them), pushed after each run."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge

from loopline.monitoring.drift import DriftResult

JOB = "loopline-monitor"
"""The Pushgateway job the gauges are grouped under (with the model)."""


def monitor_gauges(model: str, drift: DriftResult | None, at: datetime) -> CollectorRegistry:
    """A registry holding one run's gauges; without a drift result (an empty window) only the
    run's timestamp."""
    registry = CollectorRegistry()
    Gauge(
        "loopline_monitor_last_run_timestamp_seconds",
        "When the drift monitor last ran (Unix time).",
        ["model"],
        registry=registry,
    ).labels(model).set(at.timestamp())
    if drift is None:
        return registry
    Gauge(
        "loopline_drift_detected",
        "1 when the share of drifted features reached the spec's drift_share, else 0.",
        ["model"],
        registry=registry,
    ).labels(model).set(int(drift.detected))
    Gauge(
        "loopline_drift_share",
        "Share of the model's features that drifted.",
        ["model"],
        registry=registry,
    ).labels(model).set(drift.share)
    score = Gauge(
        "loopline_feature_drift_score",
        "Drift score of a feature (a distance: Wasserstein normed or Jensen-Shannon).",
        ["model", "feature"],
        registry=registry,
    )
    drifted = Gauge(
        "loopline_feature_drifted",
        "1 when the feature's drift score reached the spec's stattest_threshold, else 0.",
        ["model", "feature"],
        registry=registry,
    )
    for feature in drift.features:
        score.labels(model, feature.name).set(feature.score)
        drifted.labels(model, feature.name).set(int(feature.drifted))
    if drift.prediction is not None:
        Gauge(
            "loopline_prediction_drift_score",
            "Drift score of the served probabilities from the champion's reference scores.",
            ["model"],
            registry=registry,
        ).labels(model).set(drift.prediction.score)
    return registry
