"""Admission: which requests a worker takes on, decided once a request's body is in.

A worker's queue is bounded in rows and in time. A request is refused at once, with 429 and
``Retry-After``, before any of its work is done, when admitting it would put more than
``max_rows`` rows in flight (admitted and not yet answered), or while the oldest request in
flight has waited longer than ``deadline_s``: the queue is not moving (a stalled store, a
starved CPU), and a new request would wait at least that long too (CoDel's sojourn signal).
``max_requests`` is the older per-worker request limit (``max_concurrency``).

The default, 128 rows, is two full batches: enough for the batcher to reach capacity (the next
batch's feature read goes out while this batch's model runs), so an admitted request waits
about two batches (docs/serving.md, "Overload and shutdown").
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

from loopline.errors import Overloaded


class Admission:
    def __init__(
        self,
        *,
        max_rows: int,
        deadline_s: float,
        max_requests: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_rows = max_rows
        self.deadline_s = deadline_s
        self.max_requests = max_requests
        self.rows = 0
        self._clock = clock
        self._admitted: OrderedDict[int, float] = OrderedDict()
        """Requests in flight, oldest first: when each was admitted."""
        self._next = 0

    @property
    def in_flight(self) -> int:
        return len(self._admitted)

    def oldest_wait(self) -> float:
        """Seconds the oldest request in flight has waited (0 when none is)."""
        if not self._admitted:
            return 0.0
        return self._clock() - next(iter(self._admitted.values()))

    def check(self, rows: int = 1) -> None:
        """Raise ``Overloaded`` unless a request of ``rows`` rows would be admitted now."""
        if self.max_requests and len(self._admitted) >= self.max_requests:
            raise Overloaded(f"over capacity: {len(self._admitted)} requests in flight")
        if self.rows and self.rows + rows > self.max_rows:
            raise Overloaded(
                f"over capacity: {self.rows} rows queued, the limit is {self.max_rows}"
            )
        waited = self.oldest_wait()
        if waited > self.deadline_s:
            raise Overloaded(
                f"over capacity: the oldest queued request has waited {waited * 1000:.0f} ms"
            )

    @contextlib.contextmanager
    def admit(self, rows: int) -> Iterator[None]:
        """Hold ``rows`` rows in flight for the block, or raise ``Overloaded`` at once."""
        self.check(rows)
        key = self._next
        self._next += 1
        self._admitted[key] = self._clock()
        self.rows += rows
        try:
            yield
        finally:
            del self._admitted[key]
            self.rows -= rows
