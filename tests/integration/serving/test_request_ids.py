"""A caller's id names its prediction on every protocol: native ``request_id``, the OIP REST and
gRPC ``id``. The answer carries it and the prediction log's record is found under it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from loopline.predictions import PredictionRecord, read_segments
from tests.integration.serving.conftest import FRESH, REQUEST
from tests.integration.serving.server import Server, client_call, wait_until
from tests.integration.serving.test_predictor import oip_json

pytestmark = pytest.mark.integration
BODY = {**REQUEST, "event_timestamp": FRESH}


def logged(server: Server, *ids: str) -> dict[str, PredictionRecord]:
    """The records of ``ids``, once all are in the log (it is written before the answer, and
    read back here from the segment files)."""
    found: dict[str, PredictionRecord] = {}

    def complete() -> bool:
        found.update(
            {r.request_id: r for r in read_segments(server.log_dir) if r.request_id in ids}
        )
        return set(found) == set(ids)

    wait_until(complete, 10, f"records {ids}")
    return found


def test_native_request_ids_are_answered_and_logged(server: Server) -> None:
    one, first, second = (f"order-{uuid.uuid4()}" for _ in range(3))
    with server.client() as http:
        single = http.post("/predict", json={**BODY, "request_id": one, "flight_id": "f-9"})
        batch = http.post(
            "/predict_batch",
            json=[{**BODY, "request_id": first}, BODY, {**BODY, "request_id": second}],
        )
    assert single.json()["request_id"] == one
    ids = [answer["request_id"] for answer in batch.json()]
    assert ids[0] == first
    assert ids[2] == second
    assert len(ids[1]) == 32  # none given: the server's own
    records = logged(server, one, first, second)
    assert records[one].endpoint == "predict"
    assert records[one].id_value == "f-9"
    assert records[one].probability == single.json()["probability"]
    assert records[second].endpoint == "predict_batch"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([{**BODY, "request_id": "a"}, {**BODY, "request_id": "a"}], "[1] field 'request_id'"),
        ({**BODY, "request_id": "x" * 300}, "field 'request_id': 300 characters, at most 256"),
        ({**BODY, "request_id": 12}, "field 'request_id': expected a non-empty string"),
    ],
)
def test_bad_request_ids_are_refused_naming_the_field(
    server: Server, body: Any, message: str
) -> None:
    path = "/predict_batch" if isinstance(body, list) else "/predict"
    with server.client() as http:
        answer = http.post(path, json=body)
    assert answer.status_code == 400
    assert message in answer.json()["error"]


def test_the_oip_rest_id_names_the_predictions(server: Server) -> None:
    one, many = f"rest-{uuid.uuid4()}", f"rest-{uuid.uuid4()}"
    two_rows = oip_json(BODY)
    for tensor in two_rows["inputs"]:
        tensor["shape"], tensor["data"] = [2], tensor["data"] * 2
    with server.client() as http:
        single = http.post("/v2/models/flight-delay/infer", json={**oip_json(BODY), "id": one})
        double = http.post("/v2/models/flight-delay/infer", json={**two_rows, "id": many})
    assert single.json()["id"] == one
    outputs = {o["name"]: o["data"] for o in single.json()["outputs"]}
    assert outputs["request_id"] == [one]
    assert double.json()["id"] == many
    rows = {o["name"]: o["data"] for o in double.json()["outputs"]}["request_id"]
    assert rows == [f"{many}:0", f"{many}:1"]
    records = logged(server, one, *rows)
    assert records[one].endpoint == records[rows[1]].endpoint == "v2_infer"
    assert records[one].probability == outputs["probability"][0]


def test_the_grpc_id_names_the_prediction(server: Server) -> None:
    given = f"grpc-{uuid.uuid4()}"
    inputs = {name: [value] for name, value in BODY.items()}
    answer = client_call("triton", server.grpc, "infer", inputs=inputs, request_id=given)
    assert answer["id"] == given
    assert answer["request_id"] == [given]
    record = logged(server, given)[given]
    assert record.endpoint == "grpc_infer"
    assert record.probability == answer["probability"][0]
    refused = client_call("triton", server.grpc, "infer", inputs=inputs, request_id="a\tb")
    assert refused["error"] == "StatusCode.INVALID_ARGUMENT"
    assert "id: 'a\\tb' has a control character" in refused["message"]
