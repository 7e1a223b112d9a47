"""The prediction log under crashes, shutdowns and a failing sink: every answered request is
logged, accepted requests finish on SIGTERM, and trouble shows in the metrics."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from loopline.predictions import read_segments
from loopline.predictions.writer import SUFFIX
from tests.integration.serving.conftest import FRESH, REQUEST, ServingSetup
from tests.integration.serving.server import Server, client_call, start_server, wait_until
from tests.redis_server import free_port, running_redis

pytestmark = pytest.mark.integration


class Load:
    """Threads posting predictions until stopped; records what each request ended as."""

    def __init__(self, server: Server, threads: int = 4) -> None:
        self.answered: list[str] = []
        self.failures: list[str] = []
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(server,)) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self, server: Server) -> None:
        with server.client() as http:
            while not self._stop.is_set():
                body = {**REQUEST, "event_timestamp": FRESH, "flight_id": uuid.uuid4().hex}
                try:
                    response = http.post("/predict", json=body)
                except httpx.TransportError as error:  # refused or cut: never answered
                    self.failures.append(type(error).__name__)
                    time.sleep(0.01)
                    continue
                self.statuses.append(response.status_code)
                if response.status_code == 200:
                    self.answered.append(response.json()["request_id"])


def logged(directory: Path) -> set[str]:
    return {record.request_id for record in read_segments(directory)}


def metric(server: Server, name: str, labels: dict[str, str]) -> float:
    return server.metrics().get((name, tuple(sorted(labels.items()))), 0.0)


def kill(server: Server) -> None:
    """SIGKILL the arbiter and its workers while requests are in flight."""
    processes = server.processes()
    assert len(processes) == 2
    server.signal(signal.SIGKILL)
    assert not any(p.is_running() for p in processes)


def test_sigkill_loses_no_answered_request(serving: ServingSetup, tmp_path: Path) -> None:
    server = start_server(tmp_path / "first", serving.env())
    with Load(server) as load:
        wait_until(lambda: len(load.answered) >= 200, 60, "200 answers")
        kill(server)
    answered = set(load.answered)
    assert answered <= logged(server.log_dir)

    env = {**serving.env(), "LOOPLINE_PREDICTION_LOG_DIR": str(server.log_dir)}
    restarted = start_server(tmp_path / "second", env)
    try:
        with restarted.client() as http:
            after = http.post("/predict", json={**REQUEST, "event_timestamp": FRESH}).json()
    finally:
        restarted.stop()
    assert answered | {after["request_id"]} <= logged(server.log_dir)
    lines = b"".join(path.read_bytes() for path in server.log_dir.glob(f"*{SUFFIX}")).splitlines()
    assert len(lines) == len(logged(server.log_dir))  # the file sink writes each record once


def test_sigkill_with_the_redis_sink_ships_the_rest_after_restart(
    serving: ServingSetup, tmp_path: Path
) -> None:
    stream = f"predictions-{uuid.uuid4().hex}"
    env = serving.env(LOOPLINE_PREDICTION_LOG_SINK="redis", LOOPLINE_PREDICTION_LOG_STREAM=stream)
    # The stream's Redis is down for the first run: nothing answered reaches it before the kill.
    dead = f"redis://127.0.0.1:{free_port()}/0"
    server = start_server(tmp_path / "first", {**env, "LOOPLINE_PREDICTION_LOG_REDIS_URL": dead})
    with Load(server) as load:
        wait_until(lambda: len(load.answered) >= 200, 60, "200 answers")
        kill(server)
    answered = set(load.answered)
    client = redis.Redis.from_url(str(serving.settings.redis_url))
    assert client.xlen(stream) == 0

    def shipped() -> list[str]:
        entries = client.xrange(stream)
        return [httpx.Response(200, content=e[b"record"]).json()["request_id"] for _, e in entries]

    restarted = start_server(
        tmp_path / "second", {**env, "LOOPLINE_PREDICTION_LOG_DIR": str(server.log_dir)}
    )
    try:
        wait_until(lambda: answered <= set(shipped()), 30, "the stream to hold every answer")
        # The dead worker's segment was shipped whole and deleted, checkpoint and all; what is
        # left is the new worker's own segment.
        wait_until(lambda: len(list(server.log_dir.glob(f"*{SUFFIX}*"))) == 1, 10, "cleanup")
        assert len(shipped()) == len(set(shipped()))
    finally:
        restarted.stop()
        client.close()


def test_sigterm_finishes_accepted_requests_and_logs_them(
    serving: ServingSetup, tmp_path: Path
) -> None:
    # Batches wait 400 ms, so at any moment requests are accepted and not yet answered.
    server = start_server(tmp_path / "server", serving.env(LOOPLINE_BATCH_WAIT_MS="400"))
    inputs = {name: [value] for name, value in {**REQUEST, "event_timestamp": FRESH}.items()}
    with Load(server, threads=8) as load, ThreadPoolExecutor(1) as pool:
        wait_until(lambda: len(load.answered) >= 16, 30, "16 answers")
        grpc_call = pool.submit(client_call, "triton", server.grpc, "infer", inputs=inputs)
        time.sleep(0.3)  # every thread, and the gRPC call, now has a request in flight
        in_flight_at_sigterm = len(load.answered) + 8
        server.signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        answered_over_grpc = grpc_call.result(timeout=30)
    assert set(load.statuses) == {200}, "no accepted request may end in an error"
    assert len(load.answered) >= in_flight_at_sigterm
    assert answered_over_grpc["model_version"] == "v1"
    assert set(load.answered) | set(answered_over_grpc["request_id"]) <= logged(server.log_dir)


def test_a_failing_sink_is_counted_bounds_the_queue_and_recovers(
    serving: ServingSetup, tmp_path: Path
) -> None:
    port = free_port()
    stream = f"predictions-{uuid.uuid4().hex}"
    env = serving.env(
        LOOPLINE_PREDICTION_LOG_SINK="redis",
        LOOPLINE_PREDICTION_LOG_REDIS_URL=f"redis://127.0.0.1:{port}/0",
        LOOPLINE_PREDICTION_LOG_STREAM=stream,
        LOOPLINE_PREDICTION_LOG_MAX_PENDING="5",
    )
    server = start_server(tmp_path / "server", env)
    body = {**REQUEST, "event_timestamp": FRESH}
    try:
        with server.client() as http:
            answered = [http.post("/predict", json=body).json()["request_id"] for _ in range(5)]
            refused = http.post("/predict", json=body)
            assert refused.status_code == 503
            assert "queue is full" in refused.json()["error"]
            assert metric(server, "loopline_prediction_log_queue_depth", {}) == 5
            failures = metric(server, "loopline_prediction_log_failures_total", {"sink": "redis"})
            assert failures > 0
            with running_redis(tmp_path, port=port) as url:
                client = redis.Redis.from_url(url)
                wait_until(lambda: client.xlen(stream) == 5, 30, "the backlog to drain")
                assert metric(server, "loopline_prediction_log_queue_depth", {}) == 0
                assert http.post("/predict", json=body).status_code == 200
                wait_until(lambda: client.xlen(stream) == 6, 10, "the next record")
                records = [e[b"record"] for _, e in client.xrange(stream)]
                assert all(any(i.encode() in r for r in records) for i in answered)
                client.close()
    finally:
        server.stop()
