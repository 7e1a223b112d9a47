"""Micro-batching: concurrent requests share one feature lookup and one model call.

Every protocol submits to the same ``MicroBatcher`` on the worker's event loop (gRPC's threads
hand their calls over to it). The first submission of a batch schedules the flush: by default on
the next event-loop turn, so the requests that arrived in the same turn are served together and
an idle server adds no delay; while a batch runs, the loop is busy and new requests queue, so
batches grow with load by themselves. ``wait_s`` holds every batch that long for more rows
instead (uvloop's timers have millisecond resolution). A request is never split across batches;
one larger than ``max_rows`` is served alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from loopline.serving.core import Prediction, Submission


class MicroBatcher:
    def __init__(
        self,
        run: Callable[[Sequence[Submission]], list[list[Prediction]]],
        max_rows: int,
        wait_s: float,
    ) -> None:
        self._run = run
        self._max_rows = max_rows
        self._wait_s = wait_s
        self._queue: list[tuple[Submission, asyncio.Future[list[Prediction]]]] = []
        self._rows = 0
        self._scheduled: asyncio.Handle | None = None

    async def submit(self, submission: Submission) -> list[Prediction]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Prediction]] = loop.create_future()
        self._queue.append((submission, future))
        self._rows += len(submission.rows)
        if self._rows >= self._max_rows:
            self._reschedule(loop, 0.0)
        elif self._scheduled is None:
            self._reschedule(loop, self._wait_s)
        return await future

    def flush(self) -> None:
        """Serve everything queued now, not when the scheduled flush comes (at shutdown)."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        while self._queue:
            self._flush_one()

    def _reschedule(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
        if delay:
            self._scheduled = loop.call_later(delay, self._on_timer)
        else:
            self._scheduled = loop.call_soon(self._on_timer)

    def _on_timer(self) -> None:
        self._scheduled = None
        self._flush_one()
        if self._queue:  # what did not fit: next turn, so the loop can answer this batch first
            self._scheduled = asyncio.get_running_loop().call_soon(self._on_timer)

    def _flush_one(self) -> None:
        taken, rows = 0, 0
        for submission, _ in self._queue:
            if taken and rows + len(submission.rows) > self._max_rows:
                break
            taken += 1
            rows += len(submission.rows)
        batch, self._queue = self._queue[:taken], self._queue[taken:]
        self._rows -= rows
        live = [(s, f) for s, f in batch if not f.cancelled()]  # callers that went away
        if not live:
            return
        try:
            results = self._run([submission for submission, _ in live])
        except Exception as error:
            for _, future in live:
                future.set_exception(error)
            return
        for (_, future), predictions in zip(live, results, strict=True):
            future.set_result(predictions)
