"""Outcomes joined to the prediction log, and the live performance they measure.

The ingest process hands outcome events to the ``OutcomeJoin`` that ``build_outcome_sink``
returns; it reads the prediction log (either sink), writes the labelled prediction dataset that
the monitor and retraining read (``read_labelled``), and exports live metrics per model version
on the ingest process's ``/metrics`` (docs/outcomes.md).

sources  the prediction log, read incrementally (segment files or the Redis Stream)
join     predictions matched to outcomes by request id; expiry; buffering
dataset  the labelled dataset: parquet partitioned by day
live     ROC AUC, log loss, calibration, precision and recall over sliding windows
"""

from __future__ import annotations

import socket
from datetime import timedelta

from prometheus_client import CollectorRegistry

from loopline.outcomes.dataset import EXPIRED, Joined, LabelledDataset, read_labelled
from loopline.outcomes.join import JoinMetrics, OutcomeJoin
from loopline.outcomes.live import LivePerformance
from loopline.outcomes.sources import PredictionSource, SegmentTail, StreamTail
from loopline.predictions import PredictionStream
from loopline.settings import Settings
from loopline.spec import ModelSpec, load_spec

__all__ = [
    "EXPIRED",
    "Joined",
    "LabelledDataset",
    "LivePerformance",
    "OutcomeJoin",
    "build_outcome_sink",
    "prediction_source",
    "read_labelled",
]


def prediction_source(settings: Settings) -> PredictionSource:
    """The log as the serving settings write it: segment files, or the Redis Stream."""
    url = settings.prediction_log_url
    if url is None:
        return SegmentTail(settings.log_dir)
    stream = PredictionStream.from_url(url, settings.prediction_log_stream)
    return StreamTail(stream, settings.outcome_group, socket.gethostname())


def build_outcome_sink(
    settings: Settings, registry: CollectorRegistry, spec: ModelSpec | None = None
) -> OutcomeJoin:
    """The join for ``settings.model_name``'s spec (or ``spec``), started, its gauges
    registered on ``registry``. ``close()`` it on shutdown to write what is buffered."""
    spec = spec or load_spec(settings.model_name)
    live = LivePerformance(
        [timedelta(hours=h) for h in settings.outcome_windows_hours], spec.decision_threshold
    )
    registry.register(live)
    join = OutcomeJoin(
        spec,
        prediction_source(settings),
        LabelledDataset(settings.labelled_dir, spec.label.name),
        live,
        JoinMetrics(registry),
        max_delay=timedelta(hours=settings.outcome_max_delay_hours),
        flush_rows=settings.outcome_flush_rows,
        flush_s=settings.outcome_flush_s,
        idle_s=settings.outcome_idle_s,
    )
    return join.start()
