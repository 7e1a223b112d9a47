"""The README's serving examples, as written but for the ports, against a real server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.integration.serving.server import Server

pytestmark = pytest.mark.integration


def examples(language: str) -> list[str]:
    """The ``language`` code blocks of the README's "Serve" section."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Serve\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)


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
