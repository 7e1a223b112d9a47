"""The prediction log, read incrementally by the join: whatever was logged since the last poll.

``SegmentTail`` follows the ``file`` sink's segments (``PredictionLog``'s files) by byte offset,
decoding only complete lines, so a segment being written is read up to its last newline and a
new segment is picked up at the next poll. ``StreamTail`` reads the ``redis`` sink's stream
through a consumer group (``PredictionStream.consume``), so a restarted join resumes where it
acknowledged. Both hand back each request id once (the log is delivered at least once).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from loopline.predictions import PredictionRecord, PredictionStream, RecordError, decode
from loopline.predictions.writer import SUFFIX

logger = logging.getLogger(__name__)
RECENT_IDS = 1_000_000
"""Request ids remembered to drop a record delivered twice."""


class PredictionSource(Protocol):
    def poll(self) -> list[PredictionRecord]:
        """Records logged since the last poll, each request id once, in time order."""
        ...


class _Unique:
    """Drops request ids seen recently (bounded, oldest forgotten first)."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()

    def fresh(self, records: Iterable[PredictionRecord]) -> list[PredictionRecord]:
        kept = []
        for record in records:
            if record.request_id not in self._seen:
                self._seen[record.request_id] = None
                kept.append(record)
        while len(self._seen) > RECENT_IDS:
            self._seen.popitem(last=False)
        return sorted(kept, key=lambda r: r.timestamp)


class SegmentTail:
    """New complete lines of every segment in ``directory``, file by file."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._offsets: dict[Path, int] = {}
        self._unique = _Unique()
        self.skipped = 0
        """Lines that held no record (a write torn by a full disk): logged and skipped."""

    def poll(self) -> list[PredictionRecord]:
        files = sorted(self._directory.glob(f"*{SUFFIX}"))
        self._offsets = {path: self._offsets.get(path, 0) for path in files}
        records: list[PredictionRecord] = []
        for path in files:
            records.extend(self._read(path))
        return self._unique.fresh(records)

    def _read(self, path: Path) -> list[PredictionRecord]:
        offset = self._offsets[path]
        try:
            if path.stat().st_size <= offset:
                return []  # nothing new: most segments, most polls (a stat, not an open)
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:  # removed since the listing (the redis sink's spool)
            return []
        end = data.rfind(b"\n") + 1
        self._offsets[path] = offset + end
        records = []
        for line in data[:end].splitlines():
            try:
                records.append(decode(line))
            except RecordError as error:
                self.skipped += 1
                logger.warning("%s: a line is not a record (%s); skipped", path, error)
        return records


class StreamTail:
    """New entries of the prediction stream for one consumer of ``group``.

    A batch is acknowledged once its records are handed to the join, whose state is in memory:
    records pending an outcome when the process dies are not redelivered (docs/outcomes.md).
    """

    def __init__(self, stream: PredictionStream, group: str, consumer: str, count: int = 5000):
        self._stream = stream
        self._group = group
        self._consumer = consumer
        self._count = count
        self._unique = _Unique()

    def poll(self) -> list[PredictionRecord]:
        records: list[PredictionRecord] = []
        while True:
            batch = self._stream.consume(self._group, self._consumer, self._count, block_ms=1)
            records.extend(batch.records)
            self._stream.ack(self._group, batch.ids)
            if len(batch.ids) < self._count:
                return self._unique.fresh(records)
