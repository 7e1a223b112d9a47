"""The standard gRPC services on the serving port, with the stock grpcio-health-checking and
grpcio-reflection clients: ``grpc.health.v1`` follows readiness (warm-up, SIGTERM drain), and
reflection lists what is served; refusals to retry carry ``retry-after`` as HTTP does."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from loopline.serving.grpc_server import CONTENTS, pb
from tests.integration.serving.conftest import FRESH, REQUEST, ServingSetup
from tests.integration.serving.server import Server, start_server, wait_until
from tests.redis_server import free_port, running_redis

pytestmark = pytest.mark.integration
SHARED_PROTO = Path(__file__).parents[3].parent / "shared" / "schemas" / "oip-v2-grpc.proto"
SERVICE = "inference.GRPCInferenceService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DATATYPES = {str: "BYTES", int: "INT64", float: "FP64"}


@pytest.fixture
def channel(server: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.grpc) as opened:
        yield opened


def check(channel: grpc.Channel, service: str = "") -> int:
    """What ``grpc_health_probe -service=<service>`` asks."""
    request = health_pb2.HealthCheckRequest(service=service)
    status: int = health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status
    return status


def test_health_serves_the_server_and_the_inference_service(channel: grpc.Channel) -> None:
    assert check(channel) == SERVING
    assert check(channel, SERVICE) == SERVING
    with pytest.raises(grpc.RpcError) as unknown:
        check(channel, "no.such.Service")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_served_services_and_the_specs_methods(
    channel: grpc.Channel,
) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)
    assert set(database.get_services()) == {
        SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    described = DescriptorPool(database).FindServiceByName(SERVICE)
    specified = re.findall(r"^\s*rpc (\w+)\(", SHARED_PROTO.read_text(), re.MULTILINE)
    assert [method.name for method in described.methods] == specified
    infer = described.methods_by_name["ModelInfer"]
    assert infer.input_type.full_name == "inference.ModelInferRequest"


def infer_request(body: dict[str, Any]) -> Any:
    tensors = []
    for name, value in body.items():
        datatype = DATATYPES[type(value)]
        typed = value.encode() if isinstance(value, str) else value
        contents = pb.InferTensorContents(**{CONTENTS[datatype]: [typed]})
        tensor = pb.ModelInferRequest.InferInputTensor(
            name=name, datatype=datatype, shape=[1], contents=contents
        )
        tensors.append(tensor)
    return pb.ModelInferRequest(model_name="flight-delay", inputs=tensors)


def model_infer(channel: grpc.Channel) -> grpc.RpcError | None:
    """One ``ModelInfer`` of the example request; the error it ended in, if any."""
    call = channel.unary_unary(
        f"/{SERVICE}/ModelInfer",
        request_serializer=pb.ModelInferRequest.SerializeToString,
        response_deserializer=pb.ModelInferResponse.FromString,
    )
    try:
        call(infer_request({**REQUEST, "event_timestamp": FRESH}), timeout=30)
    except grpc.RpcError as error:
        return error
    return None


def retry_after(error: grpc.RpcError | None) -> str | None:
    assert error is not None
    trailing = dict(error.trailing_metadata() or ())
    return trailing.get("retry-after")


class Watcher(threading.Thread):
    """A ``Watch`` stream for the whole server, recording every status it is sent."""

    def __init__(self, channel: grpc.Channel) -> None:
        super().__init__(daemon=True)
        self.statuses: list[int] = []
        self._stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())

    def run(self) -> None:
        try:
            for response in self._stream:
                self.statuses.append(response.status)
        except grpc.RpcError:  # the server went away
            pass

    def changes(self) -> list[int]:
        return [status for status, _ in groupby(self.statuses)]


def test_health_follows_readiness_and_refusals_carry_retry_after(
    serving: ServingSetup, tmp_path: Path
) -> None:
    """Warming up (the store is down): NOT_SERVING, and inference UNAVAILABLE; ready: SERVING,
    and a call over ``max_concurrency`` RESOURCE_EXHAUSTED; SIGTERM: NOT_SERVING at once while
    requests are still served for the drain period."""
    port = free_port()
    env = serving.env(
        LOOPLINE_REDIS_URL=f"redis://127.0.0.1:{port}/0",
        LOOPLINE_MAX_CONCURRENCY="1",
        LOOPLINE_BATCH_WAIT_MS="300",
        LOOPLINE_SHUTDOWN_DRAIN_S="3",
    )
    server = start_server(tmp_path / "server", env, ready=False)
    try:
        with grpc.insecure_channel(server.grpc) as channel, server.client() as http:
            watcher = Watcher(channel)
            watcher.start()
            assert check(channel) == check(channel, SERVICE) == NOT_SERVING
            unavailable = model_infer(channel)
            assert unavailable is not None
            assert unavailable.code() == grpc.StatusCode.UNAVAILABLE
            warming = http.post("/predict", json=REQUEST)
            assert warming.status_code == 503
            assert retry_after(unavailable) == warming.headers["retry-after"]

            with running_redis(tmp_path, port=port):
                wait_until(lambda: check(channel) == SERVING, 30, "SERVING")
                assert check(channel, SERVICE) == SERVING
                with ThreadPoolExecutor(1) as pool:
                    first = pool.submit(model_infer, channel)
                    time.sleep(0.1)  # the first call waits in its batch, holding the one slot
                    refused = model_infer(channel)
                    over = http.post("/predict", json={**REQUEST, "event_timestamp": FRESH})
                    assert first.result() is None
                assert refused is not None
                assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert over.status_code == 429
                assert retry_after(refused) == over.headers["retry-after"]

                server.signal(signal.SIGTERM)
                wait_until(lambda: check(channel) == NOT_SERVING, 2, "NOT_SERVING on SIGTERM")
                assert model_infer(channel) is None  # still served while draining
                assert httpx.get(f"{server.url}/v2/health/ready").status_code == 503
                assert server.wait(30) == 0
            watcher.join(10)
        assert watcher.changes() == [NOT_SERVING, SERVING, NOT_SERVING]
    finally:
        server.stop()
