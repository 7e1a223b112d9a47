"""Nothing on disk runs code unless it is pinned: a pickle planted in the plan cache never runs
(the server compiles the plan anew and serves), and an artifact rewritten with its manifest and
lineage recomputed is refused at start, with one clear error and exit status 1, by the pin
(``LOOPLINE_MODEL_SHA256``) or by the registry's own record. A canary file that the planted
pickles would write proves that no code from them ran. Every server is on 127.0.0.1, every step
bounded in time."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import pickle
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from loopline.features.online import OnlineFeatures
from loopline.features.online_plan import load_plan
from loopline.model.artifact import WEIGHTS, load_model, verify_artifact
from loopline.predictions import read_segments
from loopline.registry import ModelRegistry, load_version_dir
from loopline.registry.export import LINEAGE_FILE
from loopline.settings import Settings
from tests.integration.serving.conftest import FRESH, REQUEST, ServingSetup
from tests.integration.serving.server import LOOPLINE, start_server
from tests.redis_server import free_port
from tests.unit.serving.test_served import rewrite

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(240)]
REFUSED_WITHIN_S = 30.0
"""A refused start exits well within this (the check runs before any worker starts)."""
SERVICE = "flight_delay_v1"


class Canary:
    """Unpickling this writes ``path`` (as dill, pickle or torch.load would)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return exec, (f"open({str(self.path)!r}, 'w').write('code ran')",)


def plant_pickle(cache: Path, canary: Path) -> None:
    """What the issue found ran: a dill payload in the cached plan's ``udf`` field."""
    plan = json.loads(cache.read_text())
    plan["on_demand"][0]["udf"] = base64.b64encode(pickle.dumps(Canary(canary))).decode()
    cache.write_text(json.dumps(plan))


