"""``POST /events``: live events in, validated whole, appended to the event stream.

The body is one event or a list of them (docs/events.md). Every event is parsed before any is
written: a list with one bad event is refused whole, 400 naming the field
(``events[3].payload.dep_delay``). The events are then appended in one transaction, so they are
all accepted or none: 202 ``{"accepted": n}`` once the stream holds them, 503 when it cannot be
reached (the producer retries; ids make a retry idempotent).

With no Redis the stream is in this process's memory and, with one worker, this process also
ingests it (``ingest_in_serve``); with Redis, ``loopline ingest`` does, unless
``LOOPLINE_INGEST_EMBEDDED=true``. With ``LOOPLINE_EVENTS_ANSWER_APPLIED`` and ingest in this
process, the answer waits until the events are applied (``loopline replay`` relies on it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from loopline.errors import BadRequest, Unavailable
from loopline.events import Event, EventError, parse
from loopline.events.memory_stream import MemoryEventStream
from loopline.events.stream import EventStream, StreamUnavailable, drained
from loopline.ingest.runner import Ingest, build, event_stream
from loopline.settings import Settings

logger = logging.getLogger(__name__)


def parse_body(value: Any, limit: int) -> list[Event]:
    """The events of a decoded body; ``BadRequest`` names the first field at fault."""
    try:
        if isinstance(value, list):
            if not value:
                raise BadRequest("events: the list is empty")
            if len(value) > limit:
                raise BadRequest(f"events: {len(value)} events, more than the {limit} allowed")
            return [parse(item, f"events[{i}]") for i, item in enumerate(value)]
        return [parse(value)]
    except EventError as error:
        raise BadRequest(str(error)) from None


class EventsRoute:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._limit = settings.events_max_per_request
        in_memory = settings.events_url is None
        self._stream: EventStream | None = None
        if not in_memory or settings.workers == 1:
            self._stream = event_stream(settings, producer=not settings.ingest_in_serve)
        self._ingest: Ingest | None = None
        self._starting = threading.Lock()

    def start(self) -> None:
        """With Redis and embedded ingest, start consuming now (direct producers may write).
        In memory, ingest starts with the first event: building it (Feast's store and imports,
        seconds of CPU under the interpreter lock) beside a server that has just turned ready
        stalled its event loop past the queue deadline (a 429 under load, in CI)."""
        if self._settings.ingest_in_serve and self._settings.events_url is not None:
            threading.Thread(target=self._start_ingest, name="ingest-start", daemon=True).start()

    def _start_ingest(self) -> None:
        with self._starting:
            if self._ingest is None:
                self._ingest = build(self._settings, self._stream)
                self._ingest.start()

    async def post(self, body: Any) -> dict[str, int]:
        events = parse_body(body, self._limit)
        if self._stream is None:
            raise Unavailable(
                "events need LOOPLINE_EVENTS_REDIS_URL or LOOPLINE_REDIS_URL with more than one "
                "worker"
            )
        if self._settings.ingest_in_serve and self._ingest is None:
            await asyncio.to_thread(self._start_ingest)  # in memory: from the first event on
        try:
            if isinstance(self._stream, MemoryEventStream):
                self._stream.publish(events)  # in this process's memory: nothing to wait on
            else:
                await asyncio.to_thread(self._stream.publish, events)
        except StreamUnavailable as error:
            message = f"the event stream is unavailable, nothing was accepted: {error}"
            raise Unavailable(message) from None
        if self._settings.events_answer_applied and self._ingest is not None:
            await self._applied(self._stream)
        return {"accepted": len(events)}

    @staticmethod
    async def _applied(stream: EventStream) -> None:
        """Until ingest has applied everything published (in memory: woken by its commits)."""
        if isinstance(stream, MemoryEventStream):
            await stream.drained()
        else:
            await drained(stream)

    def stop(self) -> None:
        if self._ingest is not None:
            self._ingest.close()
        elif self._stream is not None:
            self._stream.close()
