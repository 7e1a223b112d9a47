"""The real server's ``/openapi.json``: valid OpenAPI 3.1, every route the port answers and no
other, the OIP routes as the protocol's own document has them, and schemas that the server's real
answers (and refusals) agree with; ``/docs`` shows it with nothing loaded from outside."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from loopline.serving.routes import ROUTES
from tests.integration.serving.conftest import FRESH, REQUEST
from tests.integration.serving.server import Server

pytestmark = pytest.mark.integration
SHARED = Path(__file__).parents[3].parent / "shared" / "schemas" / "oip-v2-rest.openapi.yaml"
FILLED = {"MODEL_NAME": "flight-delay", "MODEL_VERSION": "v1", "file": "swagger-ui.css"}
IGNORED = {"title", "description", "summary", "operationId", "tags", "x-examples"}
NEVER_ANSWERED = {("/v2/", "get", "400")}
"""Statuses the OIP document lists that this server never sends (server metadata reads no
input, so it cannot be a bad request)."""


@pytest.fixture(scope="module")
def document(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    described: dict[str, Any] = response.json()
    return described


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: FILLED[m.group(1)], path)


def validator(document: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator for component ``name``, its references resolved within the document."""
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


def test_the_document_is_openapi_3_1_and_covers_every_route(
    server: Server, document: dict[str, Any]
) -> None:
    validate(document, cls=OpenAPIV31SpecValidator)
    assert document["openapi"].startswith("3.1.")
    served = {(route.path, route.method.lower()) for route in ROUTES}
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert served <= documented
    with server.client() as http:
        for path, method in sorted(documented):
            answer = http.request(method.upper(), concrete(path), json=REQUEST)
            assert answer.status_code not in (404, 405), (path, answer.text[:200])
            if (path, method) in served:  # the predictor's own, not BentoML's
                wrong = "GET" if method == "post" else "DELETE"
                assert http.request(wrong, concrete(path)).status_code == 405
        for undocumented in ("/v3", "/predict/", "/v2/models", "/v2/models/flight-delay/x"):
            assert http.get(undocumented).status_code == 404, undocumented


def test_the_oip_routes_are_the_protocols(document: dict[str, Any]) -> None:
    """Every path of the protocol's document is here (its ``${NAME}`` is ``{NAME}``), each with
    its parameters, bodies and answers, and every schema keyword the protocol's has (this one
    adds bounds: this model's input names, the datatypes it decodes, the id's length)."""
    shared = yaml.safe_load(SHARED.read_text())
    ours = document["paths"]
    for shared_path, item in shared["paths"].items():
        path = shared_path.replace("${", "{")
        assert path in ours, path
        for method, operation in item.items():
            if method == "parameters":
                assert ours[path]["parameters"] == operation
                continue
            for status in [
                s for s in operation["responses"] if (path, method, s) in NEVER_ANSWERED
            ]:
                del operation["responses"][status]
            conforms(operation, ours[path][method], shared, document, f"{method} {path}", set())
    our_oip = {path for path in ours if path.startswith("/v2")}
    versioned = {path.replace("${", "{") for path in shared["paths"]}
    unversioned = {p.replace("/versions/{MODEL_VERSION}", "") for p in versioned}
    assert our_oip <= versioned | unversioned | {"/v2"}
    for name in shared["components"]["schemas"]:
        conforms(
            shared["components"]["schemas"][name],
            document["components"]["schemas"][name],
            shared,
            document,
            name,
            set(),
        )


def conforms(
    theirs: Any, ours: Any, their_doc: Any, our_doc: Any, where: str, seen: set[tuple[str, str]]
) -> None:
    """``ours`` has every keyword ``theirs`` has, with the same value, references resolved."""
    if isinstance(theirs, dict) and "$ref" in theirs:
        key = (theirs["$ref"], str(ours))
        if key in seen:  # a recursive schema (tensor_data)
            return
        seen.add(key)
        theirs = resolve(their_doc, theirs)
    if isinstance(ours, dict) and "$ref" in ours:
        ours = resolve(our_doc, ours)
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), where
        for key, value in theirs.items():
            if key not in IGNORED:
                assert key in ours, f"{where}: no {key!r}"
                conforms(value, ours[key], their_doc, our_doc, f"{where}.{key}", seen)
    elif isinstance(theirs, list):
        assert isinstance(ours, list), where
        for n, (a, b) in enumerate(zip(theirs, ours, strict=True)):
            conforms(a, b, their_doc, our_doc, f"{where}[{n}]", seen)
    else:
        assert theirs == ours, f"{where}: {theirs!r} != {ours!r}"


def resolve(document: Any, reference: dict[str, Any]) -> Any:
    node = document
    for part in reference["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    return resolve(document, node) if isinstance(node, dict) and "$ref" in node else node


def test_real_answers_match_the_schemas(server: Server, document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    (native,) = schemas["predict_request"]["examples"]
    (batch,) = schemas["predict_batch_request"]["examples"]
    (infer,) = schemas["inference_request"]["examples"]
    for name, example in [
        ("predict_request", native),
        ("predict_batch_request", batch),
        ("inference_request", infer),
    ]:
        validator(document, name).validate(example)
    with server.client() as http:
        answers = {
            "predict_response": http.post("/predict", json=native),
            "predict_batch_response": http.post("/predict_batch", json=batch),
            "inference_response": http.post("/v2/models/flight-delay/infer", json=infer),
            "metadata_model_response": http.get("/v2/models/flight-delay"),
            "metadata_server_response": http.get("/v2"),
        }
        refused = http.post("/predict", json={**REQUEST, "sched_hour": "five"})
    for name, answer in answers.items():
        assert answer.status_code == 200, (name, answer.text)
        validator(document, name).validate(answer.json())
    assert refused.status_code == 400
    validator(document, "error_response").validate(refused.json())


@pytest.mark.parametrize(
    "change",
    [
        {"sched_hour": "five"},
        {"sched_hour": 2**63},
        {"origin": "x" * 257},
        {"colour": "red"},
        {"request_id": ""},
        {"request_id": "a\nb"},
        {"request_id": "x" * 257},
    ],
)
def test_what_the_schema_refuses_the_server_refuses(
    server: Server, document: dict[str, Any], change: dict[str, Any]
) -> None:
    body = {**REQUEST, "event_timestamp": FRESH, **change}
    assert not validator(document, "predict_request").is_valid(body)
    with server.client() as http:
        assert http.post("/predict", json=body).status_code == 400


def test_the_docs_page_loads_only_local_assets(server: Server) -> None:
    with server.client() as http:
        page = http.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "://" not in page.text  # nothing from outside: no CDN
        assets = re.findall(r'(?:src|href|url:)\s*=?\s*"([^"]+)"', page.text)
        assert "./openapi.json" in assets
        assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
        for asset in assets:
            assert http.get(str(httpx.URL(f"{server.url}/docs").join(asset))).status_code == 200
