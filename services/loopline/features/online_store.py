"""Readers of Feast's online-store layouts, SQLite and single-node Redis, without Feast.

``read`` starts the batch's read at once and returns an awaitable of what was found, so that a
Redis round trip does not hold the event loop (see ``redis_pipeline``); SQLite is a local file,
read there and then. Both raise ``StoreUnavailable`` when the store cannot be read.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from loopline.features.online_plan import ViewPlan
from loopline.features.redis_pipeline import Command, RedisPipeline, StoreUnavailable
from loopline.times import iso_to_epoch

Decode = Callable[[bytes | None], Any]
Requests = list[tuple[ViewPlan, list[bytes]]]
"""Per view of the plan, the distinct entity keys to read."""


@dataclass(frozen=True, slots=True)
class Hit:
    timestamp: float
    values: dict[str, Any]


Reads = list[dict[bytes, Hit]]
"""Per view, the rows found, by entity key."""


class RedisReader:
    """One HMGET per view and entity key (hash key: entity key + project; fields: the features'
    hashed names and the view's timestamp), all written at once: one round trip per batch."""

    def __init__(self, url: str, project: str, timeout: float, decode: Decode) -> None:
        from google.protobuf.timestamp_pb2 import Timestamp

        self._client = RedisPipeline(url, timeout)
        self._timestamp = Timestamp
        self._suffix = project.encode()
        self._decode = decode
        self._fields: dict[str, list[bytes]] = {}

    def read(self, requests: Requests) -> Awaitable[Reads]:
        commands: list[Command] = []
        for view, keys in requests:
            fields = self._fields.get(view.name)
            if fields is None:
                fields = [bytes.fromhex(h) for h in view.hash_fields] + [view.ts_field.encode()]
                self._fields[view.name] = fields
            commands += [("HMGET", key + self._suffix, *fields) for key in keys]
        if not commands:
            return _done([{} for _ in requests])
        return self._found(requests, self._client.call(commands))

    def close(self) -> None:
        self._client.close()

    async def _found(self, requests: Requests, replies: Awaitable[list[Any]]) -> Reads:
        remaining = iter(await replies)
        reads: Reads = []
        for view, keys in requests:
            found: dict[bytes, Hit] = {}
            for key in keys:
                reply = next(remaining)
                if reply[-1] is not None:
                    stamp = self._timestamp.FromString(reply[-1])
                    decoded = {
                        f: self._decode(v) for f, v in zip(view.features, reply, strict=False)
                    }
                    found[key] = Hit(stamp.seconds + stamp.nanos / 1e9, decoded)
            reads.append(found)
        return reads


class SqliteReader:
    """One ``SELECT ... UNION ALL ...`` over the views' tables, on a read-only connection."""

    def __init__(self, path: str, timeout: float, decode: Decode) -> None:
        self._connection = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, timeout=timeout, check_same_thread=False
        )
        self._decode = decode

    def read(self, requests: Requests) -> Awaitable[Reads]:
        try:
            return _done(self._select(requests))
        except StoreUnavailable as error:
            future = asyncio.get_running_loop().create_future()
            future.set_exception(error)
            return future

    def close(self) -> None:
        self._connection.close()

    def _select(self, requests: Requests) -> Reads:
        selects, keys = [], []
        for index, (view, view_keys) in enumerate(requests):
            if view_keys:
                marks = ",".join("?" * len(view_keys))
                selects.append(
                    f"SELECT {index}, entity_key, feature_name, value, event_ts "
                    f'FROM "{view.table}" WHERE entity_key IN ({marks})'
                )
                keys += view_keys
        found: Reads = [{} for _ in requests]
        if not selects:
            return found
        try:
            rows = self._connection.execute(" UNION ALL ".join(selects), keys).fetchall()
        except sqlite3.Error as error:
            raise StoreUnavailable(str(error)) from error
        for index, key, feature, value, stamp in rows:
            hit = found[index].get(key)
            if hit is None:
                hit = found[index][key] = Hit(_epoch(stamp), {})
            hit.values[feature] = self._decode(value)
        return found


def _done(reads: Reads) -> asyncio.Future[Reads]:
    future: asyncio.Future[Reads] = asyncio.get_running_loop().create_future()
    future.set_result(reads)
    return future


def _epoch(stamp: object) -> float:
    """Feast's SQLite store keeps ``event_ts`` as epoch seconds or an ISO string (UTC)."""
    return float(stamp) if isinstance(stamp, int | float) else iso_to_epoch(str(stamp))
