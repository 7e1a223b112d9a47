"""A background thread's loop that survives its dependency failing: retry with a doubling pause.

Used by the ingest stages and the outcome join, whose steps read and write Redis, SQLite and
parquet: a step that raises (Redis down, a disk full) is reported and tried again after a pause
that doubles from 0.1 s up to ``MAX_PAUSE_S``, so a dependency that is down costs a few calls a
second rather than a busy loop, and the thread picks up by itself once it is back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

MAX_PAUSE_S = 5.0
FIRST_PAUSE_S = 0.1


def retry_until_stopped(
    stop: threading.Event,
    step: Callable[[], object],
    failed: Callable[[bool], None],
    before: Callable[[], None] | None = None,
    max_pause_s: float = MAX_PAUSE_S,
) -> None:
    """Run ``before`` (a wait for work, say) then ``step``, until ``stop`` is set.

    A step that raises is reported to ``failed`` from inside the ``except`` block (so it may
    ``logger.exception``), with whether it is the first failure in a row, the one worth a log
    line; the next attempt waits the doubling pause, or less if ``stop`` is set meanwhile. A step
    that returns resets the pause.
    """
    pause = 0.0
    while not stop.is_set():
        if before is not None:
            before()
            if stop.is_set():
                return
        try:
            step()
        except Exception:
            failed(pause == 0.0)
            pause = min(max_pause_s, max(FIRST_PAUSE_S, pause * 2))
            stop.wait(pause)
        else:
            pause = 0.0
