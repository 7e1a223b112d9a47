"""The join reads the ``redis`` sink's stream through its consumer group: each record once,
acknowledged, and a redelivered one dropped."""

from __future__ import annotations

import pytest
import redis

from loopline.outcomes import StreamTail
from loopline.predictions import PredictionStream, encode
from loopline.predictions.readers import FIELD
from tests.unit.predictions.records import records

pytestmark = pytest.mark.integration
STREAM = "loopline:predictions"


def test_each_record_is_read_once_and_acknowledged(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    tail = StreamTail(PredictionStream(client, STREAM), "loopline-outcomes", "join-0", count=7)
    batch = records(0, 20)
    for record in batch:
        client.xadd(STREAM, {FIELD: encode(record)})
    assert [r.request_id for r in tail.poll()] == [r.request_id for r in batch]
    client.xadd(STREAM, {FIELD: encode(batch[3])})  # the shipper delivers at least once
    client.xadd(STREAM, {FIELD: encode(records(20, 1)[0])})
    assert [r.request_id for r in tail.poll()] == ["r20"]
    assert tail.poll() == []
    (group,) = client.xinfo_groups(STREAM)
    assert group["pending"] == 0
