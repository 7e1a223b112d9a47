"""The Bento as a BentoML user meets it: in a checkout holding ``make demo``'s state, ``bentoml
build`` packages the champion as a BentoML model (and leaves ``.venv`` as it was), and
``bentoml serve loopline:latest`` serves it, answering ``/predict``, OIP and BentoML's own
client, with the registry gone: the model comes from the Bento. Every wait is bounded."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import httpx
import pytest

from loopline.registry import ModelRegistry
from loopline.spec import load_spec
from tests.conftest import REPO_ROOT, TrainedSetup
from tests.integration.serving.conftest import FRESH, REQUEST
from tests.integration.serving.server import Server
from tests.redis_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 180.0
INFERENCE_ROUTES = {"predict", "predict_batch", "v2_infer"}


@dataclass(frozen=True)
class Project:
    root: Path
    """A checkout after ``make demo``: sources, bentofile, feature repo with data, ``.loopline``."""
    env: dict[str, str]
    """No ``LOOPLINE_*`` variable; a ``BENTOML_HOME`` of its own."""
    champion: str

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / args[0]), *args[1:]],
            cwd=cwd or self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )


def venv_state() -> str:
    """What an install changes: ``pip freeze`` and the names in site-packages."""
    freeze = subprocess.run(
        [str(BIN / "pip"), "freeze", "--all"], capture_output=True, text=True, timeout=120
    ).stdout
    listing = sorted(os.listdir(sysconfig.get_paths()["purelib"]))
    return hashlib.sha256((freeze + "\n".join(listing)).encode()).hexdigest()


@pytest.fixture(scope="module")
def project(trained: TrainedSetup, tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("checkout")
    for name in ("bentofile.yaml", "requirements.lock"):
        shutil.copy(REPO_ROOT / name, root / name)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(
        REPO_ROOT / "services" / "loopline", root / "services" / "loopline", ignore=ignore
    )
    shutil.copytree(trained.settings.feature_repo, root / "feature_repo", ignore=ignore)
    shutil.copytree(trained.settings.home, root / ".loopline")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOOPLINE_", "BENTOML_", "PROMETHEUS_"))
    }
    env.update(BENTOML_HOME=str(root / "bentoml-home"), BENTOML_DO_NOT_TRACK="true")
    champion = ModelRegistry(trained.settings.registry_dir).get(trained.spec.name).version
    return Project(root, env, champion)


@dataclass(frozen=True)
class Built:
    info: dict[str, Any]
    """``bentoml get loopline:latest -o json``."""
    path: Path
    venv_before: str
    venv_after: str


@pytest.fixture(scope="module")
def built(project: Project) -> Built:
    before = venv_state()
    result = project.run("bentoml", "build")
    assert result.returncode == 0, result.stdout + result.stderr
    after = venv_state()
    shown = project.run("bentoml", "get", "loopline:latest", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    path = project.root / "bentoml-home" / "bentos" / "loopline" / info["version"]
    return Built(info, path, before, after)


def test_build_packages_the_champion_as_a_bentoml_model(project: Project, built: Built) -> None:
    tag = f"flight-delay:{project.champion}"
    listed = project.run("bentoml", "models", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert [model["tag"] for model in json.loads(listed.stdout)] == [tag]
    (service,) = built.info["services"]
    assert [model["tag"] for model in service["models"]] == [tag]
    packaged = project.root / "bentoml-home" / "models" / "flight-delay" / project.champion
    assert (packaged / "lineage.json").is_file()
    assert (built.path / "src" / "feature_repo" / "feature_views.py").is_file()
    assert not (built.path / "src" / "feature_repo" / "data").exists()


def test_build_leaves_the_virtualenv_as_it_was(built: Built) -> None:
    assert built.venv_after == built.venv_before


def test_the_schema_lists_the_inference_routes(built: Built) -> None:
    schema = json.loads((built.path / "apis" / "schema.json").read_text())
    routes = {route["name"]: route for route in schema["routes"]}
    assert set(routes) == INFERENCE_ROUTES
    assert routes["v2_infer"]["route"] == "/v2/models/flight-delay/infer"
    spec = load_spec("flight-delay")
    assert set(routes["predict"]["input"]["required"]) == {*spec.entity_keys, *spec.request_fields}
    assert built.info["schema"]["routes"] == schema["routes"]


def serve_bento(project: Project, **settings: str) -> Server:
    """``bentoml serve loopline:latest`` in the checkout, ready. Only the gRPC port and the
    interface are set (and ``settings``), so that parallel servers do not collide."""
    http_port, grpc_port = free_port(), free_port()
    env = {
        **project.env,
        "LOOPLINE_GRPC_PORT": str(grpc_port),
        "LOOPLINE_HOST": "127.0.0.1",
        **settings,
    }
    output = project.root / f"serve-{http_port}.log"
    command = ["serve", "loopline:latest", "--host", "127.0.0.1", "--port", str(http_port)]
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(BIN / "bentoml"), *command],
            cwd=project.root,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    log_dir = project.root / ".loopline" / "prediction-log"
    server = Server(process, http_port, grpc_port, log_dir, output, env)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while not _ready(server):
            assert process.poll() is None, f"bentoml serve exited:\n{server.log()}"
            assert time.monotonic() < deadline, f"not ready in {START_TIMEOUT_S} s:\n{server.log()}"
            time.sleep(0.5)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def served(project: Project, built: Built) -> Iterator[Server]:
    """The Bento served in the checkout, its registry removed first."""
    shutil.rmtree(project.root / ".loopline" / "registry")
    server = serve_bento(project)
    yield server
    server.stop()


def _ready(server: Server) -> bool:
    try:
        return httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_answers_predict_and_oip_with_the_champion(project: Project, served: Server) -> None:
    request = {**REQUEST, "event_timestamp": FRESH}
    with served.client() as client:
        native = client.post("/predict", json=request)
        assert native.status_code == 200, native.text
        answer = native.json()
        assert (answer["model"], answer["model_version"]) == ("flight-delay", project.champion)
        assert set(answer["feature_status"].values()) == {"fresh"}
        assert 0 < answer["probability"] < 1
        datatypes = {str: "BYTES", int: "INT64", float: "FP64"}
        inputs = [
            {"name": k, "datatype": datatypes[type(v)], "shape": [1], "data": [v]}
            for k, v in request.items()
        ]
        oip = client.post("/v2/models/flight-delay/infer", json={"inputs": inputs})
        assert oip.status_code == 200, oip.text
        body = oip.json()
    assert body["model_version"] == project.champion
    outputs = {output["name"]: output["data"] for output in body["outputs"]}
    assert outputs["probability"] == [answer["probability"]]
    assert list(served.log_dir.glob("*")), "the log is written where the server was started"


def test_under_kserve_the_mounted_model_is_served(
    project: Project, built: Built, trained: TrainedSetup, tmp_path: Path
) -> None:
    """``LOOPLINE_MODEL_PATH`` (KServe's ``/mnt/models``) wins over the packaged model: the
    champion registered again as the next version, exported, is the one that answers."""
    trained_registry = ModelRegistry(trained.settings.registry_dir)
    champion = trained_registry.get(trained.spec.name)
    plain = trained_registry.export(champion.name, champion.version, tmp_path / "plain")
    registry = ModelRegistry(tmp_path / "registry")
    registry.register(champion.name, plain, champion.lineage)
    again = registry.register(champion.name, plain, champion.lineage)
    mounted = registry.export(champion.name, again.version, tmp_path / "mnt-models")
    server = serve_bento(project, LOOPLINE_MODEL_PATH=str(mounted))
    try:
        with server.client() as client:
            answer = client.post("/predict", json={**REQUEST, "event_timestamp": FRESH})
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == again.version != project.champion


def test_bentoml_client_calls_the_schema_routes(served: Server) -> None:
    request = {**REQUEST, "event_timestamp": FRESH}
    with bentoml.SyncHTTPClient(served.url, timeout=30, server_ready_timeout=0) as client:
        one = client.predict(**request)
        batch = client.predict_batch([request, request])
    assert isinstance(one, dict)
    assert [item["probability"] for item in batch] == [one["probability"]] * 2


def test_serve_without_the_demo_state_exits_with_the_reason(
    project: Project, built: Built, tmp_path: Path
) -> None:
    """No feature repo where it is started: one error and an exit, not workers restarted for
    ever."""
    env = {**project.env, "LOOPLINE_GRPC_PORT": str(free_port())}
    port = str(free_port())
    result = subprocess.run(
        [str(BIN / "bentoml"), "serve", "loopline:latest", "--host", "127.0.0.1", "--port", port],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert f"cannot read {tmp_path / 'feature_repo' / 'feature_store.yaml'}" in output
    assert "Traceback" not in output
