"""Gauges of a batch job (the monitor's and the rollout's CronJobs) pushed to a Prometheus
Pushgateway, which Prometheus scrapes (with ``honor_labels``) after the job's pod is gone.

A push replaces the group ``job`` + ``model`` (``PUT``): each run's gauges stand until the next
run of that job for that model. Off when ``LOOPLINE_PUSHGATEWAY_URL`` is unset. A push that fails
is logged and reported (``PushOutcome``), never raised: monitoring the monitor must not stop it.
"""

from __future__ import annotations

import logging
from typing import Literal

from prometheus_client import CollectorRegistry, push_to_gateway

logger = logging.getLogger(__name__)
PushOutcome = Literal["pushed", "failed", "off"]


def push(
    url: str | None, job: str, model: str, registry: CollectorRegistry, timeout_s: float = 5.0
) -> PushOutcome:
    """Push ``registry``'s metrics to the Pushgateway at ``url`` under ``job`` and ``model``."""
    if not url:
        return "off"
    try:
        push_to_gateway(
            url, job=job, registry=registry, grouping_key={"model": model}, timeout=timeout_s
        )
    except OSError as error:  # urllib's URLError and HTTPError are OSErrors
        logger.warning("pushing %s gauges for %s to %s failed: %s", job, model, url, error)
        return "failed"
    return "pushed"
