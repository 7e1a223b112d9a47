"""Outcomes joined to the predictions that were logged for them.

The ingest process hands every outcome event to ``OutcomeJoin.handle``; the join reads the
prediction log (``sources``) and matches each record to its outcome by the spec's request id
(``PredictionRecord.id_value``, e.g. the ``flight_id``): every prediction made for a flight, by
every model version, gets that flight's outcome. Either may arrive first: a prediction waits
for its outcome, and an outcome is kept for predictions logged after it, both for at most the
maximum label delay of world time (the latest outcome's time is the clock, so a replay of 2013
expires as it would have then). A prediction still waiting then is written as ``expired``: its
outcome never came, and it is counted, not dropped. An outcome whose status has no label
(``label.exclude_statuses``: cancelled, diverted) is written and counted but kept out of the
metrics. An outcome no prediction was logged for is counted when it expires. A record that
carries a shadow challenger's score is written as two rows, the answered one and the shadow's
(``Joined.with_shadow``), so that the live metrics and the rollout see both versions.

Joined rows are buffered and written to the labelled dataset every ``flush_rows`` rows or
``flush_s`` seconds, or once no outcome has come for ``idle_s`` (the end of a burst: a quiet
stream does not hold the last rows back), and enter the live metrics as they are written. The
join's own thread reads the log and writes them, outside ingest's step: ``handle`` records the
outcomes and wakes it, so ingest waits for neither the log's decoding nor a parquet write. It
also polls the log between outcomes, so the last rows of a burst are not left in memory. Expiry
keeps heaps by time, so a poll costs what arrived, not what waits.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge

from loopline.events import Event, EventType
from loopline.outcomes.dataset import EXPIRED, Joined, LabelledDataset
from loopline.outcomes.live import LivePerformance
from loopline.outcomes.sources import PredictionSource
from loopline.predictions import PredictionRecord
from loopline.retry import retry_until_stopped
from loopline.spec import ModelSpec

logger = logging.getLogger(__name__)


class JoinMetrics:
    """Counters of what the join did, on the ingest process's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.outcomes = Counter(
            "loopline_outcomes",
            "Outcome events received by the join, by status.",
            ["status"],
            registry=registry,
        )
        self.joined = Counter(
            "loopline_outcome_joined",
            "Predictions written to the labelled dataset, by model version and result: labelled,"
            " excluded (a status without a label) or expired (no outcome within the delay).",
            ["model_version", "result"],
            registry=registry,
        )
        self.unmatched = Counter(
            "loopline_outcomes_unmatched",
            "Outcomes no logged prediction was joined to before they expired.",
            registry=registry,
        )
        self.unjoinable = Counter(
            "loopline_predictions_without_id",
            "Logged predictions without the request id field: they can never be joined.",
            registry=registry,
        )
        self.failures = Counter(
            "loopline_outcome_join_failures",
            "Reads of the prediction log or writes of the dataset that failed and are retried.",
            registry=registry,
        )
        self.pending = Gauge(
            "loopline_predictions_awaiting_outcome",
            "Logged predictions waiting for their outcome.",
            registry=registry,
        )


