"""Micro-batching: concurrent requests share one feature read and one model call.

Every protocol submits to the same ``MicroBatcher`` on the worker's event loop (gRPC's threads
hand their calls over to it). A batch is served in two stages (``Stages``): ``begin`` sends its
feature read and returns an awaitable, ``complete`` runs the model and logs. One read is in
flight at a time: requests that arrive meanwhile queue, and when the read comes back the next
batch's read is sent at once, before this batch's model runs, so the round trip to the store
overlaps the model instead of idling the worker. Batches therefore grow with load by themselves,
and an idle server adds no delay: the first submission flushes on the next event-loop turn,
serving together the requests that arrived in the same turn. ``wait_s`` holds a batch that long
for more rows instead, unless a read in flight comes back first (uvloop's timers have
millisecond resolution). A request is never split across batches; one larger than ``max_rows``
is served alone. ``complete`` answers each request of a batch on its own: with its predictions,
or with the exception that request alone failed with (``core``'s per-request isolation).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from loopline.serving.core import Outcome, Prediction
from loopline.serving.schema import Submission

_Waiting = tuple[Submission, "asyncio.Future[list[Prediction]]"]
ANSWERS_PER_TURN = 16
"""Requests of a batch answered per event-loop turn: each answer resumes its request's task,
which encodes and writes its response (tens of µs each), so answering a full batch at once
would hold the loop for milliseconds while other connections wait to be read."""


class Stages(Protocol):
    def begin(self, batch: Sequence[Submission]) -> Awaitable[Any]: ...

    def complete(self, batch: Sequence[Submission], fetched: Any) -> Sequence[Outcome]: ...


class MicroBatcher:
    def __init__(self, stages: Stages, max_rows: int, wait_s: float) -> None:
        self._stages = stages
        self._max_rows = max_rows
        self._wait_s = wait_s
        self._queue: list[_Waiting] = []
        self._rows = 0
        self._scheduled: asyncio.Handle | None = None
        self._reading = False
        self._batches: set[asyncio.Task[None]] = set()

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

    async def drain(self) -> None:
        """Serve everything queued and in flight now, not when it is due (at shutdown)."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        while self._queue or self._batches:
            if self._queue and not self._reading:
                self._flush_one()
            await asyncio.wait(set(self._batches))

    def _reschedule(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
        if delay:
            self._scheduled = loop.call_later(delay, self._on_timer)
        else:
            self._scheduled = loop.call_soon(self._on_timer)

    def _on_timer(self) -> None:
        self._scheduled = None
        if not self._reading:  # else the read in flight flushes when it comes back
            self._flush_one()

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
            if self._queue:
                self._flush_one()
            return
        submissions = [submission for submission, _ in live]
        try:
            reading = self._stages.begin(submissions)
        except Exception as error:
            _fail(live, error)
            return
        self._reading = True
        task = asyncio.get_running_loop().create_task(self._serve(live, submissions, reading))
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

    async def _serve(
        self, live: list[_Waiting], submissions: list[Submission], reading: Awaitable[Any]
    ) -> None:
        try:
            try:
                fetched = await reading
            finally:
                self._reading = False
                if self._queue:  # the next batch's read goes out before this batch's model runs
                    self._flush_one()
            results = self._stages.complete(submissions, fetched)
        except Exception as error:
            _fail(live, error)
            return
        for index, ((_, future), outcome) in enumerate(zip(live, results, strict=True)):
            if index and not index % ANSWERS_PER_TURN:
                await asyncio.sleep(0)  # let the loop read (and refuse) between answers
            if future.done():
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


def _fail(waiting: list[_Waiting], error: Exception) -> None:
    for _, future in waiting:
        if not future.done():
            future.set_exception(error)
