"""The inference routes a Bento's schema lists: their JSON Schemas accept what the server
accepts and refuse what it refuses (checked with ``jsonschema`` against the server's own
validation), and they are in the form BentoML's client reads."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from loopline.errors import BadRequest
from loopline.serving.bento_schema import inference_routes
from loopline.serving.schema import InputSchema, parse_objects
from loopline.spec import load_spec

REQUEST: dict[str, Any] = {
    **load_spec("flight-delay").example_request,
    "sched_hour": 5,
    "weekday": 1,
    "flight_id": "2013-08-31-UA1545",
    "event_timestamp": "2013-08-31T23:50:00Z",
}


@pytest.fixture(scope="module")
def routes(schema: InputSchema) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in inference_routes("flight-delay", schema, ["origin_weather"])}


def test_the_routes_are_bentomls_route_entries(routes: dict[str, dict[str, Any]]) -> None:
    assert [(name, r["route"]) for name, r in routes.items()] == [
        ("predict", "/predict"),
        ("predict_batch", "/predict_batch"),
        ("v2_infer", "/v2/models/flight-delay/infer"),
    ]
    for route in routes.values():
        assert {"name", "route", "input", "output", "is_task"} <= set(route)
        jsonschema.Draft202012Validator.check_schema(route["input"])
        jsonschema.Draft202012Validator.check_schema(route["output"])
    assert routes["predict_batch"]["input"]["root_input"] is True  # the client sends the array


@pytest.mark.parametrize(
    "change",
    [{}, {"flight_id": 17}, {"sched_hour": "5"}, {"extra": 1}, {"origin": None}],
    ids=["valid", "integer-id", "string-hour", "unknown-field", "missing-origin"],
)
def test_the_request_schema_agrees_with_the_server(
    schema: InputSchema, routes: dict[str, dict[str, Any]], change: dict[str, Any]
) -> None:
    request = {k: v for k, v in {**REQUEST, **change}.items() if v is not None}
    try:
        parse_objects(schema, [request])
        accepted = True
    except BadRequest:
        accepted = False
    valid = jsonschema.Draft202012Validator(routes["predict"]["input"]).is_valid(request)
    batch = jsonschema.Draft202012Validator(routes["predict_batch"]["input"])
    assert valid == accepted == batch.is_valid([request])


def test_an_oip_request_and_answer_fit_their_schemas(routes: dict[str, dict[str, Any]]) -> None:
    datatypes = {str: "BYTES", int: "INT64", float: "FP64"}
    inputs = [
        {"name": k, "datatype": datatypes[type(v)], "shape": [1], "data": [v]}
        for k, v in REQUEST.items()
    ]
    jsonschema.validate({"inputs": inputs}, routes["v2_infer"]["input"])
    answer = {
        "model_name": "flight-delay",
        "model_version": "v1",
        "outputs": [
            {"name": "probability", "datatype": "FP64", "shape": [1], "data": [0.12]},
            {"name": "status_origin_weather", "datatype": "BYTES", "shape": [1], "data": ["fresh"]},
        ],
    }
    jsonschema.validate(answer, routes["v2_infer"]["output"])
    wrong = {**answer, "outputs": [{**answer["outputs"][0], "name": "status_nowhere"}]}
    assert not jsonschema.Draft202012Validator(routes["v2_infer"]["output"]).is_valid(wrong)