def refused_start(directory: Path, env: dict[str, str]) -> tuple[int, str, float]:
    """Run ``loopline serve`` expecting it to exit: (status, output on one line, seconds)."""
    directory.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "PROMETHEUS_"))}
    clean |= {"LOOPLINE_HOST": "127.0.0.1", "BENTOML_HOME": str(directory / "bentoml")}
    clean |= {"LOOPLINE_PREDICTION_LOG_DIR": str(directory / "log"), **env}
    ports = [f"--port={free_port()}", f"--grpc-port={free_port()}"]
    started = time.monotonic()
    try:
        result = subprocess.run(
            [str(LOOPLINE), "serve", *ports],
            env=clean,
            capture_output=True,
            text=True,
            timeout=REFUSED_WITHIN_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise AssertionError(f"loopline serve still running after {error.timeout} s") from error
    output = " ".join((result.stdout + result.stderr).split())  # the console wraps lines
    return result.returncode, output, time.monotonic() - started


def forged_weights(model_dir: Path) -> bytes:
    """Valid safetensors with every weight doubled: a model that loads and serves, wrongly."""
    tensors = load_tensors((model_dir / WEIGHTS).read_bytes())
    return save_tensors({name: tensor * 2 for name, tensor in tensors.items()})


async def lookup(settings: Settings, row: dict[str, Any]) -> dict[str, list[Any]]:
    """One row's features through the worker's own load path: ``load_plan``, ``OnlineFeatures``."""
    features = OnlineFeatures(load_plan(settings, SERVICE), settings)
    try:
        as_of = datetime.fromisoformat(FRESH).timestamp()
        return (await features.lookup([row], [as_of])).values
    finally:
        features.close()


def test_a_pickle_planted_in_the_plan_cache_never_runs(
    serving: ServingSetup, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    settings = serving.settings.model_copy(update={"home": home})
    load_plan(settings, SERVICE)  # compiles and caches, as `loopline serve` does
    (cache,) = (home / "cache").glob(f"online-plan-{SERVICE}-*.json")
    canary = tmp_path / "canary"

    # The worker's load path in this process: the plan and the readers it builds.
    plant_pickle(cache, canary)
    values = asyncio.run(lookup(settings, {**REQUEST, "sched_hour": 6}))
    assert values["hour_sin"] == [pytest.approx(1.0)]  # sin(2π·6/24): the real transformation
    assert not canary.exists()
    assert "udf" not in json.loads(cache.read_text())["on_demand"][0]  # compiled anew

    # A real `loopline serve` on the planted cache: it serves, the canary never appears.
    plant_pickle(cache, canary)
    server = start_server(tmp_path / "server", serving.env(LOOPLINE_HOME=str(home)))
    try:
        with server.client() as http:
            answer = http.post("/predict", json={**REQUEST, "event_timestamp": FRESH})
        assert answer.status_code == 200, answer.text
    finally:
        server.stop()
    assert not canary.exists()
    assert "ignoring the plan cache" in server.log()
    (record,) = read_segments(server.log_dir)
    assert record.features["log_distance"] == pytest.approx(math.log1p(REQUEST["distance"]))
    assert "udf" not in json.loads(cache.read_text())["on_demand"][0]


def test_a_rewritten_artifact_with_recomputed_hashes_is_refused_by_the_pin(
    serving: ServingSetup, tmp_path: Path
) -> None:
    model_dir = Path(shutil.copytree(serving.model_dir, tmp_path / "mnt-models"))
    registry = ModelRegistry(serving.registry_home / "registry")
    registered = registry.get("flight-delay", "champion").registered_sha256
    assert registered is not None
    assert registered == load_version_dir(model_dir).lineage.artifact_sha256
    forged = rewrite(model_dir, WEIGHTS, forged_weights(model_dir))
    # Every self-check passes: manifest, files, lineage and registry.json agree with each other.
    assert verify_artifact(model_dir, None) == forged != registered
    assert load_version_dir(model_dir).lineage.artifact_sha256 == forged

    status, output, seconds = refused_start(
        tmp_path / "server",
        serving.env(LOOPLINE_MODEL_PATH=str(model_dir), LOOPLINE_MODEL_SHA256=registered),
    )
    assert status == 1, output
    assert "is not the pinned one" in output
    assert f"LOOPLINE_MODEL_SHA256 pins {registered}" in output
    assert "Traceback" not in output
    assert seconds < REFUSED_WITHIN_S


def test_a_pickle_bearing_artifact_is_refused_and_never_unpickled(
    serving: ServingSetup, tmp_path: Path
) -> None:
    """Weights replaced by a pickle (what ``torch.save`` writes), hashes recomputed."""
    model_dir = Path(shutil.copytree(serving.model_dir, tmp_path / "mnt-models"))
    registered = load_version_dir(model_dir).lineage.artifact_sha256
    canary = tmp_path / "canary"
    rewrite(model_dir, WEIGHTS, pickle.dumps(Canary(canary)))

    status, output, seconds = refused_start(
        tmp_path / "server",
        serving.env(LOOPLINE_MODEL_PATH=str(model_dir), LOOPLINE_MODEL_SHA256=registered),
    )
    assert status == 1, output
    assert "is not the pinned one" in output
    assert seconds < REFUSED_WITHIN_S
    # Unpinned, the loader still never unpickles: safetensors cannot hold code.
    with pytest.raises(Exception, match=r"(?i)header|safetensor|deserializ"):
        load_model(model_dir, None)
    assert not canary.exists()


def test_a_rewrite_inside_the_registry_is_refused_by_its_own_record(
    serving: ServingSetup, tmp_path: Path
) -> None:
    """Serving from the registry (no model path, no pin): the files, the manifest and
    lineage.json of the champion rewritten in the BentoML store; model.yaml still holds the
    sha256 recorded at registration."""
    home = tmp_path / "home"
    shutil.copytree(serving.registry_home / "registry", home / "registry")
    version = ModelRegistry(home / "registry").get("flight-delay", "champion")
    rewrite(version.path, WEIGHTS, forged_weights(version.path))
    assert json.loads((version.path / LINEAGE_FILE).read_text())["artifact_sha256"] == (
        verify_artifact(version.path, None)
    )

    env = serving.env(LOOPLINE_HOME=str(home))
    del env["LOOPLINE_MODEL_PATH"]
    status, output, seconds = refused_start(tmp_path / "server", env)
    assert status == 1, output
    assert f"the registry's record of flight-delay:{version.version}" in output
    assert seconds < REFUSED_WITHIN_S
