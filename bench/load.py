"""Load generators for the serving benchmark: HTTP/1.1 and OIP gRPC, open or closed loop.

Open loop (``--rate``): requests are due at fixed intervals whatever the server does; a request
that finds every connection busy waits for one, and that wait counts in its latency, so a
stalled server is charged for every request it delayed (no coordinated omission). Closed loop
(``--concurrency``): that many requests always in flight; this measures maximum throughput.

Prints one JSON object: requests, errors (anything but 200, and connections cut), achieved
rate, latency percentiles (ms), and how far the generator itself fell behind its schedule
(``lag_p99_ms``: if that is large, the numbers measure the generator, not the server). HTTP also
reports the count per status, the 200s' and the refusals' (429, 503) latency on the wire (from
the request's write to its answer: ``ok_*``, ``refused_*``), the 200s' time inside the server
from its ``Server-Timing`` header (from the request's headers read to its answer: ``server_ok_*``;
what waited unread in the kernel is not in it), refusals without ``Retry-After``, and
the requests still unanswered ``--timeout`` seconds after the run (``unanswered``).

    python bench/load.py http --url http://127.0.0.1:3000/predict --body body.json --rate 500
    python bench/load.py grpc --target 127.0.0.1:8081 --body oip.json --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
    uvloop = None


REFUSED = (429, 503)


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection; responses are framed by Content-Length. ``request`` returns
    the status, whether the answer had ``Retry-After``, and its ``Server-Timing`` total in
    seconds (None without one)."""

    def __init__(self) -> None:
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport instances
        self.buffer = b""
        self.waiter: asyncio.Future[tuple[int, bool, float | None]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = self.buffer[:end].lower()
        start = head.find(b"content-length:") + len(b"content-length:")
        length = int(head[start : head.find(b"\r\n", start) if b"\r\n" in head[start:] else None])
        if len(self.buffer) >= end + 4 + length:
            status = int(self.buffer[9:12])
            self.buffer = self.buffer[end + 4 + length :]
            waiter, self.waiter = self.waiter, None
            self.closed = self.closed or b"\r\nconnection: close" in head
            timing = head.find(b"\r\nserver-timing: total;dur=")
            server = None
            if timing >= 0:
                line_end = head.find(b"\r\n", timing + 2)
                server = float(head[timing + 27 : line_end if line_end >= 0 else None]) / 1000
            waiter.set_result((status, b"\r\nretry-after:" in head, server))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionError("closed"))

    async def request(self, payload: bytes) -> tuple[int, bool, float | None]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return await self.waiter


def http_payload(url: str, body: bytes | None) -> tuple[str, int, bytes]:
    """The request's bytes: a POST of ``body``, or a GET when there is none."""
    parts = urlsplit(url)
    address = parts.hostname or "127.0.0.1", parts.port or 80
    if body is None:
        return *address, f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return *address, head.encode() + body


