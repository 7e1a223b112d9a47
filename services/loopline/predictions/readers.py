"""Reading the prediction log back, from either sink: in time order, each prediction once.

``read_segments`` reads the ``file`` sink (or the ``redis`` sink's spool): every worker writes
its segments in time order, so the files are merged by ``timestamp`` as they stream, without
loading them. ``PredictionStream`` reads the ``redis`` sink's stream, by stream-id range (sorted
by ``timestamp``: a segment shipped after a restart arrives later than what was written meanwhile)
or through a consumer group. The shipper delivers at least once, so both drop a record whose
``request_id`` was already seen. A line that is not a record (a write torn by a full disk) is
skipped and logged.
"""

from __future__ import annotations

import heapq
import logging
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from loopline.predictions.record import PredictionRecord, RecordError, decode
from loopline.predictions.writer import SUFFIX

logger = logging.getLogger(__name__)
FIELD = b"record"
"""The stream entry's one field: the log line."""
PAGE = 5000
RECENT_IDS = 1_000_000
"""Request ids a consumer remembers to drop redeliveries and replayed shipments."""


def read_segments(
    directory: Path, since: datetime | None = None, until: datetime | None = None
) -> Iterator[PredictionRecord]:
    """Records made in ``[since, until)`` (all by default) in ``directory``'s segments."""
    files = sorted(directory.glob(f"*{SUFFIX}"))
    merged = heapq.merge(*(_segment(path) for path in files), key=_time)
    return _unique(_within(merged, since, until))


class PredictionStream:
    """The Redis Stream the ``redis`` sink appends to (``prediction_log_stream``)."""

    def __init__(self, client: Any, stream: str) -> None:
        self._client = client
        self._stream = stream
        self._recent: OrderedDict[str, None] = OrderedDict()
        self.skipped = 0
        """Entries that held no record (counted, acknowledged and dropped)."""

    @classmethod
    def from_url(cls, url: str, stream: str) -> PredictionStream:
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=2), stream)

    def read(
        self,
        start: str = "-",
        end: str = "+",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[PredictionRecord]:
        """Records of the entries with ids in ``[start, end]``, made in ``[since, until)``."""
        records: list[PredictionRecord] = []
        cursor = start
        while True:
            entries = self._client.xrange(self._stream, cursor, end, count=PAGE)
            records.extend(self._decode(entries))
            if len(entries) < PAGE:
                break
            cursor = "(" + _text(entries[-1][0])
        records.sort(key=_time)
        return _unique(_within(iter(records), since, until))

    def consume(self, group: str, consumer: str, count: int = 1000, block_ms: int = 1000) -> Batch:
        """The next entries for ``consumer`` of ``group``: first those delivered to it and not
        acknowledged (after a crash), then new ones. Acknowledge ``Batch.ids`` once processed."""
        self._ensure_group(group)
        for last_id in ("0", ">"):
            reply = self._client.xreadgroup(
                group,
                consumer,
                {self._stream: last_id},
                count=count,
                block=None if last_id == "0" else block_ms,
            )
            entries = reply[0][1] if reply else []
            if entries:
                break
        ids = [_text(entry_id) for entry_id, _ in entries]
        fresh = []
        for record in sorted(self._decode(entries), key=_time):
            if record.request_id not in self._recent:
                self._recent[record.request_id] = None
                fresh.append(record)
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        return Batch(ids, fresh)

    def ack(self, group: str, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids:
            self._client.xack(self._stream, group, *ids)

    def _ensure_group(self, group: str) -> None:
        import redis

        try:
            self._client.xgroup_create(self._stream, group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def _decode(self, entries: list[tuple[Any, dict[bytes, bytes]]]) -> Iterator[PredictionRecord]:
        for entry_id, values in entries:
            try:
                yield decode(values[FIELD])
            except (KeyError, RecordError) as error:
                self.skipped += 1
                logger.warning("stream entry %s is not a record (%s); skipped", entry_id, error)


@dataclass(frozen=True)
class Batch:
    ids: list[str]
    """Every entry delivered, duplicates and skipped ones included: acknowledge them all."""
    records: list[PredictionRecord] = field(default_factory=list)
    """The records not seen before, in time order."""


def _segment(path: Path) -> Iterator[PredictionRecord]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                yield decode(line)
            except RecordError as error:
                logger.warning("%s:%d is not a record (%s); skipped", path, number, error)


def _within(
    records: Iterator[PredictionRecord], since: datetime | None, until: datetime | None
) -> Iterator[PredictionRecord]:
    for record in records:
        if (since is None or record.timestamp >= since) and (
            until is None or record.timestamp < until
        ):
            yield record


def _unique(records: Iterator[PredictionRecord]) -> Iterator[PredictionRecord]:
    seen: set[str] = set()
    for record in records:
        if record.request_id not in seen:
            seen.add(record.request_id)
            yield record


def _time(record: PredictionRecord) -> datetime:
    return record.timestamp


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
