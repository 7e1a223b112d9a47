"""Online features for serving, read without Feast (see ``online_plan`` for why).

``OnlineFeatures`` reads the online store (SQLite or single-node Redis) directly, in Feast's own
storage layout, with one query (SQLite) or one round trip (Redis) for all the views of a batch,
each entity key read once; enforces each view's TTL against the request's time, because Feast
returns expired values as present; and runs the on-demand view's own transformation, taken from
the Feast registry file (never from the plan cache) and deserialised the way Feast does it. The
integration tests compare its values with ``get_online_features``.

A lookup has two halves so that the predictor can overlap a batch's round trip with other work:
``begin`` serialises the keys and sends the read, ``finish`` awaits it and assembles the columns.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from loopline.features.entity_key import serialize_entity_key
from loopline.features.online_plan import (
    OnDemandPlan,
    OnlinePlan,
    ViewPlan,
)
from loopline.features.online_store import Reads, RedisReader, SqliteReader
from loopline.features.redis_pipeline import StoreUnavailable
from loopline.features.store_config import redis_url_for
from loopline.settings import Settings

Status = Literal["fresh", "stale", "missing", "fallback"]
"""Per view and row: within TTL; older than TTL; no row for the key; the store failed."""
_RETRY_AFTER_S = 1.0  # after a store failure, serve defaults this long before trying again
_CACHE_SIZE = 100_000  # entries in the key and value memos before they start over
_MISSING = object()
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingLookup:
    """A lookup that has been sent: ``reads`` is None when the store is not being tried."""

    rows: Sequence[Mapping[str, Any]]
    as_of: Sequence[float]
    keys: list[list[bytes]]
    reads: Awaitable[Reads] | None


@dataclass(frozen=True)
class Lookup:
    """Features for a batch, by column; a value is None when missing, stale or not read."""

    values: dict[str, list[Any]]
    status: dict[str, list[Status]]


class OnlineFeatures:
    """Reads one plan's features; one instance per worker, used from one thread."""

    def __init__(self, plan: OnlinePlan, settings: Settings) -> None:
        import dill
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        self.plan = plan
        pool = descriptor_pool.DescriptorPool()
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(plan.value_proto)))
        self._value = message_factory.GetMessageClass(
            pool.FindMessageTypeByName("feast.types.Value")
        )
        # The registry's bytes (see online_plan: the plan cache holds no code), unpickled as
        # Feast unpickles them.
        self._udfs = [(odfv, dill.loads(plan.transformation(odfv.name))) for odfv in plan.on_demand]
        self._keys: list[dict[tuple[Any, ...], bytes]] = [{} for _ in plan.views]
        self._decoded: dict[bytes, Any] = {}
        self._down_until = 0.0
        timeout = settings.feature_timeout_ms / 1000
        self._reader: RedisReader | SqliteReader
        redis_url = redis_url_for(plan.store, settings)
        if redis_url is not None:
            self._reader = RedisReader(redis_url, plan.project, timeout, self._decode)
        else:
            self._reader = SqliteReader(plan.sqlite_path or "", timeout, self._decode)

    @property
    def feature_names(self) -> list[str]:
        return [f for view in self.plan.views for f in view.features] + [
            f for odfv in self.plan.on_demand for f in odfv.features
        ]

    async def lookup(self, rows: Sequence[Mapping[str, Any]], as_of: Sequence[float]) -> Lookup:
        """Features of ``rows`` (request fields and join keys) as valid at ``as_of`` (epoch s)."""
        return await self.finish(self.begin(rows, as_of))

    def begin(self, rows: Sequence[Mapping[str, Any]], as_of: Sequence[float]) -> PendingLookup:
        """Send the read for ``rows`` now (on the running event loop); ``finish`` collects it."""
        keys = [self._row_keys(i, view, rows) for i, view in enumerate(self.plan.views)]
        reads = None
        if time.monotonic() >= self._down_until:
            unique = [list(dict.fromkeys(k for k in view_keys if k)) for view_keys in keys]
            reads = self._reader.read(list(zip(self.plan.views, unique, strict=True)))
        return PendingLookup(rows, as_of, keys, reads)

    async def finish(self, pending: PendingLookup) -> Lookup:
        rows, as_of = pending.rows, pending.as_of
        reads: list[dict[bytes, Any] | None] = [None] * len(pending.keys)
        if pending.reads is not None:
            try:
                reads = list(await pending.reads)
            except StoreUnavailable as error:
                # Degrade to defaults (flagged "fallback") and stop trying for a moment, so a
                # dead store costs one timeout per second rather than one per batch.
                logger.warning("online store unavailable, serving defaults: %s", error)
                self._down_until = time.monotonic() + _RETRY_AFTER_S
        values: dict[str, list[Any]] = {}
        status: dict[str, list[Status]] = {}
        for view, view_keys, found in zip(self.plan.views, pending.keys, reads, strict=True):
            columns: list[list[Any]] = [[None] * len(rows) for _ in view.features]
            states: list[Status] = []
            for row, key in enumerate(view_keys):
                hit = found.get(key) if found is not None and key else None
                if found is None:
                    states.append("fallback")
                elif hit is None:
                    states.append("missing")
                elif view.ttl_seconds and as_of[row] - hit.timestamp > view.ttl_seconds:
                    states.append("stale")
                else:
                    states.append("fresh")
                    for column, feature in zip(columns, view.features, strict=True):
                        column[row] = hit.values.get(feature)
            values.update(zip(view.features, columns, strict=True))
            status[view.name] = states
        for odfv, udf in self._udfs:
            inputs = {n: values[n] if n in values else [r[n] for r in rows] for n in odfv.inputs}
            values.update(_transform(odfv, udf, inputs, len(rows)))
        return Lookup(values, status)

    def close(self) -> None:
        self._reader.close()

    def _row_keys(
        self, index: int, view: ViewPlan, rows: Sequence[Mapping[str, Any]]
    ) -> list[bytes]:
        cache = self._keys[index]
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        keys = []
        for row in rows:
            parts = tuple(row.get(name) for name in view.request_keys)
            if None in parts:
                keys.append(b"")
            elif (key := cache.get(parts)) is None:
                key = cache[parts] = serialize_entity_key(view.join_keys, parts)
                keys.append(key)
            else:
                keys.append(key)
        return keys

    def _decode(self, raw: bytes | None) -> Any:
        """A stored ``Value`` as a Python value; memoised, as the same values repeat."""
        if not raw:
            return None
        value = self._decoded.get(raw, _MISSING)
        if value is _MISSING:
            message = self._value.FromString(raw)
            kind: str | None = message.WhichOneof("val")
            if kind is None or kind == "null_val":
                value = None
            elif kind.endswith(("_list_val", "_set_val")):
                value = tuple(getattr(message, kind).val)
            else:
                value = getattr(message, kind)
            if len(self._decoded) >= _CACHE_SIZE:
                self._decoded.clear()
            self._decoded[raw] = value
        return value


def _transform(
    odfv: OnDemandPlan, udf: Any, inputs: dict[str, list[Any]], rows: int
) -> dict[str, list[Any]]:
    if not odfv.singleton:
        outputs = udf(inputs)
        return {feature: list(outputs[feature]) for feature in odfv.features}
    results = [udf({name: column[i] for name, column in inputs.items()}) for i in range(rows)]
    return {feature: [result[feature] for result in results] for feature in odfv.features}
