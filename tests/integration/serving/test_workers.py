"""Two workers: both serve and log, and /metrics, answered by either, counts both."""

from __future__ import annotations

import collections
import concurrent.futures
from pathlib import Path

import httpx
import pytest

from loopline.predictions import read_segments
from loopline.predictions.writer import SUFFIX
from tests.integration.serving.conftest import FRESH, REQUEST, ServingSetup
from tests.integration.serving.server import Server, client_call, start_server, wait_until

pytestmark = pytest.mark.integration
REQUESTS = 120
CLOSE = {"connection": "close"}  # a connection per request: the kernel spreads them over workers


def predict(url: str) -> str:
    body = {**REQUEST, "event_timestamp": FRESH}
    response = httpx.post(f"{url}/predict", json=body, headers=CLOSE)
    response.raise_for_status()
    request_id: str = response.json()["request_id"]
    return request_id


def scrape(server: Server) -> dict[str, float]:
    totals: dict[str, float] = collections.defaultdict(float)
    for (name, labels), value in server.metrics().items():
        if name == "loopline_requests_total" and ("endpoint", "predict") in labels:
            totals["requests"] += value
        elif name in ("loopline_prediction_log_records_total", "loopline_model_info"):
            totals[name] += value
    return totals


def test_metrics_count_requests_from_both_workers(serving: ServingSetup, tmp_path: Path) -> None:
    server = start_server(tmp_path / "server", serving.env(), workers=2)
    try:
        assert len(server.processes()) == 3  # the arbiter and two workers
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answered = list(pool.map(predict, [server.url] * REQUESTS))
        # Segments are named by worker pid: both workers answered some of the requests.
        served_by = collections.Counter(
            path.name.split("-")[1]
            for path in server.log_dir.glob(f"*{SUFFIX}")
            for line in path.read_bytes().splitlines()
        )
        assert len(served_by) == 2, served_by
        assert min(served_by.values()) > 0, served_by
        # Each scrape lands on either worker and reports the sum over both.
        for _ in range(10):
            totals = scrape(server)
            assert totals["requests"] == REQUESTS
            assert totals["loopline_model_info"] == 1
        wait_until(
            lambda: scrape(server)["loopline_prediction_log_records_total"] >= REQUESTS,
            10,
            "every record fsynced",
        )
        inputs = {name: [value] for name, value in {**REQUEST, "event_timestamp": FRESH}.items()}
        assert client_call("triton", server.grpc, "infer", inputs=inputs)["model_version"] == "v1"
    finally:
        server.stop()
    assert set(answered) <= {r.request_id for r in read_segments(server.log_dir)}
