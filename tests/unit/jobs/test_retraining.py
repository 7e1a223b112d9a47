"""The retrain job's pieces that need no training: the sliding window, the live requests read
back from a real labelled dataset, and the monitor summary that triggered it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from loopline.errors import RetrainError
from loopline.jobs.pipeline import Splits
from loopline.jobs.retraining import labelled_requests, read_trigger, sliding_window
from loopline.outcomes.dataset import Joined, LabelledDataset
from loopline.settings import Settings
from loopline.spec import RetrainingSpec, load_spec
from tests.unit.predictions.records import record

SPEC = load_spec("flight-delay")
DAY = datetime(2013, 12, 30, 6, 0, tzinfo=UTC)


def test_the_window_ends_at_the_end_and_holds_out_its_last_days() -> None:
    end = datetime(2014, 1, 1, 0, 30, tzinfo=UTC)
    start, validation, holdout, last = sliding_window(SPEC, end)
    assert (start, validation, holdout, last) == (
        end - timedelta(days=243),
        end - timedelta(days=62),
        end - timedelta(days=31),
        end,
    )


def test_a_window_with_no_room_to_train_is_refused() -> None:
    with pytest.raises(ValidationError, match="less than window_days"):
        RetrainingSpec(window_days=10, validation_days=5, holdout_days=5)


def test_splits_are_half_open_in_request_time() -> None:
    moments = [datetime(2013, 9, d, tzinfo=UTC) for d in (1, 3, 5, 7)]
    times = pd.Series(pd.date_range("2013-08-31", "2013-09-08", freq="12h", tz="UTC"))
    splits = Splits.at(pd.DataFrame({"event_timestamp": times}), *moments)
    assert splits.rows() == {"train": 4, "validation": 4, "holdout": 4}
    assert splits.train["event_timestamp"].min() == moments[0]
    assert splits.holdout["event_timestamp"].max() < moments[3]
    assert [w.end for w in splits.windows] == moments[1:]


def joined(i: int, flight: str, version: str, status: str, hours_later: float) -> Joined:
    request = {
        "origin": "EWR",
        "carrier": "UA",
        "tailnum": f"N{i}",
        "dest": "IAH",
        "sched_hour": 6,
        "weekday": 0,
        "distance": 1400.0,
    }
    made = replace(
        record(i),
        model_version=version,
        event_timestamp=DAY + timedelta(minutes=i),
        id_value=flight,
        request=request,
    )
    arrived = status in ("on_time", "delayed")
    return Joined(
        made,
        status,
        None if status == "expired" else made.event_timestamp + timedelta(hours=hours_later),
        40.0 if status == "delayed" else None,
        int(status == "delayed") if arrived else None,
    )


def test_live_requests_are_read_once_per_flight_with_when_their_label_became_known(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path, outcome_dataset_dir=tmp_path / "labelled")
    LabelledDataset(settings.labelled_dir, SPEC.label.name).write(
        [
            joined(1, "F1", "v1", "delayed", 3),
            joined(2, "F1", "v2", "delayed", 3),  # the same flight, answered by the challenger
            joined(3, "F2", "v1", "on_time", 2),
            joined(4, "F3", "v1", "cancelled", 30),  # known last, but no label
            joined(5, "F4", "v1", "expired", 0),
        ]
    )
    live = labelled_requests(settings, SPEC)
    assert list(live.requests["flight_id"]) == ["F1", "F2", "F3", "F4"]
    assert list(live.requests.columns) == [
        "flight_id",
        "event_timestamp",
        "origin",
        "carrier",
        "tailnum",
        "dest",
        "sched_hour",
        "weekday",
        "distance",
    ]
    assert list(live.outcomes["status"]) == ["delayed", "on_time", "cancelled", "expired"]
    assert live.latest_outcome == DAY + timedelta(minutes=1, hours=3)  # not the cancelled one


def test_no_labelled_data_has_no_latest_outcome(tmp_path: Path) -> None:
    live = labelled_requests(Settings(home=tmp_path), SPEC)
    assert live.requests.empty
    assert live.latest_outcome is None


def test_the_monitor_summary_is_recorded_by_path_sha256_and_drift_share(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert read_trigger(settings, SPEC.name) is None
    path = settings.reports_dir / SPEC.name / "latest-monitor.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {
                "model": SPEC.name,
                "champion_version": "v1",
                "window": {
                    "start": "2013-12-01T00:00:00+00:00",
                    "end": "2014-01-01T00:00:00+00:00",
                },
                "rows": 25000,
                "drift_share": 0.5,
                "drifted_features": ["temp", "dewp"],
                "decision": "retrain",
                "report": "/reports/flight-delay/monitor-20261201T000000Z/report.html",
            }
        )
    )
    trigger = read_trigger(settings, SPEC.name)
    assert trigger is not None
    assert trigger.path == str(path)
    assert trigger.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (trigger.decision, trigger.drift_share, trigger.champion_version) == (
        "retrain",
        0.5,
        "v1",
    )
    assert trigger.report is not None
    assert trigger.report.endswith("report.html")


def test_the_reports_directory_follows_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings(home=tmp_path).reports_dir == tmp_path / "reports"
    monkeypatch.setenv("LOOPLINE_REPORTS_DIR", str(tmp_path / "elsewhere"))
    assert Settings(home=tmp_path).reports_dir == tmp_path / "elsewhere"


def test_a_summary_that_is_not_one_is_an_error_naming_the_file(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    path = settings.reports_dir / SPEC.name / "latest-monitor.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"drift_share": "a lot"}')
    with pytest.raises(RetrainError, match=r"latest-monitor\.json is not a monitor summary"):
        read_trigger(settings, SPEC.name)
