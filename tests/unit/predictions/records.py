"""Prediction records for tests: generated values, not real predictions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from loopline.predictions import PredictionRecord

START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def record(i: int, at: datetime | None = None) -> PredictionRecord:
    """Record ``i``, made ``i`` milliseconds after ``START`` unless ``at`` says otherwise."""
    return PredictionRecord(
        request_id=f"r{i}",
        timestamp=at or START + timedelta(milliseconds=i),
        model="flight-delay",
        model_version="v1",
        endpoint="predict",
        event_timestamp=datetime(2013, 9, 1, 8, 30, tzinfo=UTC),
        id_field="flight_id",
        id_value=f"2013-09-01-UA{i}" if i % 2 else None,
        request={"origin": "EWR", "carrier": "UA", "sched_hour": 8, "distance": 1400.0},
        features={"temp": 61.5 + i, "dep_delay_mean_1h": None},
        feature_status={"origin_weather": "fresh", "origin_departure_stats": "missing"},
        probability=0.125 + i / 1e4,
        decision=False,
    )


def records(start: int, count: int) -> list[PredictionRecord]:
    return [record(i) for i in range(start, start + count)]


@dataclass
class Counts:
    """What the log reported through its ``LogCounters``."""

    failed: dict[str, int] = field(default_factory=dict)
    durable: dict[str, int] = field(default_factory=dict)
    pending: list[int] = field(default_factory=list)

    def log_failed(self, sink: str) -> None:
        self.failed[sink] = self.failed.get(sink, 0) + 1

    def log_durable(self, sink: str, records: int) -> None:
        self.durable[sink] = self.durable.get(sink, 0) + records

    def log_pending(self, records: int) -> None:
        self.pending.append(records)
