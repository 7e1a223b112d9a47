"""Reading the labelled dataset by span and by column: the day partitions skipped and the
columns left out change nothing about the rows a span holds (generated records)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from loopline.outcomes import LabelledDataset, read_labelled
from loopline.outcomes.dataset import Joined
from tests.unit.predictions.records import record

DAY = datetime(2013, 9, 2, tzinfo=UTC)
NEW_YORK = timezone(timedelta(hours=-4))


def written(directory: Path) -> None:
    """Rows over four days; every other one stamped in New York time, so that its partition
    (the request's own day) is the day before its UTC day late in the evening (2: 22:00 on
    1 Sep in New York, 02:00 on 2 Sep UTC)."""
    rows = []
    for i, hours in enumerate([-26, 2, 9, 16, 23, 26, 30, 37, 44, 51, 58, 62, 65, 66]):
        at = DAY + timedelta(hours=hours)
        stamped = at.astimezone(NEW_YORK) if i % 2 else at
        prediction = replace(record(i), event_timestamp=stamped, id_value=f"flight-{i}")
        rows.append(Joined(prediction, "on_time", at + timedelta(hours=3), -3.0, 0))
    LabelledDataset(directory, "delayed").write(rows)


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (DAY, DAY + timedelta(days=1)),
        (DAY + timedelta(hours=5), DAY + timedelta(hours=29)),
        (None, DAY),
        (DAY + timedelta(days=1), None),
        (DAY.astimezone(NEW_YORK), (DAY + timedelta(hours=20)).astimezone(NEW_YORK)),
    ],
)
def test_a_span_holds_the_rows_a_full_read_filters_to(
    tmp_path: Path, since: datetime | None, until: datetime | None
) -> None:
    written(tmp_path)
    full = read_labelled(tmp_path)
    assert len(full) == 14
    kept = full
    if since is not None:
        kept = kept[kept["event_timestamp"] >= since]
    if until is not None:
        kept = kept[kept["event_timestamp"] < until]
    span = read_labelled(tmp_path, since, until)
    assert 0 < len(span) < len(full)
    assert span["request_id"].tolist() == kept["request_id"].tolist()
    counted = read_labelled(tmp_path, since, until, columns=["status"])
    assert counted["request_id"].tolist() == kept["request_id"].tolist()
    assert set(counted.columns) == {"request_id", "event_timestamp", "shadow", "status"}
