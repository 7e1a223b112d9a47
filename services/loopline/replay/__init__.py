"""``loopline replay``: the live period of the reference data, sent to a running server in time
order (docs/outcomes.md, "Replay").

timeline  the prepared tables as events and prediction requests, in 10-minute slices
driver    slices sent in order: events, settle, requests (batched, concurrent)
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import uvloop

from loopline.ingest.runner import event_stream
from loopline.outcomes import read_labelled
from loopline.replay.driver import (
    EventSender,
    HttpEvents,
    Replayer,
    ReplayError,
    ReplaySummary,
    StreamEvents,
)
from loopline.replay.http import HttpError, JsonClient
from loopline.replay.timeline import Timeline, build_timeline
from loopline.settings import Settings
from loopline.spec import ModelSpec

__all__ = ["ReplayError", "ReplaySummary", "Timeline", "build_timeline", "replay"]


def _headers(settings: Settings) -> dict[str, str]:
    token = settings.auth_token
    return {"authorization": f"Bearer {token}"} if token else {}


async def _replay(
    settings: Settings, timeline: Timeline, speed: float | None, advance: Callable[[int], None]
) -> ReplaySummary:
    url = settings.replay_url.rstrip("/")
    try:
        client = JsonClient(url, settings.replay_concurrency, _headers(settings), timeout_s=60)
        sender = _events(settings, client)
        replayer = Replayer(client, sender, batch_rows=settings.replay_batch_rows, speed=speed)
        try:
            summary = await replayer.run(timeline, advance)
        finally:
            client.close()
    except HttpError as error:
        raise ReplayError(f"the server at {url} did not answer: {error}") from None
    await sender.settle()
    return summary


def _events(settings: Settings, client: JsonClient) -> EventSender:
    """Straight into the event stream where it is Redis (and ingest can be watched settling);
    through the server's ``POST /events`` where the stream is in the server's memory."""
    if settings.events_url is None:
        return HttpEvents(client, settings.replay_batch_rows)
    return StreamEvents(event_stream(settings, producer=True), settings.replay_batch_rows)


def replay(
    settings: Settings,
    spec: ModelSpec,
    start: datetime,
    end: datetime,
    *,
    speed: float | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> dict[str, Any]:
    """Replay ``[start, end)`` against ``settings.replay_url``; the summary as JSON-ready data.
    Departures are sent ahead by ingest's allowed lateness (``timeline``). ``progress(done,
    total)`` counts events and requests."""
    lead = timedelta(seconds=settings.ingest_allowed_lateness_s)
    timeline = build_timeline(settings, spec, start, end, lead)
    gc.collect()
    gc.freeze()  # the timeline's objects (a million for Sep-Dec) stay: full collections skip them
    total = timeline.events + timeline.requests
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        progress(done, total)

    progress(0, total)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        summary = runner.run(_replay(settings, timeline, speed, advance)).as_dict()
    summary["outcomes_joined"] = _joined(settings, timeline, summary["predictions"])
    return {"from": start, "to": end, **summary}


def _joined(settings: Settings, timeline: Timeline, predictions: int) -> int:
    """Rows of the labelled dataset for the replayed span with an outcome, once the join has
    written one per prediction or ``2 * outcome_flush_s + 1`` seconds have passed (the join
    writes every ``outcome_flush_s``, and ``outcome_idle_s`` after the last outcome); the
    dataset is read where this process can see it."""
    deadline = time.monotonic() + 2 * settings.outcome_flush_s + 1
    while True:
        frame = read_labelled(
            settings.labelled_dir, timeline.start, timeline.end, columns=["status"]
        )
        count = int((frame["status"] != "expired").sum()) if len(frame) else 0
        if count >= predictions or time.monotonic() > deadline:
            return count
        time.sleep(min(settings.outcome_flush_s, settings.outcome_idle_s) / 4)
