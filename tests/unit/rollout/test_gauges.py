from __future__ import annotations

from datetime import UTC, datetime

from loopline.registry.decisions import Decision
from loopline.rollout.gauges import rollout_gauges


def at(hour: int) -> datetime:
    return datetime(2013, 12, 1, hour, tzinfo=UTC)


def test_the_latest_time_of_every_outcome_of_the_model() -> None:
    decisions = [
        Decision(kind="rollout", model="m", outcome="rolled-back", at=at(1)),
        Decision(kind="rollout", model="m", outcome="waiting", at=at(2)),
        Decision(kind="rollout", model="m", outcome="rolled-back", at=at(3)),
        Decision(kind="gate", model="m", outcome="rejected", at=at(4)),
        Decision(kind="rollout", model="other", outcome="promoted", at=at(5)),
    ]
    (family,) = rollout_gauges("m", decisions).collect()
    assert family.name == "loopline_rollout_last_decision_timestamp_seconds"
    assert sorted((s.labels["model"], s.labels["outcome"], s.value) for s in family.samples) == [
        ("m", "rolled-back", at(3).timestamp()),
        ("m", "waiting", at(2).timestamp()),
    ]
