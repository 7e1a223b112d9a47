"""Every Prometheus series the predictor exports; the dashboard and alerts use these names.

Collectors are created by ``ServingMetrics.create()`` in the worker at start-up, never at import.
The workers of one server run ``prometheus_client`` in multiprocess mode: ``loopline serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` before they start, each worker writes its values to files there,
and ``exposition()`` (any worker's ``/metrics``) merges them. Whether values go to files is fixed
when ``prometheus_client`` is first imported, so that is what ``create`` checks, not the
variable (importing Feast sets it, for one).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

ENDPOINT, MODEL_VERSION, CODE = "endpoint", "model_version", "code"
FEATURE_VIEW, STATUS, SINK, MODEL, SHA256 = (
    "feature_view",
    "status",
    "sink",
    "model",
    "artifact_sha256",
)

LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 20))


@dataclass(frozen=True)
class ServingMetrics:
    registry: CollectorRegistry | None
    """The registry in single-process mode; None when the multiprocess files are the registry."""
    request_duration: Histogram
    requests: Counter
    feature_lookup_duration: Histogram
    model_inference_duration: Histogram
    batch_size: Histogram
    feature_status: Counter
    prediction_score: Histogram
    log_queue_depth: Gauge
    log_failures: Counter
    log_records: Counter
    model_info: Gauge
    _request_series: dict[tuple[str, str, str | int], tuple[Any, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def create(cls) -> ServingMetrics:
        registry = None
        if _multiprocess():
            _ask_pid_once()
        else:
            registry = CollectorRegistry()
        # Every collector goes to this worker's registry (None: the multiprocess files).
        histogram = functools.partial(Histogram, registry=registry)
        counter = functools.partial(Counter, registry=registry)
        gauge = functools.partial(Gauge, registry=registry)
        return cls(
            registry=registry,
            request_duration=histogram(
                "loopline_request_duration_seconds",
                "Time from request received to response sent, by endpoint.",
                [ENDPOINT, MODEL_VERSION],
                buckets=LATENCY_BUCKETS,
            ),
            requests=counter(
                "loopline_requests",
                "Requests answered, by endpoint and status code (HTTP, or gRPC status name).",
                [ENDPOINT, MODEL_VERSION, CODE],
            ),
            feature_lookup_duration=histogram(
                "loopline_feature_lookup_duration_seconds",
                "Online store read and on-demand features, per batch.",
                buckets=LATENCY_BUCKETS,
            ),
            model_inference_duration=histogram(
                "loopline_model_inference_duration_seconds",
                "Preprocessing and the network, per batch.",
                buckets=LATENCY_BUCKETS,
            ),
            batch_size=histogram(
                "loopline_batch_size",
                "Rows served by one feature lookup and model call.",
                buckets=BATCH_BUCKETS,
            ),
            feature_status=counter(
                "loopline_feature_status",
                "Rows served per feature view and status (fresh, stale, missing, fallback).",
                [FEATURE_VIEW, STATUS],
            ),
            prediction_score=histogram(
                "loopline_prediction_score",
                "Predicted probabilities.",
                [MODEL_VERSION],
                buckets=SCORE_BUCKETS,
            ),
            log_queue_depth=gauge(
                "loopline_prediction_log_queue_depth",
                "Records answered but not yet durable at the sink (fsynced, or in Redis).",
                multiprocess_mode="livesum",
            ),
            log_failures=counter(
                "loopline_prediction_log_failures",
                "Failed writes, fsyncs or stream appends of the prediction log, by sink.",
                [SINK],
            ),
            log_records=counter(
                "loopline_prediction_log_records",
                "Prediction records made durable at the sink.",
                [SINK],
            ),
            model_info=gauge(
                "loopline_model_info",
                "The model being served (value 1).",
                [MODEL, MODEL_VERSION, SHA256],
                multiprocess_mode="max",
            ),
        )

    def expose_endpoints(self, version: str, endpoints: Iterable[str]) -> None:
        """Create each endpoint's latency series now, so dashboards and alerts see them (at
        zero) before the first request."""
        for endpoint in endpoints:
            self.request_duration.labels(endpoint, version)

    def observe_request(self, endpoint: str, version: str, code: str | int, seconds: float) -> None:
        """Time and count one answered request (``code``: HTTP status or gRPC status name).
        The labelled series are looked up once: ``labels()`` takes a lock and builds a key."""
        key = (endpoint, version, code)
        series = self._request_series.get(key)
        if series is None:
            duration = self.request_duration.labels(endpoint, version)
            series = self._request_series[key] = (duration, self.requests.labels(*key))
        series[0].observe(seconds)
        series[1].inc()

    def expose_log_sink(self, sink: str) -> None:
        """Create the log's series for ``sink`` at zero (multiprocess mode exports only touched
        series), so the failure alert sees the sink before its first failure."""
        for series in (self.log_failures, self.log_records):
            series.labels(sink)

    # The prediction log's counters (``loopline.predictions.LogCounters``).
    def log_failed(self, sink: str) -> None:
        self.log_failures.labels(sink).inc()

    def log_durable(self, sink: str, records: int) -> None:
        self.log_records.labels(sink).inc(records)

    def log_pending(self, records: int) -> None:
        self.log_queue_depth.set(records)

    def exposition(self) -> tuple[bytes, str]:
        """The text format body and its content type, across all workers."""
        registry = self.registry
        if registry is None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=_multiprocess_dir())
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def forget_dead_workers(self) -> None:
        """Drop the live-gauge files of workers that exited without cleaning up (SIGKILL)."""
        directory = _multiprocess_dir()
        if not directory:
            return
        pids = {
            int(p.rsplit("_", 1)[1].split(".")[0]) for p in os.listdir(directory) if "live" in p
        }
        for pid in pids - {os.getpid()}:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                multiprocess.mark_process_dead(pid, directory)
            except PermissionError:
                pass

    def close(self) -> None:
        """Called as the worker exits, so its queue depth stops counting."""
        directory = _multiprocess_dir()
        if directory:
            multiprocess.mark_process_dead(os.getpid(), directory)


_VALUE_CLASSES: dict[int, object] = {}


def _ask_pid_once() -> None:
    """Each multiprocess update calls ``os.getpid()`` to notice a fork: a system call per
    update, 8 % of a busy worker's CPU. Workers do not fork once running, so the value class is
    made once per process with the pid it has (one class, so one set of open files)."""
    pid = os.getpid()
    if pid not in _VALUE_CLASSES:
        _VALUE_CLASSES[pid] = values.ValueClass = values.MultiProcessValue(lambda: pid)


def _multiprocess() -> bool:
    """Whether values go to files: ``prometheus_client`` decides once, when first imported."""
    return values.ValueClass is not values.MutexValue


def _multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "") if _multiprocess() else ""