class Outcomes:
    """What each HTTP request ended as: its status (0: the connection was cut) and its
    latency on the wire."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.statuses: collections.Counter[int] = collections.Counter()
        self.wire: dict[str, list[float]] = {"ok": [], "refused": [], "server_ok": []}
        self.no_retry_after = 0

    def add(self, status: int, retry_after: bool, seconds: float, server: float | None) -> None:
        self.statuses[status] += 1
        if status == 200:
            self.wire["ok"].append(seconds)
            if server is not None:
                self.wire["server_ok"].append(server)
        elif status in REFUSED:
            self.wire["refused"].append(seconds)
            self.no_retry_after += not retry_after

    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "refused_without_retry_after": self.no_retry_after,
        }
        for name, values in self.wire.items():
            ms = np.array(values or [0.0]) * 1000
            for q in (50, 99):
                result[f"{name}_p{q}_ms"] = round(float(np.percentile(ms, q)), 3)
            result[f"{name}_max_ms"] = round(float(ms.max()), 3)
        return result


async def http_caller(
    args: argparse.Namespace, body: bytes | None, count: int, outcomes: Outcomes
) -> Any:
    host, port, payload = http_payload(args.url, body)
    loop = asyncio.get_running_loop()

    async def connect() -> HttpConnection:
        _, connection = await loop.create_connection(HttpConnection, host, port)
        return connection

    idle = collections.deque([await connect() for _ in range(count)])
    available = asyncio.Condition()

    async def call() -> bool:
        async with available:
            await available.wait_for(lambda: bool(idle))
            connection = idle.popleft()
        started = time.perf_counter()
        status, retry_after, server = 0, False, None  # 0: refused at connect, or cut
        try:
            if connection.closed:  # the server closed it (Connection: close, a timeout)
                connection = await connect()
            status, retry_after, server = await connection.request(payload)
        except OSError:
            connection.closed = True
        finally:
            async with available:
                idle.append(connection)
                available.notify()
        outcomes.add(status, retry_after, time.perf_counter() - started, server)
        return status == 200

    return call


async def grpc_caller(
    args: argparse.Namespace, body: bytes | None, count: int, outcomes: Outcomes
) -> Any:
    import grpc

    from loopline.serving.grpc_server import CONTENTS, pb

    assert body is not None, "gRPC needs --body"
    document = json.loads(body)
    request = pb.ModelInferRequest(model_name=document.get("model_name", "flight-delay"))
    for tensor in document["inputs"]:
        field = CONTENTS[tensor["datatype"]]
        data = [v.encode() if field == "bytes_contents" else v for v in tensor["data"]]
        request.inputs.add(
            name=tensor["name"],
            datatype=tensor["datatype"],
            shape=tensor["shape"],
            contents=pb.InferTensorContents(**{field: data}),
        )
    channels = [grpc.aio.insecure_channel(args.target) for _ in range(args.channels)]
    stubs = [
        channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        for channel in channels
    ]
    for stub in stubs:
        await stub(request)  # connect before timing
    turn = iter(range(1 << 62))

    async def call() -> bool:
        try:
            await stubs[next(turn) % len(stubs)](request)
            return True
        except grpc.aio.AioRpcError:
            return False

    return call


async def run(args: argparse.Namespace) -> dict[str, Any]:
    body = Path(args.body).read_bytes() if args.body else None
    connections = args.concurrency or args.connections
    make = http_caller if args.protocol == "http" else grpc_caller
    outcomes = Outcomes()
    call = await make(args, body, connections, outcomes)
    for _ in range(args.warmup):
        await call()
    outcomes.reset()
    latencies: list[float] = []
    lags: list[float] = []
    errors = 0

    async def one(due: float) -> None:
        # Timed from when the generator got round to the request, which is late only by its
        # own scheduling (reported as lag); waiting for a free connection, which happens when
        # the server is slow, is included.
        nonlocal errors
        started = time.perf_counter()
        lags.append(started - due)
        ok = await call()
        latencies.append(time.perf_counter() - started)
        errors += not ok

    started = time.perf_counter()
    deadline = started + args.duration
    tasks: set[asyncio.Future[None]] = set()
    if args.concurrency:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await one(time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    else:
        interval, sent = 1.0 / args.rate, 0
        while (now := time.perf_counter()) < deadline:
            while started + sent * interval <= now:
                task = asyncio.ensure_future(one(started + sent * interval))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(max(0.0, started + sent * interval - time.perf_counter()))
        if tasks:
            await asyncio.wait(tasks, timeout=args.timeout)
    elapsed = time.perf_counter() - started
    ms = np.array(latencies or [0.0]) * 1000
    return {
        **(outcomes.summary() if args.protocol == "http" else {}),
        "unanswered": len(tasks),
        "requests": len(latencies),
        "errors": errors,
        "rate": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
        "lag_p99_ms": round(float(np.percentile(np.array(lags) * 1000, 99)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("protocol", choices=["http", "grpc"])
    parser.add_argument("--url", help="HTTP: the full URL to POST to")
    parser.add_argument("--target", help="gRPC: host:port")
    parser.add_argument("--body", help="JSON body to POST (an OIP request for gRPC); none: GET")
    parser.add_argument("--rate", type=float, help="open loop: requests per second")
    parser.add_argument("--concurrency", type=int, help="closed loop: requests in flight")
    parser.add_argument("--connections", type=int, default=64, help="open loop: connection pool")
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=30.0, help="open loop: wait at the end")
    args = parser.parse_args()
    if (args.rate is None) == (args.concurrency is None):
        parser.error("give exactly one of --rate and --concurrency")
    if uvloop is not None:
        uvloop.install()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
