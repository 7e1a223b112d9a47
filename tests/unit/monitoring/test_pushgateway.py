"""The Pushgateway client: off when unset, a failure reported and logged, never raised (the real
push and scrape: tests/integration/monitoring)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loopline.monitoring.gauges import JOB, monitor_gauges
from loopline.pushgateway import push
from tests.redis_server import free_port


def test_unset_is_off() -> None:
    assert (
        push(None, JOB, "flight-delay", monitor_gauges("flight-delay", None, datetime.now(UTC)))
        == "off"
    )


def test_a_gateway_that_does_not_answer_is_a_logged_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    registry = monitor_gauges("flight-delay", None, datetime.now(UTC))
    assert push(url, JOB, "flight-delay", registry, timeout_s=2) == "failed"
    assert url in caplog.text
