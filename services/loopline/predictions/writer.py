"""The prediction log: every answered prediction, written ahead of its answer.

Each worker appends JSON lines to its own segment files, ``<dir>/<utc>-<pid>-<seq>.jsonl``. A
batch's records are written to the segment (one ``write``, into the OS page cache) *before* the
batch is answered, so a process crash (SIGKILL, OOM) after an answer never loses its record.
A background thread fsyncs every ``prediction_log_fsync_ms``, so a host crash loses at most that
window; with 0, every batch is fsynced before it is answered.

Sinks: with ``file`` the segments are the log (kept; rotation past ``segment_bytes``). With
``redis`` they are a spool that ``RedisShipper`` appends to a Redis Stream and then deletes.

Pending records (written, not yet durable at the sink) form the bounded queue: past
``max_pending`` the server refuses new requests with 503 rather than answer what it cannot log.
A failed write fails the batch (503), and failed writes, fsyncs and stream appends are counted in
the ``LogCounters`` the owner passes in (serving exports them as
``loopline_prediction_log_*``). Each worker holds an exclusive ``flock`` on every
segment it has not finished with, so a segment nobody holds was left by a dead worker.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from loopline.predictions.record import PredictionRecord, encode

logger = logging.getLogger(__name__)
SUFFIX = ".jsonl"


class LogUnavailable(Exception):
    """The records could not be written: the batch must not be answered."""


@dataclass(eq=False)
class Segment:
    path: Path
    lock_fd: int
    """Held (flock) until the segment is finished with: shipped, or closed for the file sink."""
    fd: int = -1
    """Open for appending while this worker writes it (the same descriptor as ``lock_fd``)."""
    size: int = 0
    records: int = 0
    synced: int = 0
    """Records fsynced."""
    retired: bool = False
    sequence: int = 0

    @classmethod
    def create(cls, directory: Path, sequence: int) -> Segment:
        """A new segment named ``<utc>-<pid>-<sequence>``, or the next free sequence: a
        process with the same pid (a restarted container) may have left one in the same second."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        # Locked under a temporary name first: a scanner never sees an unlocked live segment.
        temporary = directory / f"{stamp}-{os.getpid()}-{sequence:05d}.open"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        while True:
            path = directory / f"{stamp}-{os.getpid()}-{sequence:05d}{SUFFIX}"
            try:
                os.link(temporary, path)  # unlike a rename, never replaces an existing segment
                break
            except FileExistsError:
                sequence += 1
        os.unlink(temporary)
        return cls(path=path, lock_fd=fd, fd=fd, sequence=sequence)

    @classmethod
    def claim(cls, path: Path) -> Segment | None:
        """Lock a segment left by a dead worker; None when a live worker holds it."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if not path.exists():  # finished and deleted between the listing and the lock
            os.close(fd)
            return None
        size = os.fstat(fd).st_size
        return cls(path=path, lock_fd=fd, size=size, retired=True)

    def release(self, delete: bool) -> None:
        if delete:
            self.path.unlink(missing_ok=True)
        os.close(self.lock_fd)


class LogCounters(Protocol):
    """What the log reports as it works; the serving metrics implement it."""

    def log_failed(self, sink: str) -> None:
        """A write, fsync or stream append failed."""

    def log_durable(self, sink: str, records: int) -> None:
        """``records`` more are durable at ``sink``."""

    def log_pending(self, records: int) -> None:
        """Records answered but not yet durable at the sink, now."""


class Sink(Protocol):
    """Where records become durable beyond the local segment (the ``redis`` sink)."""

    name: str

    def start(self, log: PredictionLog) -> None: ...

    def stop(self, deadline: float) -> None: ...


class PredictionLog:
    """Owned by one worker; ``append`` is called from the event loop thread only."""

    def __init__(
        self,
        directory: Path,
        *,
        fsync_ms: float,
        segment_bytes: int,
        max_pending: int,
        counters: LogCounters,
        sink: Sink | None = None,
    ) -> None:
        self.directory = directory
        self.sink_name = sink.name if sink else "file"
        self._fsync_s = fsync_ms / 1000
        self._segment_bytes = segment_bytes
        self._max_pending = max_pending
        self._counters = counters
        self._sink = sink
        self._sequence = 0
        self.segments: list[Segment] = []
        """This worker's unfinished segments, oldest first; the last one is being written."""
        self.lock = threading.Lock()
        self.written = 0
        self.durable = 0
        self._stop = threading.Event()
        self._syncer = threading.Thread(target=self._sync_loop, name="log-fsync", daemon=True)

    @property
    def pending(self) -> int:
        return self.written - self.durable

    @property
    def full(self) -> bool:
        return self.pending >= self._max_pending

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._rotate()
        self._syncer.start()
        if self._sink:
            self._sink.start(self)

    def append(self, records: Sequence[PredictionRecord]) -> None:
        """Write ``records`` to the segment before their batch is answered."""
        self.write([encode(record) for record in records])

    def write(self, lines: Sequence[bytes]) -> None:
        """``append`` for records already encoded (``record.encode``), one line each: the
        server encodes each row's record on its own, so one that cannot be fails alone."""
        if not lines:
            return
        records = len(lines)
        data = b"".join(lines)
        segment = self.segments[-1]
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(segment.fd, view) :]
            if self._fsync_s == 0:
                os.fsync(segment.fd)
        except OSError as error:
            self._counters.log_failed(self.sink_name)
            self._rotate()  # never append after a torn write
            raise LogUnavailable(f"prediction log write failed: {error}") from error
        segment.size += len(data)
        segment.records += records
        self.written += records
        if self._fsync_s == 0:
            self._synced(segment, segment.records)
        if segment.size >= self._segment_bytes:
            self._rotate()
        self._counters.log_pending(self.pending)

    def close(self, timeout: float) -> None:
        """Drain: fsync everything, give the sink until ``timeout`` to take the rest."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._syncer.join()
        if self._sink:
            self._sink.stop(deadline)
        with self.lock:
            remaining, self.segments = self.segments, []
        for segment in remaining:
            segment.release(delete=False)
        self._counters.log_pending(self.pending)
        if self.pending:
            logger.error("prediction log closed with %d records not at the sink", self.pending)

    def made_durable(self, records: int) -> None:
        """``records`` more are durable at the sink (fsynced, or acknowledged by Redis)."""
        self.durable += records
        self._counters.log_durable(self.sink_name, records)
        self._counters.log_pending(self.pending)

    def finished(self, segment: Segment, delete: bool) -> None:
        """Nothing more will be done with ``segment``: stop holding it."""
        with self.lock:
            self.segments = [s for s in self.segments if s is not segment]
        segment.release(delete)

    def _rotate(self) -> None:
        with self.lock:
            if self.segments:
                self.segments[-1].retired = True
            segment = Segment.create(self.directory, self._sequence + 1)
            self._sequence = segment.sequence
            self.segments.append(segment)

    def _sync_loop(self) -> None:
        interval = self._fsync_s or 0.2
        while not self._stop.wait(interval):
            self._sync_once()
        self._sync_once()

    def _sync_once(self) -> None:
        with self.lock:
            segments = list(self.segments)
        for segment in segments:
            records = segment.records
            if records != segment.synced:
                try:
                    os.fsync(segment.fd)
                except OSError as error:
                    logger.error("fsync of %s failed: %s", segment.path, error)
                    self._counters.log_failed(self.sink_name)
                    continue
                self._synced(segment, records)
            if segment.retired and self._sink is None and segment.synced == segment.records:
                self.finished(segment, delete=False)

    def _synced(self, segment: Segment, records: int) -> None:
        with self.lock:
            new = records - segment.synced
            segment.synced = max(segment.synced, records)
        if new > 0 and self._sink is None:
            self.made_durable(new)
