"""The in-memory stream's hand-offs: the publisher's parse carried to both stages, and the
drain awaited on the event loop (``POST /events`` with ``LOOPLINE_EVENTS_ANSWER_APPLIED``)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loopline.events import encode
from loopline.events.memory_stream import MemoryEventStream
from loopline.ingest.runner import Ingest
from tests.events_data import stream
from tests.unit.ingest.test_consumer import CountingSink, RecordingWriter, drain, settings


def test_in_memory_the_publishers_parse_is_handed_on_and_still_bounded_in_time(
    tmp_path: Path,
) -> None:
    memory = MemoryEventStream(2)
    config = settings(tmp_path, ingest_shards=2)
    ingest = Ingest(config, memory, range(2), RecordingWriter(), sink=CountingSink())
    good = stream(hours=1)[0]
    ahead = datetime.now(UTC) + timedelta(days=2)
    future = dataclasses.replace(good, event_id="ahead", event_timestamp=ahead)
    memory.publish([good, future])
    ingest.repartitioners[0].step()
    copies = [entry for shard in memory._shards for entry in shard]
    assert copies
    assert all(entry.event is good for entry in copies)  # not parsed again
    assert all(entry.fields[b"event"] == encode(good) for entry in copies)
    assert [letter.field for letter in memory.dead] == ["event_timestamp"]


def test_drained_returns_once_the_last_commit_empties_the_stream(tmp_path: Path) -> None:
    memory = MemoryEventStream(1)
    ingest = Ingest(settings(tmp_path), memory, [0], RecordingWriter(), sink=CountingSink())

    async def scenario() -> None:
        await asyncio.wait_for(memory.drained(), 1)  # nothing published: at once
        memory.publish(stream(hours=1))
        waiting = asyncio.ensure_future(memory.drained())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await asyncio.to_thread(drain, ingest)
        await asyncio.wait_for(waiting, 5)

    asyncio.run(scenario())
