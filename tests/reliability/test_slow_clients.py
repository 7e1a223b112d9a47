"""Slow clients hold no admission slot: 32 connections that send half a body and stop do not
keep other requests from being served (even with the request limit at 32, as in issue 12),
and get 408 once the body timeout passes; a connection that never finishes its headers is
closed after the header timeout."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.integration.serving.conftest import FRESH, REQUEST, ServingSetup
from tests.integration.serving.server import Server, start_server

pytestmark = pytest.mark.reliability
SLOW = 32
BODY_TIMEOUT_S = 2.0
HEADER_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def server(serving: ServingSetup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = serving.env(
        LOOPLINE_MAX_CONCURRENCY=str(SLOW),
        LOOPLINE_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
        LOOPLINE_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
    )
    running = start_server(tmp_path_factory.mktemp("slow-clients"), env)
    yield running
    running.stop()


def connect(server: Server) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def predict_request() -> tuple[bytes, bytes]:
    """A whole ``/predict`` request's head and body."""
    body = json.dumps({**REQUEST, "event_timestamp": FRESH}).encode()
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head, body


def half_a_body(server: Server) -> socket.socket:
    head, body = predict_request()
    connection = connect(server)
    connection.sendall(head + body[: len(body) // 2])
    return connection


def read_until_closed(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def test_half_sent_bodies_do_not_stop_others_and_get_408(server: Server) -> None:
    started = time.monotonic()
    stalled = [half_a_body(server) for _ in range(SLOW)]
    try:
        with server.client(timeout=5) as http:
            for _ in range(20):
                answer = http.post("/predict", json={**REQUEST, "event_timestamp": FRESH})
                assert answer.status_code == 200, answer.text
        assert time.monotonic() - started < BODY_TIMEOUT_S, "others waited for the slow ones"
        for connection in stalled:
            answer = read_until_closed(connection)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b"connection: close" in answer.lower()
            assert b'"error"' in answer
        waited = time.monotonic() - started
        assert BODY_TIMEOUT_S - 0.5 <= waited <= BODY_TIMEOUT_S + 3, waited
    finally:
        for connection in stalled:
            connection.close()


def assert_cut_after_unfinished_headers(connection: socket.socket) -> None:
    """Half a request's headers, then the server closes the connection after the timeout."""
    started = time.monotonic()
    connection.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
    assert read_until_closed(connection) == b""
    waited = time.monotonic() - started
    assert HEADER_TIMEOUT_S - 0.5 <= waited <= HEADER_TIMEOUT_S + 3, waited


def test_unfinished_headers_are_cut_after_the_header_timeout(server: Server) -> None:
    with connect(server) as connection:
        assert_cut_after_unfinished_headers(connection)


def test_a_kept_alive_connections_unfinished_next_headers_are_cut(server: Server) -> None:
    """The header timer is armed only when a read leaves headers incomplete: after a whole
    request and its answer, a next request that stops mid-headers is still cut."""
    head, body = predict_request()
    with connect(server) as connection:
        connection.sendall(head + body)
        answered = b""
        while b"\r\n\r\n" not in answered or not answered.endswith(b"}"):
            chunk = connection.recv(65536)
            assert chunk, answered
            answered += chunk
        assert answered.startswith(b"HTTP/1.1 200 "), answered[:200]
        assert_cut_after_unfinished_headers(connection)