class OutcomeJoin:
    """The ``OutcomeSink`` the ingest process calls (``loopline.ingest``)."""

    def __init__(
        self,
        spec: ModelSpec,
        source: PredictionSource,
        dataset: LabelledDataset,
        live: LivePerformance,
        metrics: JoinMetrics,
        *,
        max_delay: timedelta,
        flush_rows: int = 1000,
        flush_s: float = 5.0,
        idle_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._id_field = spec.request_id
        self._label = spec.label.name
        self._excluded = set(spec.label.exclude_statuses)
        self._source = source
        self.dataset = dataset
        self.live = live
        self.metrics = metrics
        self._max_delay = max_delay
        self._flush_rows = flush_rows
        self._flush_s = flush_s
        self._idle_s = idle_s
        self._clock_s = clock
        self._last_outcome = clock()
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        """Held by the one writer of the moment (the join's thread, or ``flush``)."""
        self._waiting: dict[str, list[PredictionRecord]] = {}
        self._waiting_count = 0
        self._waiting_due: list[tuple[datetime, str]] = []
        """Heap of (first waiting record's time, request id); entries left stale are skipped."""
        self._outcomes: dict[str, tuple[Event, bool]] = {}
        """Outcomes by request id, kept for predictions logged later; True once joined."""
        self._outcomes_due: list[tuple[datetime, str]] = []
        self._buffer: list[Joined] = []
        self._buffered_since = 0.0
        self._clock: datetime | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._timer: threading.Thread | None = None

    def handle(self, outcomes: Sequence[Event]) -> None:
        """Join ``outcomes`` (outcome events, deduplicated by event id) to what was logged, and
        wake the join's thread to read what was logged since: ingest's step, which calls this,
        does not wait for the log to be read (a slice's predictions, a third of the step)."""
        with self._lock:
            for event in outcomes:
                if event.event_type is EventType.OUTCOME:
                    self._outcome(event)
            if outcomes:
                self._last_outcome = self._clock_s()
        self._wake.set()

    def tick(self) -> None:
        """Read the log, expire, and write when due; the join's thread calls it every
        ``idle_s`` (at most ``flush_s``), and as soon as ``flush_rows`` are buffered."""
        with self._writing:
            with self._lock:
                self._poll()
                now = self._clock_s()
                due = self._buffer and (
                    now - self._buffered_since >= self._flush_s
                    or now - self._last_outcome >= self._idle_s
                )
                if not due and len(self._buffer) < self._flush_rows:
                    return
            self._write()

    def flush(self) -> None:
        """Write what is buffered now."""
        with self._writing:
            self._write()

    def start(self) -> OutcomeJoin:
        self._timer = threading.Thread(target=self._run, name="outcome-join", daemon=True)
        self._timer.start()
        return self

    def close(self) -> None:
        """Stop the join's thread, read the log a last time and write what is buffered
        (predictions still waiting stay unwritten: their outcome may come after a restart)."""
        self._stop.set()
        self._wake.set()
        if self._timer is not None:
            self._timer.join()
        with self._lock:
            self._poll()
        self.flush()

    def _run(self) -> None:
        """Tick whenever woken or due, until stopped; a tick that fails (the log's Redis down,
        the dataset's disk full) is counted and tried again (``retry``): what it did not read
        or write is read or written then."""

        def wait() -> None:
            self._wake.wait(min(self._flush_s, self._idle_s))
            self._wake.clear()

        def failed(first: bool) -> None:
            self.metrics.failures.inc()
            if first:
                logger.exception("the outcome join failed to read or write; retrying")

        retry_until_stopped(self._stop, self.tick, failed, before=wait)

    def _outcome(self, event: Event) -> None:
        key = event.keys[self._id_field]
        self.metrics.outcomes.labels(str(event.payload.get("status"))).inc()
        if key in self._outcomes:
            return  # a second outcome of the same request: the first one stands
        if self._clock is None or event.event_timestamp > self._clock:
            self._clock = event.event_timestamp
        records = self._waiting.pop(key, [])
        self._waiting_count -= len(records)
        self._outcomes[key] = (event, bool(records))
        heapq.heappush(self._outcomes_due, (event.event_timestamp, key))
        for record in records:
            self._join(record, event)

    def _poll(self) -> None:
        for record in self._source.poll():
            if record.id_value is None:
                self.metrics.unjoinable.inc()
            elif record.id_value in self._outcomes:
                event, _ = self._outcomes[record.id_value]
                self._outcomes[record.id_value] = (event, True)
                self._join(record, event)
            else:
                waiting = self._waiting.setdefault(record.id_value, [])
                if not waiting:
                    heapq.heappush(self._waiting_due, (record.event_timestamp, record.id_value))
                waiting.append(record)
                self._waiting_count += 1
        self._expire()
        self.metrics.pending.set(self._waiting_count)
        if len(self._buffer) >= self._flush_rows:
            self._wake.set()

    def _join(self, record: PredictionRecord, event: Event) -> None:
        status = str(event.payload["status"])
        label = event.payload.get(self._label)
        arr_delay = event.payload.get("arr_delay")
        joined = Joined(
            record,
            status,
            event.event_timestamp,
            None if arr_delay is None else float(arr_delay),
            None if status in self._excluded or label is None else int(label),
        )
        self._add(joined)

    def _add(self, joined: Joined) -> None:
        if not self._buffer:
            self._buffered_since = self._clock_s()
        self._buffer += joined.with_shadow()

    def _expire(self) -> None:
        if self._clock is None:
            return
        oldest = self._clock - self._max_delay
        while self._waiting_due and self._waiting_due[0][0] < oldest:
            at, key = heapq.heappop(self._waiting_due)
            records = self._waiting.get(key)
            if records is None or records[0].event_timestamp != at:
                continue  # joined since, or waiting again from a later record
            del self._waiting[key]
            self._waiting_count -= len(records)
            for record in records:
                self._add(Joined(record, EXPIRED, None, None, None))
        while self._outcomes_due and self._outcomes_due[0][0] < oldest:
            at, key = heapq.heappop(self._outcomes_due)
            kept = self._outcomes.get(key)
            if kept is None or kept[0].event_timestamp != at:
                continue
            del self._outcomes[key]
            if not kept[1]:
                self.metrics.unmatched.inc()

    def _write(self) -> None:
        """Write the buffer (with ``_writing`` held, ``_lock`` not: ingest goes on meanwhile)."""
        with self._lock:
            buffered, self._buffer = self._buffer, []
        if not buffered:
            return
        try:
            self.dataset.write(buffered)
        except BaseException:
            with self._lock:
                self._buffer = buffered + self._buffer  # tried again at the next flush
            raise
        self.live.add(buffered)
        for item in buffered:
            if item.status == EXPIRED:
                result = "expired"
            else:
                result = "excluded" if item.label is None else "labelled"
            self.metrics.joined.labels(item.record.model_version, result).inc()
