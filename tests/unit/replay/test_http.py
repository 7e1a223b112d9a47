"""The replay's HTTP client held to aiohttp's answers on a real HTTP server (aiohttp's own, on
127.0.0.1): statuses, headers, bodies, keep-alive and ``Connection: close``, and the errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
import uvloop
from aiohttp import web

from loopline.replay.http import Answer, HttpError, JsonClient

BIG = bytes(range(256)) * 4096  # 1 MiB: read across many data_received calls


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    if request.path == "/close":
        return web.Response(body=body, headers={"Connection": "close"})
    if request.path == "/big":
        return web.Response(body=BIG, content_type="application/octet-stream")
    status = int(request.query.get("status", "200"))
    headers = {"Server-Timing": "total;dur=1.5", "X-Seen": request.headers["Authorization"]}
    return web.json_response(
        {"got": body.decode(), "peer": request.remote}, status=status, headers=headers
    )


async def chunked(request: web.Request) -> web.StreamResponse:
    answer = web.StreamResponse()
    answer.enable_chunked_encoding()
    await answer.prepare(request)
    await answer.write(b"{}")
    await answer.write_eof()
    return answer


@asynccontextmanager
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/chunked", chunked)
    app.router.add_post("/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def run(scenario: Callable[[str], Awaitable[None]]) -> None:
    """On uvloop, the loop ``loopline replay`` runs (its transports are not asyncio's)."""

    async def main() -> None:
        async with server() as url:
            await asyncio.wait_for(scenario(url), 30)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


HEADERS = {"authorization": "Bearer t0ken"}


async def theirs(url: str, path: str, body: bytes) -> Answer:
    async with (
        aiohttp.ClientSession(headers=HEADERS) as session,
        session.post(url + path, data=body) as answer,
    ):
        headers = {k.lower(): v for k, v in answer.headers.items()}
        return Answer(answer.status, headers, await answer.read())


def comparable(answer: Answer) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in answer.headers.items() if k not in ("date", "connection")}
    return answer.status, headers, answer.body


@pytest.mark.parametrize("path", ["/events", "/predict_batch?status=422", "/big"])
def test_answers_are_aiohttps(path: str) -> None:
    async def scenario(url: str) -> None:
        client = JsonClient(url, 2, HEADERS, timeout_s=5)
        body = b'[{"flight_id": "20130901-UA1-EWR"}]'
        ours = [await client.post(path, body) for _ in range(3)]  # one kept-alive connection
        reference = await theirs(url, path, body)
        assert {comparable(a) == comparable(reference) for a in ours} == {True}
        assert ours[0].headers["content-length"] == str(len(ours[0].body))
        client.close()

    run(scenario)


def test_connection_close_opens_another_and_concurrency_is_bounded() -> None:
    async def scenario(url: str) -> None:
        client = JsonClient(url, 3, HEADERS, timeout_s=5)
        answers = await asyncio.gather(*(client.post("/close", b"%d" % i) for i in range(10)))
        assert [a.body for a in answers] == [b"%d" % i for i in range(10)]
        assert client._idle == []  # every connection was closed as asked
        await asyncio.gather(*(client.post("/keep", b"x") for _ in range(10)))
        assert 1 <= len(client._idle) <= 3
        client.close()

    run(scenario)


def test_what_cannot_be_read_or_reached_is_a_clear_error() -> None:
    async def scenario(url: str) -> None:
        client = JsonClient(url, 1, HEADERS, timeout_s=5)
        with pytest.raises(HttpError, match="without Content-Length"):
            await client.post("/chunked", b"{}")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
        with pytest.raises(HttpError, match="cannot connect"):
            await JsonClient(closed, 1, {}, timeout_s=5).post("/events", b"[]")
        with pytest.raises(HttpError, match="plain http"):
            JsonClient("https://127.0.0.1:1", 1, {}, timeout_s=5)

    run(scenario)


def test_a_server_that_does_not_answer_times_out() -> None:
    async def scenario(_: str) -> None:
        silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        client = JsonClient(f"http://127.0.0.1:{port}", 1, {}, timeout_s=0.2)
        with pytest.raises(HttpError, match=r"within 0\.2 s"):
            await client.post("/events", b"[]")
        silent.close()

    run(scenario)
