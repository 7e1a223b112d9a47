"""Sending a timeline to a running server: each slice's events, then its prediction requests.

Slices go strictly in order, so a request sees exactly what was known at its time (see
``timeline``): a slice's events are sent and ``settle``d (ingest has applied them) before its
requests go out, and every request of a slice is answered before the next slice's events are
sent. Within a slice, requests are sent as ``/predict_batch`` calls of ``batch_rows`` rows,
``concurrency`` at a time. ``--speed N`` paces slices at N times real time; ``--max`` sends as
fast as the server and ingest answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import orjson

from loopline.errors import LooplineError
from loopline.events import Event, encode
from loopline.events.stream import EventStream, drained
from loopline.replay.http import JsonClient
from loopline.replay.timeline import Timeline


class ReplayError(LooplineError):
    """The server refused the replay's requests or events."""


class EventSender(Protocol):
    async def send(self, events: Sequence[Event]) -> None:
        """Hand ``events`` to ingest (accepted when this returns)."""

    async def settle(self) -> None:
        """Return once ingest has applied every event sent."""


class HttpEvents:
    """``POST /events`` on the server, ``batch`` events a call. Ingest runs in the server, which
    answers once it has applied them (``LOOPLINE_EVENTS_ANSWER_APPLIED``), so ``settle`` has
    nothing left to wait for."""

    def __init__(self, client: JsonClient, batch: int) -> None:
        self._client, self._batch = client, batch

    async def send(self, events: Sequence[Event]) -> None:
        for start in range(0, len(events), self._batch):
            body = b"[" + b",".join(encode(e) for e in events[start : start + self._batch]) + b"]"
            answer = await self._client.post("/events", body)
            if answer.status >= 300:
                text = answer.body[:300].decode(errors="replace")
                raise ReplayError(f"POST /events: {answer.status} {text}")

    async def settle(self) -> None:
        return None


class StreamEvents:
    """Events appended straight to the event stream (``EventStream.publish``), ``batch`` at a
    time; ``settle`` waits until the repartition stage and every shard have no backlog."""

    def __init__(self, stream: EventStream, batch: int, poll_s: float = 0.001) -> None:
        self._stream, self._batch, self._poll_s = stream, batch, poll_s

    async def send(self, events: Sequence[Event]) -> None:
        for start in range(0, len(events), self._batch):
            self._stream.publish(events[start : start + self._batch])

    async def settle(self) -> None:
        await drained(self._stream, self._poll_s)


@dataclass
class ReplaySummary:
    seconds: float = 0.0
    events: int = 0
    predictions: int = 0
    requests_failed: int = 0
    outcomes_sent: int = 0
    slices: int = 0
    feature_status: dict[str, Counter[str]] = field(default_factory=dict)
    model_versions: Counter[str] = field(default_factory=Counter)
    server_ms: list[float] = field(default_factory=list)
    """Each ``/predict_batch`` call's time in the server (its ``Server-Timing`` header)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "slices": self.slices,
            "events": self.events,
            "events_per_s": round(self.events / self.seconds, 1) if self.seconds else None,
            "predictions": self.predictions,
            "predictions_per_s": (
                round(self.predictions / self.seconds, 1) if self.seconds else None
            ),
            "requests_failed": self.requests_failed,
            "outcomes_sent": self.outcomes_sent,
            "model_versions": dict(self.model_versions),
            "feature_status": {v: dict(c) for v, c in sorted(self.feature_status.items())},
            "server_ms": _percentiles(self.server_ms),
        }


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    p50, p99 = np.percentile(values, [50, 99])
    return {"p50": round(float(p50), 3), "p99": round(float(p99), 3)}


def _server_ms(header: str | None) -> float | None:
    """``total;dur=1.234`` → 1.234 (the server's ``Server-Timing``; None without one)."""
    for metric in (header or "").split(","):
        name, _, params = metric.strip().partition(";")
        if name == "total" and params.startswith("dur="):
            return float(params.removeprefix("dur="))
    return None


class Replayer:
    """Sends a timeline to the server ``client`` posts to (``concurrency`` connections: a
    replay is one round trip after another, and ``replay.http`` says what one costs)."""

    def __init__(
        self,
        client: JsonClient,
        events: EventSender,
        *,
        batch_rows: int,
        speed: float | None,
    ) -> None:
        self._client, self._events = client, events
        self._batch_rows, self._speed = batch_rows, speed
        self.summary = ReplaySummary()

    async def run(self, timeline: Timeline, advance: Callable[[int], None]) -> ReplaySummary:
        """Replay every slice; ``advance(n)`` is told the requests and events of each.

        With ``--max``, the events of slices without requests (the night, a quiet spell) wait
        and go with the next slice's: nothing is served in between, so no answer can tell, and
        a send (``POST /events`` waits for ingest) costs a round trip through ingest."""
        began = time.perf_counter()
        held: list[Event] = []
        for part in timeline.slices:
            if self._speed is not None:
                due = (part.start - timeline.start).total_seconds() / self._speed
                await asyncio.sleep(max(0.0, due - (time.perf_counter() - began)))
            elif not part.requests and part is not timeline.slices[-1]:
                held += part.events
                self.summary.slices += 1
                advance(len(part.events))
                continue
            await self._slice(held + part.events, part.requests)
            held = []
            advance(len(part.events) + len(part.requests))
        self.summary.seconds = time.perf_counter() - began
        return self.summary

    async def _slice(self, events: list[Event], requests: list[dict[str, Any]]) -> None:
        summary = self.summary
        summary.slices += 1
        if events:
            await self._events.send(events)
            summary.events += len(events)
            summary.outcomes_sent += sum(e.event_type == "outcome" for e in events)
        if requests:
            await self._events.settle()
            batches = [
                requests[i : i + self._batch_rows]
                for i in range(0, len(requests), self._batch_rows)
            ]
            await asyncio.gather(*(self._predict(batch) for batch in batches))

    async def _predict(self, rows: list[dict[str, Any]]) -> None:
        answer = await self._client.post("/predict_batch", orjson.dumps(rows))
        status, content = answer.status, answer.body
        timing = answer.headers.get("server-timing")
        if status != 200:
            self.summary.requests_failed += len(rows)
            if status < 500 and status != 429:
                text = content[:300].decode(errors="replace")
                raise ReplayError(f"POST /predict_batch: {status} {text}")
            return
        server_ms = _server_ms(timing)
        if server_ms is not None:
            self.summary.server_ms.append(server_ms)
        for prediction in orjson.loads(content):
            self.summary.predictions += 1
            self.summary.model_versions[prediction["model_version"]] += 1
            for view, status in prediction["feature_status"].items():
                self.summary.feature_status.setdefault(view, Counter())[status] += 1
