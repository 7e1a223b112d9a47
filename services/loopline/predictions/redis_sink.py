"""The ``redis`` prediction-log sink: segments shipped to a Redis Stream, then deleted.

A thread per worker appends each record (field ``record``: the JSON line) to the stream with
pipelined ``XADD``, in segment order, and writes the byte offset Redis has acknowledged to
``<segment>.shipped`` after each chunk, so whoever ships the segment next resumes there. It also
claims segments left by dead workers (nobody holds their ``flock``), which is how records written
before a SIGKILL reach the stream after a restart. Delivery is at least once: a crash between
an ``XADD`` and its checkpoint re-sends that chunk, so the readers dedup by ``request_id``.
While Redis fails, records wait in the segments (the bounded queue), failures are counted, and
the shipper retries with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from loopline.files import write_text_atomic
from loopline.predictions.writer import SUFFIX, LogCounters, PredictionLog, Segment

logger = logging.getLogger(__name__)
CHUNK = 500
READ_BYTES = 1 << 20
"""A segment is read this much at a time (more for a longer line): while Redis is down a
backlog of any size costs one read's memory per retry, not the backlog's."""
SCAN_EVERY_S = 5.0


class RedisShipper:
    name = "redis"

    def __init__(self, url: str, stream: str, counters: LogCounters) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self._errors = (redis.RedisError, OSError)
        self._stream = stream
        self._counters = counters
        self._offsets: dict[Path, int] = {}
        self._wake = threading.Event()
        self._deadline: float | None = None
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self._log: PredictionLog | None = None

    def start(self, log: PredictionLog) -> None:
        self._log = log
        self._thread.start()

    def stop(self, deadline: float) -> None:
        self._deadline = deadline
        self._wake.set()
        self._thread.join(max(0.0, deadline - time.monotonic()) + 1)

    def _run(self) -> None:
        log = self._log
        assert log is not None
        backoff, next_scan = 0.0, 0.0
        while True:
            try:
                for segment in list(log.segments):
                    self._ship(log, segment, own=True)
                if time.monotonic() >= next_scan:
                    self._ship_orphans(log)
                    next_scan = time.monotonic() + SCAN_EVERY_S
                backoff = 0.0
            except self._errors as error:
                self._counters.log_failed(self.name)
                backoff = min(2.0, max(0.05, backoff * 2))
                logger.warning("prediction stream append failed (retrying): %s", error)
            if self._deadline is not None and (
                log.pending == 0 or time.monotonic() >= self._deadline
            ):
                return
            self._wake.wait(backoff or 0.05)
            self._wake.clear()

    def _ship_orphans(self, log: PredictionLog) -> None:
        own = {segment.path for segment in log.segments}
        for path in sorted(log.directory.glob(f"*{SUFFIX}")):
            if path in own:
                continue
            segment = Segment.claim(path)
            if segment is None:
                continue
            try:
                self._ship(log, segment, own=False)
            finally:
                if segment.path.exists():
                    segment.release(delete=False)  # not all shipped: the next scan resumes
            logger.info("shipped %s, left by a worker that exited", path.name)

    def _ship(self, log: PredictionLog, segment: Segment, *, own: bool) -> None:
        """Ship ``segment`` up to what is written; finish it when retired and all shipped."""
        checkpoint = segment.path.with_name(segment.path.name + ".shipped")
        offset = self._offsets.get(segment.path)
        if offset is None:
            offset = int(checkpoint.read_text()) if checkpoint.exists() else 0
        size = segment.size
        while offset < size:
            lines = _complete_lines(segment.path, offset, size)
            if not lines:  # a torn last line: nothing more will ever complete it
                size = offset
                break
            for start in range(0, len(lines), CHUNK):
                chunk = lines[start : start + CHUNK]
                with self._client.pipeline(transaction=False) as pipe:
                    for line in chunk:
                        pipe.xadd(self._stream, {"record": line})
                    pipe.execute()
                offset += sum(len(line) + 1 for line in chunk)
                self._offsets[segment.path] = offset
                write_text_atomic(checkpoint, str(offset))
                if own:
                    log.made_durable(len(chunk))
                else:
                    self._counters.log_durable(self.name, len(chunk))
        if segment.retired and offset >= size:
            self._offsets.pop(segment.path, None)
            checkpoint.unlink(missing_ok=True)
            if own:
                log.finished(segment, delete=True)
            else:
                segment.release(delete=True)


def _complete_lines(path: Path, offset: int, size: int) -> list[bytes]:
    """The whole lines from ``offset`` (to ``size``), about ``READ_BYTES`` of them and at least
    one however long; none when what is left is a torn line."""
    want = READ_BYTES
    with path.open("rb") as handle:
        while True:
            handle.seek(offset)
            data = handle.read(min(size - offset, want))
            end = data.rfind(b"\n") + 1
            if end or offset + len(data) >= size:
                return data[:end].splitlines()
            want *= 2
