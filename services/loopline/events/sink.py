"""The hand-off of outcome events from ``loopline ingest`` to the outcome join.

Ingest calls ``handle`` with each batch's outcome events once they are deduplicated by
``event_id`` within the shard's dedup horizon, and before the batch is committed: a consumer
killed between the two hands the same outcomes again when it restarts (at-least-once), so a
sink keeps its own effect idempotent by ``event_id``. ``loopline.outcomes.build_outcome_sink``
builds the join.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from loopline.events.record import Event


class OutcomeSink(Protocol):
    def handle(self, outcomes: Sequence[Event]) -> None: ...

    def close(self) -> None:
        """At shutdown, after the last ``handle``: write what is buffered."""
