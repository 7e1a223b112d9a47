"""The outcome join: predictions from a real segment directory, outcome events as ingest hands
them on, the labelled parquet and the live gauges read back."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry
from sklearn.metrics import log_loss, roc_auc_score

from loopline.events import Event, EventType, outcome_event_id
from loopline.outcomes import (
    EXPIRED,
    LabelledDataset,
    LivePerformance,
    OutcomeJoin,
    SegmentTail,
    read_labelled,
)
from loopline.outcomes.join import JoinMetrics
from loopline.predictions import PredictionRecord, ShadowScore, encode
from loopline.spec import load_spec
from tests.unit.predictions.records import record

SPEC = load_spec("flight-delay")
DAY = datetime(2013, 9, 2, 6, 0, tzinfo=UTC)


def prediction(i: int, probability: float = 0.3, version: str = "v1") -> PredictionRecord:
    return replace(
        record(i),
        model_version=version,
        event_timestamp=DAY + timedelta(minutes=i),
        id_value=f"20130902-UA{i}-EWR",
        probability=probability,
        decision=probability >= SPEC.decision_threshold,
    )


def outcome(i: int, status: str, minutes_later: float = 180) -> Event:
    flight = f"20130902-UA{i}-EWR"
    arrived = status in ("on_time", "delayed")
    return Event(
        outcome_event_id(flight),
        EventType.OUTCOME,
        DAY + timedelta(minutes=i + minutes_later),
        {"flight_id": flight},
        {
            "status": status,
            "arr_delay": (40.0 if status == "delayed" else -3.0) if arrived else None,
            "delayed": int(status == "delayed") if arrived else None,
        },
    )


class Setup:
    def __init__(self, tmp_path: Path, windows: tuple[float, ...] = (24.0,)) -> None:
        self.now = 0.0
        self.log = tmp_path / "log"
        self.log.mkdir()
        self.registry = CollectorRegistry()
        self.live = LivePerformance([timedelta(hours=h) for h in windows], 0.35)
        self.registry.register(self.live)
        metrics = JoinMetrics(self.registry)
        # Counters are read as increases from here: once BentoML (the registry) has switched
        # prometheus_client to multiprocess values, same-named series share one value per process.
        for version in ("v1", "v2"):
            for result in ("labelled", "excluded", "expired"):
                metrics.joined.labels(version, result)
        for status in ("on_time", "delayed", "cancelled", "diverted"):
            metrics.outcomes.labels(status)
        self._baseline = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in self.registry.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        }
        self.join = OutcomeJoin(
            SPEC,
            SegmentTail(self.log),
            LabelledDataset(tmp_path / "labelled", "delayed"),
            self.live,
            metrics,
            max_delay=timedelta(hours=24),
            flush_rows=1_000_000,
            flush_s=3600,
            idle_s=0.5,
            clock=lambda: self.now,
        )
        self._segment = 0

    def logged(self, records: list[PredictionRecord], partial: bytes = b"") -> Path:
        self._segment += 1
        path = self.log / f"segment-{self._segment:03d}.jsonl"
        path.write_bytes(b"".join(encode(r) for r in records) + partial)
        return path

    def sample(self, name: str, **labels: str) -> float | None:
        value = self.registry.get_sample_value(name, labels)
        if value is None:
            return None
        return value - self._baseline.get((name, tuple(sorted(labels.items()))), 0.0)

    def labelled(self) -> object:
        self.join.tick()  # what the join's thread does when handle wakes it
        self.join.flush()
        return read_labelled(self.join.dataset.directory)


def test_outcome_after_and_before_its_prediction_both_join(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.logged([prediction(1, 0.8)])
    setup.join.tick()
    assert setup.sample("loopline_predictions_awaiting_outcome") == 1
    setup.join.handle([outcome(1, "delayed"), outcome(2, "on_time")])
    setup.logged([prediction(2, 0.1)])
    setup.join.tick()
    frame = setup.labelled()
    assert list(frame["flight_id"]) == ["20130902-UA1-EWR", "20130902-UA2-EWR"]
    assert list(frame["delayed"]) == [1, 0]
    assert list(frame["status"]) == ["delayed", "on_time"]
    assert list(frame["label_delay_s"]) == [180 * 60.0, 180 * 60.0]
    assert frame["temp"].tolist() == [62.5, 63.5]  # the features as served
    assert frame["status_origin_weather"].tolist() == ["fresh", "fresh"]
    assert setup.sample("loopline_outcome_joined_total", model_version="v1", result="labelled") == 2
    assert setup.sample("loopline_predictions_awaiting_outcome") == 0


def test_cancelled_are_counted_and_kept_out_of_the_metrics(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.logged([prediction(1, 0.9), prediction(2, 0.2), prediction(3, 0.6)])
    setup.join.handle([outcome(1, "delayed"), outcome(2, "on_time"), outcome(3, "cancelled", 0)])
    frame = setup.labelled()
    assert frame["delayed"].isna().tolist() == [False, False, True]
    assert setup.sample("loopline_outcome_joined_total", model_version="v1", result="excluded") == 1
    assert setup.sample("loopline_outcomes_total", status="cancelled") == 1
    assert setup.sample("loopline_live_labelled", model_version="v1", window="24h") == 2
    assert setup.sample("loopline_live_roc_auc", model_version="v1", window="24h") == 1.0


def test_a_prediction_whose_outcome_never_comes_expires_counted(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.logged([prediction(1), prediction(2)])
    setup.join.handle([outcome(2, "on_time")])
    setup.join.tick()
    assert setup.sample("loopline_predictions_awaiting_outcome") == 1
    setup.join.handle([outcome(3, "on_time", minutes_later=25 * 60)])  # the clock moves on
    frame = setup.labelled()
    expired = frame[frame["status"] == EXPIRED]
    assert expired["flight_id"].tolist() == ["20130902-UA1-EWR"]
    assert expired["delayed"].isna().all()
    assert expired["outcome_timestamp"].isna().all()
    assert setup.sample("loopline_outcome_joined_total", model_version="v1", result="expired") == 1
    assert setup.sample("loopline_predictions_awaiting_outcome") == 0
    setup.join.handle([outcome(4, "on_time", minutes_later=50 * 60)])
    setup.join.tick()
    assert setup.sample("loopline_outcomes_unmatched_total") == 1  # 3: no prediction; 2 joined


def test_rows_are_written_once_no_outcome_has_come_for_the_idle_time(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.logged([prediction(1), prediction(2)])
    setup.join.handle([outcome(1, "on_time")])
    setup.now += 0.4
    setup.join.handle([outcome(2, "delayed")])
    setup.now += 0.4
    setup.join.tick()  # 0.8 s after the first row, 0.4 s after the last outcome: held
    assert not list(setup.join.dataset.directory.glob("**/*.parquet"))
    setup.now += 0.1
    setup.join.tick()  # quiet for 0.5 s: written, though flush_s (an hour) is far off
    frame = read_labelled(setup.join.dataset.directory)
    assert frame["flight_id"].tolist() == ["20130902-UA1-EWR", "20130902-UA2-EWR"]


def test_a_line_being_written_is_read_once_complete(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    line = encode(prediction(2))
    path = setup.logged([prediction(1)], partial=line[:40])
    setup.join.handle([outcome(1, "on_time"), outcome(2, "on_time")])
    assert len(setup.labelled()) == 1
    with path.open("ab") as handle:
        handle.write(line[40:] + encode(prediction(1)))  # and a redelivered record
    setup.join.tick()
    assert setup.labelled()["flight_id"].tolist() == ["20130902-UA1-EWR", "20130902-UA2-EWR"]


def test_live_gauges_equal_sklearn_on_the_dataset_per_version_and_window(tmp_path: Path) -> None:
    setup = Setup(tmp_path, windows=(6.0, 24.0))
    chance = random.Random(7)
    records, events = [], []
    for i in range(600):
        late = chance.random() < 0.3
        score = min(max(chance.gauss(0.55 if late else 0.3, 0.2), 0.001), 0.999)
        records.append(prediction(i, round(score, 2), version="v1" if i % 3 else "v2"))
        events.append(outcome(i, "delayed" if late else "on_time", chance.uniform(60, 400)))
    setup.logged(records[:300])
    setup.join.handle(events[:400])
    setup.logged(records[300:])
    setup.join.handle(events[400:])
    frame = setup.labelled()
    labelled = frame[frame["delayed"].notna()]
    latest = frame["outcome_timestamp"].max()
    compared = 0
    for version in ("v1", "v2"):
        for hours in (6, 24):
            inside = labelled[
                (labelled["model_version"] == version)
                & (labelled["outcome_timestamp"] > latest - timedelta(hours=hours))
            ]
            labels = {"model_version": version, "window": f"{hours}h"}
            auc = setup.sample("loopline_live_roc_auc", **labels)
            assert auc == pytest.approx(
                roc_auc_score(inside["delayed"], inside["probability"]), abs=1e-9
            )
            loss = setup.sample("loopline_live_log_loss", **labels)
            assert loss == pytest.approx(
                log_loss(inside["delayed"], inside["probability"]), abs=1e-9
            )
            assert setup.sample("loopline_live_labelled", **labels) == len(inside)
            compared += len(inside)
    assert compared > 600  # the 24 h windows hold all 600, the 6 h ones some


def test_a_shadow_score_joins_as_a_row_of_its_own_version(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    shadowed = [
        replace(prediction(i, 0.2 + i / 10), shadow=ShadowScore("v2", 0.9 - i / 10, True))
        for i in range(1, 5)
    ]
    setup.logged(shadowed)
    setup.join.handle([outcome(i, "delayed" if i % 2 else "on_time") for i in range(1, 5)])
    frame = setup.labelled()
    assert frame["model_version"].tolist() == ["v1"] * 4  # the answers alone, by default
    assert not frame["shadow"].any()
    both = read_labelled(setup.join.dataset.directory, shadow=True)
    shadow = both[both["shadow"]]
    assert shadow["model_version"].tolist() == ["v2"] * 4
    assert shadow["probability"].tolist() == pytest.approx([0.8, 0.7, 0.6, 0.5])
    assert shadow["request_id"].tolist() == frame["request_id"].tolist()
    assert shadow["delayed"].tolist() == frame["delayed"].tolist()
    snapshot = setup.live.snapshot()
    assert snapshot["v1", "24h"]["loopline_live_labelled"] == 4
    assert snapshot["v2", "24h"]["loopline_live_labelled"] == 4
    assert setup.sample("loopline_outcome_joined_total", model_version="v2", result="labelled") == 4


def test_a_dataset_written_before_the_shadow_column_reads_as_answers(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.logged([prediction(1, 0.8), prediction(2, 0.1)])
    setup.join.handle([outcome(1, "delayed"), outcome(2, "on_time")])
    setup.join.tick()
    setup.join.flush()
    for path in setup.join.dataset.directory.rglob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.drop(["shadow", "latency_ms"]), path)
    frame = read_labelled(setup.join.dataset.directory, shadow=True)
    assert frame["shadow"].tolist() == [False, False]
    assert frame["request_id"].tolist() == ["r1", "r2"]


class FailingOnce:
    """A log that cannot be read at the first poll (its Redis down), then reads as ``source``."""

    def __init__(self, source: SegmentTail) -> None:
        self.source, self.failed = source, False

    def poll(self) -> list[PredictionRecord]:
        if not self.failed:
            self.failed = True
            raise ConnectionError("the log is down")
        return self.source.poll()


def test_the_joins_thread_counts_a_failed_read_and_reads_again(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    failing = FailingOnce(SegmentTail(setup.log))
    setup.join._source = failing
    setup.join.start()
    try:
        setup.logged([prediction(1)])
        setup.join.handle([outcome(1, "delayed")])  # wakes the thread: its poll fails
        deadline = time.monotonic() + 10
        while (
            setup.sample("loopline_outcome_joined_total", model_version="v1", result="labelled")
            != 1
        ):
            assert time.monotonic() < deadline, "the join did not recover"
            setup.now += 1.0  # past the idle time: the joined row is written at the next tick
            time.sleep(0.05)
            setup.join._wake.set()
        assert failing.failed
        assert setup.sample("loopline_outcome_join_failures_total") == 1
    finally:
        setup.join.close()
