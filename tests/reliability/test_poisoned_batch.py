"""A poisoned request sent together with 40 good ones, so that they share a micro-batch: the 40
are answered 200 and logged, the poisoned one gets its own 400 naming the field and is not
logged. For each poison of issue 12's finding 1, on each protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import orjson
import pytest

from loopline.predictions import read_segments
from loopline.serving.grpc_server import pb
from tests.integration.serving.conftest import ServingSetup
from tests.integration.serving.server import Server, start_server
from tests.reliability.corpus import MODEL, VALID

pytestmark = pytest.mark.reliability
GOOD = 40
BATCH_WAIT_MS = 1000
"""Long enough for all 41 requests to arrive while the first batch waits for rows."""
POISONS = {
    "time outside years 1-9999": ("event_timestamp", "9999-12-31T23:59:59-14:00"),
    "integer beyond 64 bits": ("sched_hour", 1e20),
}


@pytest.fixture(scope="module")
def server(serving: ServingSetup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = serving.env(LOOPLINE_BATCH_WAIT_MS=str(BATCH_WAIT_MS), LOOPLINE_BATCH_MAX_SIZE="64")
    running = start_server(tmp_path_factory.mktemp("poisoned"), env)
    yield running
    running.stop()


def oip_body(request: dict[str, Any]) -> dict[str, Any]:
    kinds = {str: "BYTES", int: "INT64", float: "FP64"}
    inputs = [
        {"name": n, "datatype": kinds[type(v)], "shape": [1], "data": [v]}
        for n, v in request.items()
    ]
    return {"inputs": inputs}


def grpc_poison(request: dict[str, Any], url: str) -> tuple[int, str]:
    """``request`` as one typed ``ModelInferRequest``; the status code name and details."""
    inputs = []
    for name, value in request.items():
        tensor = pb.ModelInferRequest.InferInputTensor(name=name, shape=[1])
        if isinstance(value, str):
            tensor.datatype = "BYTES"
            tensor.contents.bytes_contents.append(value.encode())
        elif isinstance(value, int):
            tensor.datatype = "INT64"
            tensor.contents.int64_contents.append(value)
        else:
            tensor.datatype = "FP64"
            tensor.contents.fp64_contents.append(value)
        inputs.append(tensor)
    message = pb.ModelInferRequest(model_name=MODEL, inputs=inputs)
    with grpc.insecure_channel(url) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        try:
            call(message.SerializeToString(), timeout=30)
        except grpc.RpcError as error:
            return error.code().value[0], error.details() or ""
    return 0, ""


async def send_together(server: Server, protocol: str, poisoned: dict[str, Any], tag: str) -> Any:
    """The 40 good requests (native, ids ``good-<tag>-<i>``) and the poisoned one (over
    ``protocol``) at once; the answers in the order sent, the poisoned one in the middle."""
    limits = httpx.Limits(max_connections=GOOD + 1)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
        good = [
            client.post("/predict", json={**VALID, "flight_id": f"good-{tag}-{i}"})
            for i in range(GOOD)
        ]
        if protocol == "grpc":
            bad: Any = asyncio.to_thread(grpc_poison, poisoned, server.grpc)
        elif protocol == "oip_rest":
            bad = client.post(f"/v2/models/{MODEL}/infer", content=orjson.dumps(oip_body(poisoned)))
        else:
            bad = client.post("/predict", content=orjson.dumps(poisoned))
        return await asyncio.gather(*good[: GOOD // 2], bad, *good[GOOD // 2 :])


def batches(server: Server) -> tuple[float, float]:
    samples = server.metrics()
    return samples["loopline_batch_size_count", ()], samples["loopline_batch_size_sum", ()]


@pytest.mark.parametrize("protocol", ["native", "oip_rest", "grpc"])
@pytest.mark.parametrize("poison", POISONS)
def test_the_poisoned_request_fails_alone(server: Server, poison: str, protocol: str) -> None:
    field, value = POISONS[poison]
    tag = f"{protocol}-{field}"
    poisoned = {**VALID, "flight_id": f"poisoned-{tag}", field: value}
    before = batches(server)
    answers = asyncio.run(send_together(server, protocol, poisoned, tag))
    bad = answers.pop(GOOD // 2)
    assert [a.status_code for a in answers] == [200] * GOOD
    if protocol == "grpc":
        code, details = bad
        assert code == grpc.StatusCode.INVALID_ARGUMENT.value[0], details
    else:
        assert bad.status_code == 400, bad.text
        details = bad.json()["error"]
    assert f"'{field}'" in details
    count, rows = (after - start for after, start in zip(batches(server), before, strict=True))
    assert rows == GOOD  # the poisoned row never reached a batch: refused by validation
    assert count <= 2, f"{GOOD} requests took {count} batches"
    ids = {r.id_value for r in read_segments(server.log_dir)}
    assert {f"good-{tag}-{i}" for i in range(GOOD)} <= ids
    assert poisoned["flight_id"] not in ids


def test_the_batch_wait_is_what_groups_them(server: Server) -> None:
    """By design: with a wait of ``BATCH_WAIT_MS`` a lone request waits for company."""
    with server.client() as http:
        answer = http.post("/predict", json={**VALID, "flight_id": "alone"})
    assert answer.status_code == 200
    assert answer.elapsed.total_seconds() >= BATCH_WAIT_MS / 1000 * 0.9
