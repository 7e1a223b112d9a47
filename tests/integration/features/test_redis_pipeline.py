"""The serving hot path's Redis client against a real redis-server: pipelined replies stay in
order, credentials and database from the URL are used, and every failure (refused, error reply,
timeout, server gone) is ``StoreUnavailable`` once, after which the next call reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from loopline.features.redis_pipeline import RedisPipeline, StoreUnavailable
from tests.redis_server import free_port, running_redis

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with running_redis(tmp_path) as url:
        client = redis.Redis.from_url(url)
        client.hset("a", mapping={"x": "1"})
        client.hset("b", mapping={"x": "2"})
        client.set("text", "not a hash")
        client.close()
        yield url


def test_concurrent_pipelines_get_their_own_replies_in_order(redis_url: str) -> None:
    async def scenario() -> list[list[object]]:
        client = RedisPipeline(redis_url, timeout=1.0)
        calls = [
            client.call([("HMGET", key, "x") for key in keys])
            for keys in (["a", "b"], ["b"], ["missing", "a", "b"])
        ]
        try:
            return list(await asyncio.gather(*calls))
        finally:
            client.close()

    assert asyncio.run(scenario()) == [[[b"1"], [b"2"]], [[b"2"]], [[None], [b"1"], [b"2"]]]


def test_password_and_database_come_from_the_url(redis_url: str) -> None:
    admin = redis.Redis.from_url(redis_url)
    admin.select(3)
    admin.hset("c", mapping={"x": "3"})
    admin.config_set("requirepass", "s3cret")
    secured = redis_url.replace("redis://", "redis://:s3cret@").replace("/0", "/3")
    wrong = redis_url.replace("redis://", "redis://:wrong@")

    async def scenario(url: str) -> list[object]:
        client = RedisPipeline(url, timeout=1.0)
        try:
            return await client.call([("HMGET", "c", "x")])
        finally:
            client.close()

    try:
        assert asyncio.run(scenario(secured)) == [[b"3"]]
        with pytest.raises(StoreUnavailable, match=r"WRONGPASS|invalid"):
            asyncio.run(scenario(wrong))
    finally:
        unlock = redis.Redis.from_url(redis_url, password="s3cret")
        unlock.config_set("requirepass", "")
        unlock.close()
        admin.close()


def test_error_replies_and_timeouts_fail_the_call_and_the_next_call_recovers(
    redis_url: str,
) -> None:
    async def scenario() -> None:
        client = RedisPipeline(redis_url, timeout=0.2)
        with pytest.raises(StoreUnavailable, match="WRONGTYPE"):
            await client.call([("HMGET", "text", "x")])
        assert await client.call([("HMGET", "a", "x")]) == [[b"1"]]
        slow = client.call([("BLPOP", "nothing", "0.5")])
        queued = client.call([("HMGET", "a", "x")])  # behind the slow one on the connection
        for call in (slow, queued):
            with pytest.raises(StoreUnavailable, match="no reply in 200 ms"):
                await call
        await asyncio.sleep(0.5)
        assert await client.call([("HMGET", "b", "x")]) == [[b"2"]]
        client.close()

    asyncio.run(scenario())


def test_a_dead_server_fails_fast_and_a_restarted_one_is_used_again(tmp_path: Path) -> None:
    port = free_port()

    async def scenario() -> None:
        client = RedisPipeline(f"redis://127.0.0.1:{port}/0", timeout=1.0)
        with running_redis(tmp_path, port=port):
            assert await client.call([("PING",)]) == [b"PONG"]
        with pytest.raises(StoreUnavailable, match=r"connect"):
            await client.call([("PING",)])
        with running_redis(tmp_path, port=port):
            assert await client.call([("PING",)]) == [b"PONG"]
        client.close()

    asyncio.run(scenario())
