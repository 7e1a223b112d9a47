"""The ingest process's metrics, on its own registry (``/metrics`` on ``ingest_metrics_port``).

=============================================  ============================================
``loopline_ingest_events_total``               events by ``event_type`` and ``result``:
                                               applied, duplicate, late, dead_letter
``loopline_ingest_dead_letters_total``         malformed input entries, by the ``field`` at
                                               fault (its top-level name)
``loopline_ingest_backlog_entries``            entries not yet done, per ``stream``
``loopline_ingest_lag_seconds``                head of the stream to the last entry
                                               delivered, per ``stream``
``loopline_ingest_batch_size``                 entries per batch, per ``stage``
``loopline_ingest_freshness_seconds``          XADD time to the online-store write that
                                               carries the event, per feature ``view``
``loopline_ingest_outcomes_total``             outcome events handed to the outcome sink
``loopline_ingest_failures_total``             batches retried, per ``stage`` (stream or store
                                               down)
=============================================  ============================================
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from loopline.events.record import FIELDS

FRESHNESS_BUCKETS = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5),
    *(1, 2.5, 5, 10, 30, 60, 300, 900),
)
"""Fine up to 250 ms, the freshness target at 2,000 events/s (docs/events.md, Measured)."""
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000)


def field_label(field: str) -> str:
    """A bounded label for the field an event was refused for (never a name the input chose)."""
    top = field.split(".", 1)[0]
    if top == "event":
        return "event"
    return top if top in FIELDS else "unknown_field"


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events = Counter(
            "loopline_ingest_events",
            "Events by type and result.",
            ["event_type", "result"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "loopline_ingest_dead_letters",
            "Malformed input entries, by field.",
            ["field"],
            registry=registry,
        )
        self.backlog = Gauge(
            "loopline_ingest_backlog_entries",
            "Entries not yet done.",
            ["stream"],
            registry=registry,
        )
        self.lag = Gauge(
            "loopline_ingest_lag_seconds",
            "Stream head to the last entry delivered.",
            ["stream"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "loopline_ingest_batch_size",
            "Entries per batch.",
            ["stage"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.freshness = Histogram(
            "loopline_ingest_freshness_seconds",
            "XADD time to the online-store write.",
            ["view"],
            buckets=FRESHNESS_BUCKETS,
            registry=registry,
        )
        self.outcomes = Counter(
            "loopline_ingest_outcomes",
            "Outcome events handed to the outcome sink.",
            registry=registry,
        )
        self.failures = Counter(
            "loopline_ingest_failures",
            "Batches retried (stream or store down).",
            ["stage"],
            registry=registry,
        )
