"""The rollout's gauge, pushed after each run (the chart's "rolled back" alert reads it).

``loopline_rollout_last_decision_timestamp_seconds{model,outcome}`` is rebuilt from the
decision log on every push: a push replaces the model's group in the Pushgateway, so each run
carries the latest time of every outcome the model has had, not only its own.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Gauge

from loopline.registry.decisions import Decision

JOB = "loopline-rollout"
"""The Pushgateway job the gauge is grouped under (with the model)."""


def rollout_gauges(model: str, decisions: Iterable[Decision]) -> CollectorRegistry:
    """A registry holding, per outcome of the model's rollout decisions, the latest one's time."""
    latest: dict[str, float] = {}
    for decision in decisions:
        if decision.kind == "rollout" and decision.model == model:
            at = decision.at.timestamp()
            latest[decision.outcome] = max(at, latest.get(decision.outcome, at))
    registry = CollectorRegistry()
    gauge = Gauge(
        "loopline_rollout_last_decision_timestamp_seconds",
        "When the rollout last decided each outcome for the model (Unix time).",
        ["model", "outcome"],
        registry=registry,
    )
    for outcome, at in sorted(latest.items()):
        gauge.labels(model, outcome).set(at)
    return registry
