"""The README's serving examples, as written but for the ports, against a real server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from loopline.registry import ModelRegistry
from tests.conftest import REPO_ROOT, TrainedSetup
from tests.integration.serving.conftest import ServingSetup
from tests.integration.serving.server import Server, start_server

pytestmark = pytest.mark.integration


def examples(language: str) -> list[str]:
    """The ``language`` code blocks of the README's "Serve" section."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Serve\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)


@pytest.fixture(scope="module")
def demo_server(
    demo: TrainedSetup, serving: ServingSetup, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The demo's champion, served with the same features."""
    root = tmp_path_factory.mktemp("demo-server")
    model = ModelRegistry(demo.settings.registry_dir).export(demo.spec.name, "champion", root / "m")
    running = start_server(root, serving.env(LOOPLINE_MODEL_PATH=str(model)))
    yield running
    running.stop()


def on(server: Server, code: str) -> str:
    """``code`` aimed at ``server``'s ports instead of the defaults, 3000 and 8081."""
    http = server.url.removeprefix("http://")
    return code.replace("localhost:3000", http).replace("localhost:8081", server.grpc)


def run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("route", ["/predict", "/v2/models/flight-delay/infer"])
def test_curl_example(server: Server, route: str) -> None:
    (example,) = [c for c in examples("bash") if c.startswith(f"curl -s localhost:3000{route} ")]
    output = run(["bash", "-c", on(server, example).rstrip() + " -w '\\n%{http_code}'"])
    body, status = output.rsplit("\n", 1)
    assert status == "200", body
    answer: dict[str, Any] = json.loads(body)
    if "outputs" in answer:  # OIP v2
        outputs = {output["name"]: output["data"] for output in answer["outputs"]}
        (probability,) = outputs["probability"]
    else:
        probability = answer["probability"]
    assert 0 < probability < 1


@pytest.mark.timeout(3600)  # the demo fixture trains the full model (about 8 CPU-minutes)
def test_the_answer_shown_is_the_demo_models(demo_server: Server) -> None:
    """The README's JSON answer, but for the random request id, is what the demo's champion
    answers to the example; its probability to the digits shown."""
    (example,) = [c for c in examples("bash") if c.startswith("curl -s localhost:3000/predict ")]
    (shown_text,) = examples("json")
    shown = json.loads(shown_text)
    answer = json.loads(run(["bash", "-c", on(demo_server, example)]))
    digits = len(str(shown["probability"]).split(".")[1])
    assert answer.pop("probability") == pytest.approx(
        shown.pop("probability"), abs=0.5 * 10**-digits
    )
    assert len(answer.pop("request_id")) == 32
    shown.pop("request_id")
    assert answer == shown


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_tritonclient_example(server: Server, protocol: str) -> None:
    """The Python example as written (HTTP), and with ``tritonclient.grpc`` on the gRPC port as
    the README says; in a process of its own (tritonclient.grpc and kserve cannot share one)."""
    (example,) = examples("python")
    if protocol == "grpc":
        swapped = example.replace("tritonclient.http", "tritonclient.grpc")
        example = swapped.replace("localhost:3000", "localhost:8081")
    (probability,) = json.loads(run([sys.executable, "-c", on(server, example)]))
    assert 0 < probability < 1
