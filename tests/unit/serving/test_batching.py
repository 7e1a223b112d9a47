"""Concurrent requests share one model call; requests are never split; errors reach every caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from loopline.serving.batching import MicroBatcher
from loopline.serving.core import Prediction, Submission
from loopline.serving.schema import Row


def submission(rows: int, tag: str = "x") -> Submission:
    return Submission([Row({"tag": tag}, 0.0, f"{tag}{i}") for i in range(rows)], "test")


class Model:
    """Records each batch; answers each row with its client id."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail

    def __call__(self, batch: Sequence[Submission]) -> list[list[Prediction]]:
        self.batches.append([len(s.rows) for s in batch])
        if self.fail:
            raise RuntimeError("model failed")
        return [[Prediction(r.client_id or "", 0.5, True, {}) for r in s.rows] for s in batch]


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


def test_flush_serves_everything_queued() -> None:
    model = Model()

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_rows=2, wait_s=10)
        pending = [asyncio.ensure_future(batcher.submit(submission(1))) for _ in range(3)]
        await asyncio.sleep(0)
        batcher.flush()
        assert model.batches == [[1, 1], [1]]  # served now, not on the timer 10 s away
        await asyncio.gather(*pending)

    asyncio.run(scenario())
    assert model.batches == [[1, 1], [1]]


@pytest.mark.parametrize("wait_s", [0.0, 0.01])
def test_one_request_alone_is_served(wait_s: float) -> None:
    model = Model()

    async def scenario() -> list[Prediction]:
        batcher = MicroBatcher(model, max_rows=8, wait_s=wait_s)
        return await batcher.submit(submission(2, "solo"))

    assert [p.request_id for p in asyncio.run(scenario())] == ["solo0", "solo1"]
    assert model.batches == [[2]]
