"""The metric names and labels are a contract with the dashboard and the alert rules."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from loopline.predictions import LogCounters
from loopline.serving.metrics import ServingMetrics
from tests.metrics_contract import CONTRACT


def test_every_contracted_series_is_exported_with_its_labels() -> None:
    metrics = ServingMetrics.create()
    metrics.request_duration.labels("predict", "v1").observe(0.001)
    metrics.requests.labels("predict", "v1", "200").inc()
    metrics.feature_lookup_duration.observe(0.0004)
    metrics.model_inference_duration.observe(0.0002)
    metrics.batch_size.observe(3)
    metrics.feature_status.labels("origin_weather", "fresh").inc()
    metrics.prediction_score.labels("v1").observe(0.3)
    metrics.log_pending(2)
    metrics.log_failed("redis")
    metrics.log_durable("file", 1)
    metrics.model_info.labels("flight-delay", "v1", "ab" * 32).set(1)
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name, (kind, labels) in CONTRACT.items():
        assert families[name].type == kind, name
        sample_labels = {key for s in families[name].samples for key in s.labels} - {"le"}
        assert sample_labels == labels, name
    sample_names = {s.name for f in families.values() for s in f.samples}
    assert {"loopline_requests_total", "loopline_prediction_log_records_total"} <= sample_names
    assert "loopline_request_duration_seconds_bucket" in sample_names


def test_the_metrics_are_the_prediction_logs_counters() -> None:
    """Counted from what is there already: in multiprocess mode (which importing Feast can set
    for the whole test process) a process's values persist across ``create()``."""
    metrics = ServingMetrics.create()
    counters: LogCounters = metrics  # the prediction log reports through these

    def values() -> dict[tuple[str, tuple[str, ...]], float]:
        body, _ = metrics.exposition()
        return {
            (s.name, tuple(s.labels.values())): s.value
            for f in text_string_to_metric_families(body.decode())
            for s in f.samples
        }

    metrics.expose_log_sink("redis")
    metrics.expose_log_sink("file")
    before = values()
    counters.log_pending(7)
    counters.log_failed("redis")
    counters.log_durable("file", 3)
    after = values()
    failures = "loopline_prediction_log_failures_total"
    records = "loopline_prediction_log_records_total"
    assert after[failures, ("redis",)] - before[failures, ("redis",)] == 1
    assert after[records, ("file",)] - before[records, ("file",)] == 3
    assert after["loopline_prediction_log_queue_depth", ()] >= 7
