"""Concurrent requests share one feature read and one model call; one read is in flight at a time
and the next batch's read goes out before the model runs; requests are never split; errors reach
every caller."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

import pytest

from loopline.serving.batching import ANSWERS_PER_TURN, MicroBatcher
from loopline.serving.core import Prediction
from loopline.serving.schema import Row, Submission


def submission(rows: int, tag: str = "x") -> Submission:
    return Submission([Row({"tag": tag}, 0.0, f"{tag}{i}") for i in range(rows)], "test")


class Model:
    """Records each batch and the order of the stages; a read takes ``read_turns`` loop turns;
    answers each row with its client id."""

    def __init__(self, fail: bool = False, read_turns: int = 1) -> None:
        self.batches: list[list[int]] = []
        self.events: list[str] = []
        self.fail = fail
        self.read_turns = read_turns

    def begin(self, batch: Sequence[Submission]) -> Awaitable[None]:
        self.batches.append([len(s.rows) for s in batch])
        self.events.append(f"read {len(self.batches)}")
        return self._read()

    def complete(self, batch: Sequence[Submission], fetched: None) -> list[list[Prediction]]:
        self.events.append(f"model {batch[0].rows[0].client_id}")
        if self.fail:
            raise RuntimeError("model failed")
        return [[Prediction(r.client_id or "", 0.5, True, {}, "v1") for r in s.rows] for s in batch]

    async def _read(self) -> None:
        for _ in range(self.read_turns):
            await asyncio.sleep(0)


def test_requests_in_the_same_loop_turn_share_one_batch() -> None:
    model = Model()

    async def scenario() -> list[list[Prediction]]:
        batcher = MicroBatcher(model, max_rows=64, wait_s=0)
        return await asyncio.gather(*(batcher.submit(submission(1, str(i))) for i in range(10)))

    results = asyncio.run(scenario())
    assert model.batches == [[1] * 10]
    assert [r[0].request_id for r in results] == [f"{i}0" for i in range(10)]


def test_batches_hold_at_most_max_rows_and_never_split_a_request() -> None:
    model = Model()

    async def scenario() -> list[list[Prediction]]:
        batcher = MicroBatcher(model, max_rows=4, wait_s=0)
        sizes = [3, 3, 1, 6, 2]
        return await asyncio.gather(*(batcher.submit(submission(n)) for n in sizes))

    results = asyncio.run(scenario())
    assert model.batches == [[3], [3, 1], [6], [2]]
    assert [len(r) for r in results] == [3, 3, 1, 6, 2]


def test_a_wait_collects_requests_that_arrive_later() -> None:
    model = Model()

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_rows=64, wait_s=0.05)
        first = asyncio.ensure_future(batcher.submit(submission(1)))
        await asyncio.sleep(0.01)
        await asyncio.gather(first, batcher.submit(submission(2)))

    asyncio.run(scenario())
    assert model.batches == [[1, 2]]


def test_a_failed_batch_fails_every_request_in_it() -> None:
    async def scenario() -> list[BaseException | list[Prediction]]:
        batcher = MicroBatcher(Model(fail=True), max_rows=64, wait_s=0)
        calls = (batcher.submit(submission(1)) for _ in range(3))
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(scenario())
    assert all(isinstance(r, RuntimeError) for r in results)


def test_cancelled_requests_are_not_served() -> None:
    model = Model()

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_rows=64, wait_s=0.02)
        gone = asyncio.ensure_future(batcher.submit(submission(1)))
        await asyncio.sleep(0)
        gone.cancel()
        await batcher.submit(submission(2))

    asyncio.run(scenario())
    assert model.batches == [[2]]


def test_drain_serves_everything_queued_and_in_flight() -> None:
    model = Model()

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_rows=2, wait_s=10)
        pending = [asyncio.ensure_future(batcher.submit(submission(1))) for _ in range(3)]
        await asyncio.sleep(0)
        await batcher.drain()
        assert all(p.done() for p in pending)  # served now, not on the timer 10 s away
        await asyncio.gather(*pending)

    asyncio.run(scenario())
    assert model.batches == [[1, 1], [1]]


def test_one_read_in_flight_and_the_next_goes_out_before_the_model_runs() -> None:
    model = Model(read_turns=3)

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_rows=64, wait_s=0)
        first = asyncio.ensure_future(batcher.submit(submission(1, "a")))
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the first batch's read is now in flight
        later = [batcher.submit(submission(1, tag)) for tag in "bcd"]
        await asyncio.gather(first, *later)

    asyncio.run(scenario())
    assert model.batches == [[1], [1, 1, 1]]  # the three waited for the read, as one batch
    assert model.events == ["read 1", "read 2", "model a0", "model b0"]


@pytest.mark.parametrize("wait_s", [0.0, 0.01])
def test_one_request_alone_is_served(wait_s: float) -> None:
    model = Model()

    async def scenario() -> list[Prediction]:
        batcher = MicroBatcher(model, max_rows=8, wait_s=wait_s)
        return await batcher.submit(submission(2, "solo"))

    assert [p.request_id for p in asyncio.run(scenario())] == ["solo0", "solo1"]
    assert model.batches == [[2]]


def test_a_large_batch_is_answered_a_few_requests_per_loop_turn() -> None:
    """Between answers the loop gets back to other work (reading, refusing): a 40-request
    batch resumes at most ``ANSWERS_PER_TURN`` of its callers per turn, in order."""
    model = Model()
    turns: list[int] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        turn = 0

        def tick() -> None:
            nonlocal turn
            turn += 1
            loop.call_soon(tick)

        loop.call_soon(tick)
        batcher = MicroBatcher(model, max_rows=64, wait_s=0)

        async def caller(i: int) -> None:
            await batcher.submit(submission(1, str(i)))
            turns.append(turn)

        await asyncio.gather(*(caller(i) for i in range(40)))

    asyncio.run(scenario())
    assert model.batches == [[1] * 40]
    per_turn = [turns.count(t) for t in sorted(set(turns))]
    assert per_turn == [ANSWERS_PER_TURN, ANSWERS_PER_TURN, 40 - 2 * ANSWERS_PER_TURN]
    assert turns == sorted(turns)
