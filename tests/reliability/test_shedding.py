"""Refusals answered by the HTTP protocol (``serving.shedding``), on raw sockets.

The server's queue holds one row and a batch waits 5 s for more, so while one request is
admitted every other inference request is refused: by the protocol, from its headers, before
any of the app runs. These tests hold the protocol's answers to the app's contract: the same
status, ``Retry-After`` and JSON body, the connection kept alive (its next request is read and
answered), what the protocol must not refuse (an unknown model, a wrong method) still answered
by the app, refusals counted in ``/metrics``; and a malformed request gets JSON too.
"""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.serving.conftest import FRESH, REQUEST, ServingSetup
from tests.integration.serving.server import Server, start_server

pytestmark = pytest.mark.reliability
BODY = json.dumps({**REQUEST, "event_timestamp": FRESH}).encode()


@pytest.fixture(scope="module")
def server(serving: ServingSetup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = serving.env(LOOPLINE_MAX_QUEUED_ROWS="1", LOOPLINE_BATCH_WAIT_MS="5000")
    running = start_server(tmp_path_factory.mktemp("shedding"), settings)
    yield running
    running.stop()


def post(path: str, body: bytes = BODY, extra: bytes = b"") -> bytes:
    head = b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" % path.encode()
    return head + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


def answer(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 answer, framed by its Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = (line.split(": ", 1) for line in lines[1:])
    headers = {name.lower(): value for name, value in fields}
    length = int(headers["content-length"])
    while len(rest) < length:
        rest += connection.recv(65536)
    return int(lines[0].split()[1]), headers, rest[:length]


@pytest.fixture
def queue_full(server: Server) -> Iterator[None]:
    """One request admitted and held by the batch wait while the test runs: of two sent at
    once, one is admitted and held, the other answered 429 at once."""
    pair = [socket.create_connection(("127.0.0.1", server.http_port), timeout=10) for _ in "ab"]
    for connection in pair:
        connection.sendall(post("/predict"))
    answered, _, _ = select.select(pair, [], [], 5)
    assert len(answered) == 1, "expected one request refused at once and one held"
    assert answer(answered[0])[0] == 429
    yield
    (held,) = set(pair) - set(answered)
    assert answer(held)[0] == 200
    for connection in pair:
        connection.close()


def test_refusals_keep_the_contract_and_the_connection(server: Server, queue_full: None) -> None:
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as connection:
        for path in ("/predict", "/predict_batch", "/v2/models/flight-delay/infer"):
            connection.sendall(post(path))
            status, headers, body = answer(connection)
            assert status == 429, (path, body)
            assert headers["retry-after"] == "1"
            assert headers["content-type"] == "application/json"
            assert "date" in headers
            assert "connection" not in headers  # kept alive: the loop goes on on it
            assert "over capacity" in json.loads(body)["error"]


def test_what_the_protocol_must_not_refuse_goes_to_the_app(
    server: Server, queue_full: None
) -> None:
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as connection:
        connection.sendall(post("/v2/models/no-such-model/infer"))
        status, _, body = answer(connection)
        assert status == 404, body
        connection.sendall(b"GET /predict HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, _ = answer(connection)
        assert (status, headers["allow"]) == (405, "POST")
        connection.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        assert answer(connection)[0] == 200


def test_protocol_refusals_are_counted(server: Server, queue_full: None) -> None:
    def refused() -> float:
        return sum(
            value
            for (name, labels), value in server.metrics().items()
            if name == "loopline_requests_total" and ("code", "429") in labels
        )

    before = refused()
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as connection:
        for _ in range(5):
            connection.sendall(post("/predict"))
            assert answer(connection)[0] == 429
    assert refused() - before >= 5


def test_an_admitted_answer_says_its_time_in_the_server(server: Server) -> None:
    reply = httpx.post(f"{server.url}/predict", content=BODY, timeout=20)
    assert reply.status_code == 200, reply.text
    name, _, duration = reply.headers["server-timing"].partition(";dur=")
    assert name == "total"
    assert 4900 <= float(duration) < 15000  # held by the 5 s batch wait


def test_a_malformed_request_gets_a_json_400(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as connection:
        connection.sendall(b"NOT AN HTTP REQUEST\x00\r\n\r\n")
        status, headers, body = answer(connection)
    assert status == 400
    assert headers["connection"] == "close"
    assert json.loads(body)["error"].startswith("malformed HTTP request")
