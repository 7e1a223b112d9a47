"""The shard state's integer event times equal pandas', and the offline writer reads its rows
from the stream only when a file is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from loopline.events.memory_stream import MemoryEventStream
from loopline.events.stream import Commit
from loopline.ingest.offline import OfflineWriter
from loopline.ingest.state import epoch_ns


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2013, 9, 1, 10, 16, tzinfo=UTC),
        datetime(2013, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
        datetime(2013, 9, 1, 10, 16, 0, 123_456, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_event_times_in_ns_are_pandas_values(moment: datetime) -> None:
    assert epoch_ns(moment) == pd.Timestamp(moment).value


class CountingStream(MemoryEventStream):
    def __init__(self) -> None:
        super().__init__(1)
        self.reads = 0

    def offline_rows(self, shard: int, limit: int) -> tuple[int, list[bytes]]:
        self.reads += 1
        return super().offline_rows(shard, limit)


def test_offline_rows_are_read_only_when_a_file_is_due(tmp_path: Path) -> None:
    stream = CountingStream()
    writer = OfflineWriter(stream, 0, tmp_path, rows=3, interval_s=3600)
    stream.commit(0, Commit(checkpoint=b"{}", offline=[b"a", b"b"]))
    assert writer.flush() == 0
    assert stream.reads == 0  # two rows wait, three make a file, the interval has not passed
    assert stream.offline_count(0) == 2
