"""The bad-input corpus against a real ``loopline serve`` on 127.0.0.1: schemathesis from the OIP
v2 REST OpenAPI document, and hypothesis cases for every native field, OIP REST bodies and gRPC
messages (a real gRPC client). No answer is a 5xx or gRPC ``UNKNOWN``/``INTERNAL``; every error
is ``{"error": "..."}`` (or a gRPC status) under 1 KiB naming the field; a case with nothing
wrong is answered 200. ``LOOPLINE_FUZZ_CASES`` sets the number of cases (``fuzz``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import requests
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.integration.serving.conftest import ServingSetup
from tests.integration.serving.server import Server, start_server
from tests.reliability import corpus, corpus_grpc, corpus_oip
from tests.reliability.fuzz import TALLY, budget, check_grpc, check_http

pytestmark = pytest.mark.reliability
OPENAPI = Path(__file__).parents[2].parent / "shared" / "schemas" / "oip-v2-rest.openapi.yaml"
SERVICE = "/inference.GRPCInferenceService/"


@pytest.fixture(scope="module")
def server(serving: ServingSetup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("bad-input"), serving.env())
    yield running
    running.stop()
    if report := os.environ.get("LOOPLINE_FUZZ_REPORT"):
        Path(report).write_text(TALLY.summary() + "\n")


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    """One keep-alive session for schemathesis's calls (it would open one per case)."""
    with requests.Session() as opened:
        yield opened


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def channel(server: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.grpc) as opened:
        yield opened


def _schema_cases() -> st.SearchStrategy[Any]:
    """Schemathesis cases for every operation of the OIP REST document, positive and negative,
    with generated path parameters and with the served model's."""
    import schemathesis
    from schemathesis import GenerationMode

    document = yaml.safe_load(OPENAPI.read_text().replace("${", "{"))
    schema = schemathesis.openapi.from_dict(document)
    served = {"MODEL_NAME": corpus.MODEL, "MODEL_VERSION": "v1"}
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    return st.one_of(
        *(schema.as_strategy(generation_mode=mode) for mode in modes),
        *(schema.as_strategy(generation_mode=mode, path_parameters=served) for mode in modes),
    )


@budget("schemathesis")
@given(case=st.deferred(_schema_cases))
def test_the_oip_rest_document_generates_no_server_error(
    server: Server, session: requests.Session, case: Any
) -> None:
    try:
        response = case.call(base_url=server.url, session=session, timeout=30)
    except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError):
        assume(False)  # a case the client library itself cannot send
    check_http("schemathesis", response.status_code, response.content, set())


@budget("native_predict")
@given(case=corpus.native_cases(batch=False))
def test_every_native_field(http: httpx.Client, case: corpus.HttpCase) -> None:
    response = http.post(case.path, content=case.body, headers=case.headers)
    check_http("native_predict", response.status_code, response.content, case.tags, case.valid)


@budget("native_batch")
@given(case=corpus.native_cases(batch=True))
def test_native_batches(http: httpx.Client, case: corpus.HttpCase) -> None:
    response = http.post(case.path, content=case.body, headers=case.headers)
    check_http("native_batch", response.status_code, response.content, case.tags, case.valid)


@budget("oip_rest")
@given(case=corpus_oip.oip_cases())
def test_oip_rest_bodies(http: httpx.Client, case: corpus.HttpCase) -> None:
    response = http.post(case.path, content=case.body, headers=case.headers)
    check_http("oip_rest", response.status_code, response.content, case.tags, case.valid)


@budget("grpc_infer")
@given(case=corpus_grpc.infer_cases())
def test_grpc_infer_messages(channel: grpc.Channel, case: corpus_grpc.GrpcCase) -> None:
    call = channel.unary_unary(SERVICE + "ModelInfer")
    error = None
    try:
        call(case.message.SerializeToString(), timeout=30)
    except grpc.RpcError as raised:
        error = raised
    if not case.tags and error is not None:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error  # only a mutated model name
    check_grpc("grpc_infer", error, case.tags)


@budget("grpc_bytes")
@given(method=st.sampled_from([*corpus_grpc.METHODS, "ModelInfer"]), data=corpus_grpc.any_bytes)
def test_grpc_bytes_that_are_no_message(channel: grpc.Channel, method: str, data: bytes) -> None:
    error = None
    try:
        channel.unary_unary(SERVICE + method)(data, timeout=30)
    except grpc.RpcError as raised:
        error = raised
    named = {"not a valid", "input", "rows", "raw_input_contents", "id", "output"}
    check_grpc("grpc_bytes", error, named)


def test_the_server_survived_and_logged_no_exception(http: httpx.Client, server: Server) -> None:
    """Run last: after the corpus, a valid request is still served and no handler raised."""
    answer = http.post("/predict", json=corpus.VALID)
    assert answer.status_code == 200, answer.text
    assert "Traceback" not in server.log()
