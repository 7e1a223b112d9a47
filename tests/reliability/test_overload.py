"""Overload with the default settings: open loop at 2.5x a capacity measured here, for a few
seconds. Every refusal is a 429 or 503 with ``Retry-After``, answered fast; no 500; admitted
requests are answered within their deadline; the server serves again as soon as it ends.

Requests carry 16 rows, so the admission queue (128 rows) holds 8 of them and the 64
connections of the generator are more than it takes: the worker has to refuse."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from loopline.settings import Settings
from tests.integration.serving.conftest import FRESH, REQUEST, ServingSetup
from tests.integration.serving.server import Server, start_server
from tests.reliability.traffic import batch_body, run_load

pytestmark = pytest.mark.reliability
ROWS = 16
DEFAULTS = Settings()
BOUND_MS = 1000
"""Every answer, 200 or refusal, comes within this on the wire (before this change, 80 % of
requests at 3x were unanswered after 10 s). The wire time includes the wait to be read while
the worker's CPU is busy, which on a shared 2-core machine is most of it; bench/overload.py
measures the targets (refusals within 10 ms, the 200s' p99) on pinned CPUs."""


@pytest.fixture(scope="module")
def server(serving: ServingSetup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("overload"), serving.env())
    yield running
    running.stop()


def test_overload_is_refused_fast_and_the_server_recovers(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    body = batch_body(tmp_path_factory.mktemp("bodies"), ROWS)
    url = f"{server.url}/predict_batch"
    capacity = run_load(url, body, "--duration", "2", "--concurrency", "4")
    assert set(capacity["statuses"]) == {"200"}, capacity
    rate = 2.5 * capacity["statuses"]["200"] / 2
    over = run_load(url, body, "--rate", str(round(rate)), "--duration", "3", "--connections", "64")
    ended = time.monotonic()
    statuses = over["statuses"]
    assert set(statuses) <= {"200", "429", "503"}, over
    refused = statuses.get("429", 0) + statuses.get("503", 0)
    assert refused > 0, f"2.5x capacity was not shed: {over}"
    assert statuses.get("200", 0) > 0, over
    assert over["refused_without_retry_after"] == 0, over
    assert over["refused_max_ms"] <= BOUND_MS, over
    assert over["ok_max_ms"] <= BOUND_MS, over
    assert over["unanswered"] == 0, over

    single = {**REQUEST, "event_timestamp": FRESH}
    with server.client(timeout=5) as http:
        while http.post("/predict", json=single).status_code != 200:
            assert time.monotonic() - ended < 5, "not serving again within 5 s"
            time.sleep(0.05)
    after = run_load(url, body, "--duration", "1", "--concurrency", "4")
    assert set(after["statuses"]) == {"200"}, after


def test_a_request_larger_than_the_queue_is_served_alone(server: Server) -> None:
    rows = [{**REQUEST, "event_timestamp": FRESH}] * (DEFAULTS.max_queued_rows + 10)
    answer = httpx.post(f"{server.url}/predict_batch", json=rows, timeout=30)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()) == len(rows)
