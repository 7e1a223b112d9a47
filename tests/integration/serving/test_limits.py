"""Authentication, concurrency and body limits, and readiness that waits for the feature store."""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.serving.conftest import FRESH, REQUEST, ServingSetup
from tests.integration.serving.server import Server, client_call, start_server, wait_until
from tests.redis_server import free_port, running_redis

pytestmark = pytest.mark.integration
TOKEN = "s3cret"


@pytest.fixture(scope="module")
def strict(serving: ServingSetup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The registry's champion (not a mounted directory), with every limit switched on; a
    batch waits 300 ms, so two requests are in flight together."""
    env = serving.env(
        LOOPLINE_HOME=str(serving.registry_home),
        LOOPLINE_MODEL_PATH="",
        LOOPLINE_AUTH_TOKEN=TOKEN,
        LOOPLINE_MAX_CONCURRENCY="1",
        LOOPLINE_MAX_BODY_BYTES="4096",
        LOOPLINE_BATCH_WAIT_MS="300",
    )
    env.pop("LOOPLINE_MODEL_PATH")
    running = start_server(tmp_path_factory.mktemp("strict"), env)
    yield running
    running.stop()


def authorized(server: Server) -> httpx.Client:
    return server.client(headers={"authorization": f"Bearer {TOKEN}"})


def test_inference_needs_the_token_health_and_metrics_do_not(strict: Server) -> None:
    body = {**REQUEST, "event_timestamp": FRESH}
    with strict.client() as anonymous:
        assert anonymous.post("/predict", json=body).status_code == 401
        wrong = anonymous.post("/predict", json=body, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json() == {"error": "missing or invalid bearer token"}
        assert anonymous.get("/v2/models/flight-delay").status_code == 401
        assert anonymous.get("/v2/health/ready").status_code == 200
        assert anonymous.get("/v2/models/flight-delay/ready").status_code == 200
        assert anonymous.get("/metrics").status_code == 200
    with authorized(strict) as http:
        answer = http.post("/predict", json=body)
    assert answer.status_code == 200
    assert answer.json()["model_version"] == "v1"
    with strict.client(headers={"authorization": f"bearer {TOKEN}"}) as lower_case:
        assert lower_case.post("/predict", json=body).status_code == 200  # schemes ignore case


def test_grpc_inference_needs_the_token(strict: Server) -> None:
    inputs = {name: [value] for name, value in {**REQUEST, "event_timestamp": FRESH}.items()}
    refused = client_call("triton", strict.grpc, "infer", inputs=inputs)
    assert refused["error"] == "StatusCode.UNAUTHENTICATED"
    accepted = client_call("triton", strict.grpc, "infer", inputs=inputs, token=TOKEN)
    assert accepted["model_version"] == "v1"
    assert client_call("triton", strict.grpc, "health")["ready"] is True


def test_requests_over_the_concurrency_limit_get_429(strict: Server) -> None:
    body = {**REQUEST, "event_timestamp": FRESH}
    with authorized(strict) as http, concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(http.post, "/predict", json=body)
        time.sleep(0.1)  # the first is waiting in the batcher
        second = http.post("/predict", json=body)
        assert first.result().status_code == 200
    assert second.status_code == 429
    assert "over capacity" in second.json()["error"]


def test_bodies_over_the_configured_limit_get_413(strict: Server) -> None:
    body = json.dumps({**REQUEST, "flight_id": "x" * 5000}).encode()
    with authorized(strict) as http:
        response = http.post("/predict", content=body)
    assert response.status_code == 413
    assert response.json()["error"] == f"body of {len(body)} bytes is over the 4096-byte limit"


def test_not_ready_until_the_feature_store_answers(serving: ServingSetup, tmp_path: Path) -> None:
    port = free_port()
    env = serving.env(LOOPLINE_REDIS_URL=f"redis://127.0.0.1:{port}/0")
    server = start_server(tmp_path / "server", env, ready=False)
    try:
        with server.client() as http:
            assert http.get("/v2/health/live").status_code == 200
            assert http.get("/v2/health/ready").status_code == 503
            refused = http.post("/predict", json=REQUEST)
            assert refused.status_code == 503
            assert "not ready" in refused.json()["error"]
            assert client_call("triton", server.grpc, "health")["ready"] is False
            with running_redis(tmp_path, port=port):
                # An empty store is a working one: warm-up succeeds (features "missing").
                wait_until(lambda: http.get("/v2/health/ready").status_code == 200, 30, "ready")
                answer = http.post("/predict", json={**REQUEST, "event_timestamp": FRESH})
                assert answer.status_code == 200
                assert set(answer.json()["feature_status"].values()) == {"missing"}
    finally:
        server.stop()
