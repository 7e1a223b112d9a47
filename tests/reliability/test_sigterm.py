"""SIGTERM under load: readiness turns 503 at once on every probe (``/v2/health/ready``,
BentoML's ``/readyz``, gRPC ``ServerReady``), requests sent before the drain period ends are
all answered, every answered request is logged, kept-alive connections are told to close, and
the server exits within the drain and grace periods."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from loopline.predictions import read_segments
from tests.integration.serving.conftest import FRESH, REQUEST, ServingSetup
from tests.integration.serving.server import Server, client_call, start_server, wait_until

pytestmark = pytest.mark.reliability
DRAIN_S = 4.0
GRACE_S = 10.0
THREADS = 6


@dataclass
class Sent:
    at: float
    outcome: str
    """The status, or the transport error's name."""
    request_id: str | None = None
    close: bool = False


@dataclass
class Traffic:
    """Threads posting predictions on kept-alive connections until the server is gone."""

    server: Server
    sent: list[Sent] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with self.server.client(timeout=GRACE_S) as http:
            while not self.stop.is_set():
                body = {**REQUEST, "event_timestamp": FRESH, "flight_id": uuid.uuid4().hex}
                at = time.monotonic()
                try:
                    answer = http.post("/predict", json=body)
                except httpx.TransportError as error:
                    self.sent.append(Sent(at, type(error).__name__))
                    time.sleep(0.02)
                    continue
                ok = answer.status_code == 200
                self.sent.append(
                    Sent(
                        at,
                        str(answer.status_code),
                        answer.json()["request_id"] if ok else None,
                        answer.headers.get("connection") == "close",
                    )
                )


def first_change(url: str, deadline: float) -> float:
    """When ``url`` first answered anything but 200 (polling every 20 ms)."""
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1, headers={"connection": "close"}).status_code != 200:
                return time.monotonic()
        except httpx.TransportError:
            return time.monotonic()
        time.sleep(0.02)
    return float("inf")


def test_sigterm_under_load_drains_then_stops(serving: ServingSetup, tmp_path: Path) -> None:
    env = serving.env(
        LOOPLINE_SHUTDOWN_DRAIN_S=str(DRAIN_S), LOOPLINE_SHUTDOWN_GRACE_S=str(GRACE_S)
    )
    server = start_server(tmp_path / "server", env)
    traffic = Traffic(server)
    threads = [threading.Thread(target=traffic.run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(traffic.sent) >= 200, 30, "200 answers")
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        not_ready = first_change(f"{server.url}/v2/health/ready", signalled + 2)
        bento_not_ready = first_change(f"{server.url}/readyz", signalled + 2)
        grpc = client_call("triton", server.grpc, "health")
        status = server.wait(timeout=DRAIN_S + GRACE_S)
        exited = time.monotonic()
    finally:
        traffic.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not_ready - signalled <= 1.0, "/v2/health/ready still 200 a second after SIGTERM"
    assert bento_not_ready - signalled <= 1.0, "/readyz still 200 a second after SIGTERM"
    assert grpc["live"] is True, grpc
    assert grpc["ready"] is False, grpc
    assert status == 0
    assert exited - signalled <= DRAIN_S + GRACE_S

    drain_end = signalled + DRAIN_S
    during = [s for s in traffic.sent if signalled < s.at < drain_end]
    failed = [s for s in traffic.sent if s.at < drain_end and s.outcome != "200"]
    assert during, "nothing was sent during the drain"
    assert not failed, f"{len(failed)} requests sent before the drain ended failed: {failed[:5]}"
    assert all(s.close for s in during if s.at > not_ready), "answers without Connection: close"
    after = {s.outcome for s in traffic.sent if s.at >= drain_end}
    assert not {o for o in after if o.startswith("5")}, after  # answered, or refused at connect
    answered = {s.request_id for s in traffic.sent if s.request_id}
    logged = {record.request_id for record in read_segments(server.log_dir)}
    print(  # the figures for the note: pytest -rP shows them
        f"SIGTERM: /v2/health/ready 503 after {not_ready - signalled:.3f} s, /readyz after "
        f"{bento_not_ready - signalled:.3f} s; exit after {exited - signalled:.2f} s "
        f"(drain {DRAIN_S} s, grace {GRACE_S} s); sent {len(traffic.sent)}, "
        f"{len(during)} during the drain, {len(failed)} failed before its end; "
        f"after it: {sorted(after)}; answered {len(answered)}, not logged {len(answered - logged)}"
    )
    assert answered <= logged
