"""The real server with Redis features: native API, OIP REST (JSON and binary) and gRPC agree,
features are Feast's, TTLs are enforced, errors carry their status and message."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pytest
import tritonclient.http as httpclient

from loopline.features.store import feature_store
from loopline.predictions import PredictionRecord, read_segments
from tests.integration.serving.clients import arrays
from tests.integration.serving.conftest import FRESH, LATER, REQUEST, ServingSetup
from tests.integration.serving.server import Server, client_call

pytestmark = pytest.mark.integration
MODEL = "flight-delay"
VIEWS = ["origin_weather", "plane_attributes", "origin_departure_stats", "carrier_departure_stats"]


def oip_json(request: dict[str, Any]) -> dict[str, Any]:
    inputs = [
        {"name": name, "datatype": datatype, "shape": [1], "data": array.tolist()}
        for name, datatype, array in arrays({k: [v] for k, v in request.items()})
    ]
    return {"id": "req-1", "inputs": inputs}


def records(server: Server) -> dict[str, PredictionRecord]:
    return {r.request_id: r for r in read_segments(server.log_dir)}


def test_health_and_metadata(server: Server) -> None:
    with server.client() as http:
        assert http.get("/v2/health/live").json() == {"live": True}
        assert http.get("/v2/health/ready").json() == {"ready": True}
        assert http.get(f"/v2/models/{MODEL}/ready").status_code == 200
        assert http.get("/v2").json()["extensions"] == ["binary_tensor_data"]
        metadata = http.get(f"/v2/models/{MODEL}").json()
        assert http.get(f"/v2/models/{MODEL}/versions/v1").json() == metadata
    assert metadata["name"] == MODEL
    assert metadata["versions"] == ["v1"]
    inputs = {t["name"]: (t["datatype"], t["shape"]) for t in metadata["inputs"]}
    assert inputs["origin"] == ("BYTES", [-1])
    assert inputs["sched_hour"] == ("INT64", [-1])
    assert inputs["distance"] == ("FP64", [-1])
    assert {"flight_id", "event_timestamp"} <= set(inputs)
    outputs = {t["name"]: t["datatype"] for t in metadata["outputs"]}
    assert outputs == {
        "request_id": "BYTES",
        "probability": "FP64",
        "decision": "BOOL",
        **{f"status_{view}": "BYTES" for view in VIEWS},
    }


def test_native_predict_serves_feasts_features_and_logs_them(
    server: Server, serving: ServingSetup
) -> None:
    with server.client() as http:
        body = {**REQUEST, "flight_id": "f-1", "event_timestamp": FRESH}
        answer = http.post("/predict", json=body).json()
    assert answer["model"] == MODEL
    assert answer["model_version"] == "v1"
    assert 0 < answer["probability"] < 1
    assert answer["decision"] == (answer["probability"] >= answer["threshold"])
    assert answer["feature_status"] == dict.fromkeys(VIEWS, "fresh")
    record = records(server)[answer["request_id"]]
    assert (record.id_field, record.id_value) == ("flight_id", "f-1")
    assert record.probability == answer["probability"]
    assert record.request == {**REQUEST}
    assert record.event_timestamp == datetime.fromisoformat(FRESH)
    store = feature_store(serving.settings)
    online = store.get_online_features(
        features=store.get_feature_service("flight_delay_v1"), entity_rows=[REQUEST]
    ).to_dict()
    for name, value in record.features.items():
        assert value == pytest.approx(online[name][0]), name


def test_expired_and_missing_features_are_flagged_and_served_as_defaults(server: Server) -> None:
    with server.client() as http:
        stale = http.post("/predict", json={**REQUEST, "event_timestamp": LATER}).json()
        unknown = {**REQUEST, "tailnum": "N0NE", "origin": "XXX", "event_timestamp": FRESH}
        missing = http.post("/predict", json=unknown).json()
    assert stale["feature_status"] == {
        "origin_weather": "stale",
        "plane_attributes": "fresh",
        "origin_departure_stats": "stale",
        "carrier_departure_stats": "stale",
    }
    assert missing["feature_status"] == {
        "origin_weather": "missing",
        "plane_attributes": "missing",
        "origin_departure_stats": "missing",
        "carrier_departure_stats": "fresh",
    }
    logged = records(server)
    assert logged[stale["request_id"]].features["temp"] is None
    assert logged[stale["request_id"]].features["seats"] is not None
    assert logged[missing["request_id"]].features["seats"] is None
    assert all(0 < a["probability"] < 1 for a in (stale, missing))


def test_predict_batch_answers_each_item(server: Server) -> None:
    items = [{**REQUEST, "event_timestamp": FRESH}, {**REQUEST, "event_timestamp": LATER}]
    with server.client() as http:
        answers = http.post("/predict_batch", json=items).json()
    assert [a["feature_status"]["origin_weather"] for a in answers] == ["fresh", "stale"]
    assert len({a["request_id"] for a in answers}) == 2


def test_the_same_request_gets_the_same_probability_on_every_path(server: Server) -> None:
    request = {**REQUEST, "event_timestamp": FRESH}
    with server.client() as http:
        native = http.post("/predict", json=request).json()["probability"]
        response = http.post(f"/v2/models/{MODEL}/infer", json=oip_json(request)).json()
    assert response["id"] == "req-1"
    assert response["model_version"] == "v1"
    rest_json = {o["name"]: o["data"] for o in response["outputs"]}["probability"][0]

    triton = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    inputs = []
    for name, datatype, array in arrays({k: [v] for k, v in request.items()}):
        tensor = httpclient.InferInput(name, [1], datatype)
        tensor.set_data_from_numpy(array)  # binary_data=True: the binary extension, both ways
        inputs.append(tensor)
    rest_binary = float(triton.infer(MODEL, inputs).as_numpy("probability")[0])
    triton.close()

    as_lists = {name: [value] for name, value in request.items()}
    via_triton = client_call("triton", server.grpc, "infer", inputs=as_lists)
    via_kserve = client_call("kserve", server.grpc, "infer-grpc", inputs=as_lists)
    assert via_triton["model_version"] == via_kserve["model_version"] == "v1"
    # One row per batch here, so every path runs the same computation: equal to the bit.
    assert native == rest_json == rest_binary == via_triton["probability"][0]
    assert via_kserve["probability"][0] == native
    assert math.isfinite(native)


def test_kserves_rest_client_works_unmodified(server: Server) -> None:
    request = {**REQUEST, "event_timestamp": FRESH}
    inputs = {name: [value] for name, value in request.items()}
    answer = client_call("kserve", server.url, "infer-rest", inputs=inputs)
    with server.client() as http:
        native = http.post("/predict", json=request).json()["probability"]
    # (kserve's REST response parser drops model_version; the JSON path test checks it.)
    assert answer["probability"] == [native]
    assert answer["ready"] is True


def test_grpc_health_and_metadata(server: Server) -> None:
    assert client_call("triton", server.grpc, "health") == {
        "live": True,
        "ready": True,
        "model_ready": True,
    }
    inputs = client_call("triton", server.grpc, "metadata")["inputs"]
    assert ["origin", "BYTES", [-1]] in inputs


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/predict", b"{not json", 400, "body is not valid JSON"),
        (
            "/predict",
            {k: v for k, v in REQUEST.items() if k != "dest"},
            400,
            "field 'dest' is required",
        ),
        ("/predict", {**REQUEST, "distance": "far"}, 400, "field 'distance': expected a number"),
        ("/predict_batch", [REQUEST, {"origin": "EWR"}], 400, "[1] field 'carrier' is required"),
        (f"/v2/models/{MODEL}/infer", {"inputs": "x"}, 400, "expected an object with an 'inputs'"),
        (
            f"/v2/models/{MODEL}/infer",
            {"inputs": [{"name": "origin", "datatype": "INT64", "shape": [1], "data": [1]}]},
            400,
            "input 'origin': datatype INT64, expected BYTES",
        ),
        ("/v2/models/other/infer", oip_json(REQUEST), 404, "model other not found"),
        (f"/v2/models/{MODEL}/versions/v9/infer", oip_json(REQUEST), 404, "version v9 not found"),
        ("/v2/models/other", None, 404, "model other not found"),
        ("/v2/nowhere/at/all", None, 404, "no route"),
    ],
)
def test_errors_have_their_status_and_an_oip_error_body(
    server: Server, path: str, body: object, status: int, message: str
) -> None:
    with server.client() as http:
        if body is None:
            response = http.get(path)
        elif isinstance(body, bytes):
            response = http.post(path, content=body)
        else:
            response = http.post(path, json=body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_grpc_errors_carry_their_codes(server: Server) -> None:
    unknown = client_call("triton", server.grpc, "infer", model="other", inputs={"origin": ["EWR"]})
    assert unknown["error"] == "StatusCode.NOT_FOUND"
    bad = client_call("triton", server.grpc, "infer", inputs={"origin": [1]})
    assert bad["error"] == "StatusCode.INVALID_ARGUMENT"
    assert "expected BYTES" in bad["message"]


def test_bodies_over_the_limit_are_refused_before_parsing(server: Server) -> None:
    oversized = b"x" * ((1 << 20) + 1)
    with server.client() as http:
        declared = http.post("/predict", content=oversized)
        streamed = http.post("/predict", content=iter([oversized[:65536]] * 20))  # chunked
    for response in (declared, streamed):
        assert response.status_code == 413
        assert "limit" in response.json()["error"]


def test_metrics_expose_the_contracted_series(server: Server) -> None:
    with server.client() as http:
        for _ in range(3):
            http.post("/predict", json={**REQUEST, "event_timestamp": FRESH})
    samples = server.metrics()
    names = {name for name, _ in samples}
    assert {
        "loopline_request_duration_seconds_bucket",
        "loopline_feature_lookup_duration_seconds_bucket",
        "loopline_model_inference_duration_seconds_bucket",
        "loopline_batch_size_bucket",
        "loopline_prediction_score_bucket",
        "loopline_prediction_log_queue_depth",
        "loopline_prediction_log_records_total",
    } <= names
    ok = (
        "loopline_requests_total",
        (("code", "200"), ("endpoint", "predict"), ("model_version", "v1")),
    )
    assert samples[ok] >= 3
    fresh = (
        "loopline_feature_status_total",
        (("feature_view", "origin_weather"), ("status", "fresh")),
    )
    assert samples[fresh] >= 3
    info = [v for (name, _), v in samples.items() if name == "loopline_model_info"]
    assert info == [1.0]
