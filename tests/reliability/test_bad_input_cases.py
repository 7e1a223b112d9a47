"""Every bad input the hostile test of issue 12 found, as a regression test against a real server:
refused with 4xx (gRPC: its status) naming the field, never 5xx, never after it was logged."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import orjson
import pytest

from loopline.predictions import read_segments
from loopline.serving.grpc_server import pb
from tests.integration.serving.conftest import FRESH, ServingSetup
from tests.integration.serving.server import Server, start_server
from tests.reliability.corpus import MODEL, VALID

pytestmark = pytest.mark.reliability
INFER = f"/v2/models/{MODEL}/infer"


@pytest.fixture(scope="module")
def server(serving: ServingSetup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("bad-input-cases"), serving.env())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def logged(server: Server) -> int:
    return sum(1 for _ in read_segments(server.log_dir))


def tensors(rows: int = 1) -> list[dict[str, Any]]:
    kinds = {str: "BYTES", int: "INT64", float: "FP64"}
    return [
        {"name": n, "datatype": kinds[type(v)], "shape": [rows], "data": [v] * rows}
        for n, v in VALID.items()
    ]


def infer(**change: Any) -> dict[str, Any]:
    return {"inputs": tensors(), **change}


def with_input(name: str, **change: Any) -> dict[str, Any]:
    return infer(inputs=[{**t, **change} if t["name"] == name else t for t in tensors()])


def binary_request(extra: bytes = b"", size_change: int = 0) -> tuple[bytes, dict[str, str]]:
    """``sched_hour`` sent as binary after the JSON header (the binary extension)."""
    inputs = [t for t in tensors() if t["name"] != "sched_hour"]
    raw = struct.pack("<q", VALID["sched_hour"])
    size = len(raw) + size_change
    inputs.append({"name": "sched_hour", "datatype": "INT64", "shape": [1]})
    inputs[-1]["parameters"] = {"binary_data_size": size}
    head = orjson.dumps({"inputs": inputs})
    headers = {"inference-header-content-length": str(len(head))}
    return head + raw + extra, headers


NATIVE = {**VALID}
CASES: list[tuple[str, str, bytes | dict[str, Any] | list[Any], int, str]] = [
    ("parameters not an object", INFER, infer(parameters=[1]), 400, "parameters"),
    ("outputs not iterable", INFER, infer(outputs=5), 400, "outputs"),
    ("unknown output", INFER, infer(outputs=[{"name": "score"}]), 400, "unknown output 'score'"),
    ("duplicated input", INFER, infer(inputs=tensors() * 2), 400, "appears more than once"),
    ("shape [true]", INFER, with_input("sched_hour", shape=[True]), 400, "'sched_hour': shape"),
    ("UINT8 300", INFER, with_input("sched_hour", datatype="UINT8", data=[300]), 400, "UINT8"),
    (
        "50,000 rows",
        INFER,
        infer(inputs=tensors(50_000)[:2]),
        400,
        "50000 rows, at most 1000 per request",
    ),
    ("OIP 900 KB string", INFER, with_input("tailnum", data=["N" * 900_000]), 400, "'tailnum'"),
    (
        "native field nested 1,000 deep",
        "/predict",
        orjson.dumps({k: v for k, v in NATIVE.items() if k != "distance"})[:-1]
        + b',"distance":'
        + b"[" * 1000
        + b"]" * 1000
        + b"}",
        400,
        "field 'distance': expected a number, got an array",
    ),
    (
        "duplicated JSON key",
        "/predict",
        orjson.dumps(NATIVE)[:-1] + b',"sched_hour":1e20}',
        400,
        "key 'sched_hour' appears more than once",
    ),
    ("native 900 KB string", "/predict", {**NATIVE, "dest": "x" * 900_000}, 400, "'dest'"),
    ("integer beyond 64 bits", "/predict", {**NATIVE, "sched_hour": 1e20}, 400, "int64"),
    (
        "time outside years 1-9999",
        "/predict",
        {**NATIVE, "event_timestamp": "9999-12-31T23:59:59-14:00"},
        400,
        "'event_timestamp'",
    ),
    ("900 KB unknown field", "/predict", {**NATIVE, "x" * 900_000: 1}, 400, "unknown field"),
    ("1,001 batch items", "/predict_batch", [NATIVE] * 1001, 400, "at most 1000"),
]


@pytest.mark.parametrize(
    ("name", "path", "body", "status", "message"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_bodies_are_refused_before_anything_is_logged(
    server: Server,
    http: httpx.Client,
    name: str,
    path: str,
    body: bytes | dict[str, Any] | list[Any],
    status: int,
    message: str,
) -> None:
    before = logged(server)
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    response = http.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text[:300]
    assert len(response.content) <= 1024
    assert message in response.json()["error"]
    assert logged(server) == before


@pytest.mark.parametrize(
    ("extra", "size_change", "message"),
    [
        (b"\0\0\0\0", 0, "4 bytes of binary data no input reads"),
        (b"", -16, "binary_data_size -8 does not fit"),
    ],
)
def test_bad_binary_bodies(
    http: httpx.Client, extra: bytes, size_change: int, message: str
) -> None:
    body, headers = binary_request(extra, size_change)
    response = http.post(INFER, content=body, headers=headers)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_content_types(http: httpx.Client) -> None:
    body = orjson.dumps(NATIVE)
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        refused = http.post("/predict", content=body, headers={"content-type": content_type})
        assert refused.status_code == 415
        assert "Content-Type" in refused.json()["error"]
    for content_type in ("application/json; charset=utf-8", "Application/JSON"):
        accepted = http.post("/predict", content=body, headers={"content-type": content_type})
        assert accepted.status_code == 200
    assert http.post("/predict", content=body).status_code == 200  # clients that send none
    binary, headers = binary_request()
    octet = {**headers, "content-type": "application/octet-stream"}
    assert http.post(INFER, content=binary, headers=octet).status_code == 200
    without_header = {"content-type": "application/octet-stream"}
    assert (
        http.post(INFER, content=orjson.dumps(infer()), headers=without_header).status_code == 415
    )


def test_methods_and_paths(http: httpx.Client) -> None:
    for method in ("TRACE", "DELETE", "PUT", "PATCH"):
        response = http.request(method, "/v2/health/ready")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"
        assert "error" in response.json()
    wrong = http.get("/predict")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "POST")
    assert http.head("/v2/health/live").status_code == 200
    encoded = http.post(f"/v2/models/{MODEL}%2finfer", json=infer())
    assert encoded.status_code == 404
    assert "not found" in encoded.json()["error"]
    for path in ("/nope", "/v2models", "/predict/extra"):
        for method in ("GET", "POST"):
            missing = http.request(method, path)
            assert missing.status_code == 404
            assert "no route" in missing.json()["error"]
    long_name = http.get("/v2/models/" + "m" * 8000)
    assert long_name.status_code == 404
    assert len(long_name.content) < 1024


def grpc_call(server: Server, method: str, data: bytes) -> grpc.RpcError | None:
    with grpc.insecure_channel(server.grpc) as channel:
        try:
            channel.unary_unary(f"/inference.GRPCInferenceService/{method}")(data, timeout=30)
        except grpc.RpcError as error:
            return error
    return None


def grpc_infer(**change: Any) -> pb.ModelInferRequest:
    inputs = [
        pb.ModelInferRequest.InferInputTensor(name=t["name"], datatype=t["datatype"], shape=[1])
        for t in tensors()
    ]
    raw = [
        struct.pack("<I", len(str(v).encode())) + str(v).encode()
        if isinstance(v, str)
        else struct.pack("<q" if isinstance(v, int) else "<d", v)
        for v in VALID.values()
    ]
    fields: dict[str, Any] = {"model_name": MODEL, "inputs": inputs, "raw_input_contents": raw}
    return pb.ModelInferRequest(**{**fields, **change})


def test_grpc_refusals(server: Server) -> None:
    assert grpc_call(server, "ModelInfer", grpc_infer().SerializeToString()) is None
    before = logged(server)
    both = grpc_infer()
    both.inputs[0].contents.bytes_contents.append(b"EWR")
    repeated = grpc_infer()
    repeated.inputs.append(repeated.inputs[0])
    repeated.raw_input_contents.append(repeated.raw_input_contents[0])
    unknown_output = pb.ModelInferRequest.InferRequestedOutputTensor(name="score")
    cases = [
        (grpc_infer(raw_input_contents=grpc_infer().raw_input_contents[:3]), "INVALID_ARGUMENT"),
        (both, "INVALID_ARGUMENT"),
        (repeated, "INVALID_ARGUMENT"),
        (grpc_infer(outputs=[unknown_output]), "INVALID_ARGUMENT"),
        (grpc_infer(model_name="m" * 100_000), "NOT_FOUND"),
        (grpc_infer(id="i" * 100_000), "INVALID_ARGUMENT"),
    ]
    for message, code in cases:
        error = grpc_call(server, "ModelInfer", message.SerializeToString())
        assert error is not None
        assert error.code().name == code, error.details()
        assert len(error.details()) < 1024
    for method in ("ModelInfer", "ModelMetadata", "ModelReady"):
        error = grpc_call(server, method, b"\xff\xff\xff")
        assert error is not None
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
        assert "not a valid" in error.details()
    assert logged(server) == before


def test_a_valid_request_still_works_after_all_that(http: httpx.Client) -> None:
    answer = http.post("/predict", json={**NATIVE, "event_timestamp": FRESH})
    assert answer.status_code == 200
