"""Run `loopline serve` the way the image does and wait for the OIP ready route.

The contract (see the ServingRuntime): HTTP on --port with /v2/health/live, /v2/health/ready
(ready only after a warm-up inference), /v2/models/{name}/ready and /metrics; gRPC on --grpc-port;
the model from LOOPLINE_MODEL_PATH, an exported version directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from loopline.spec import ModelSpec


def _tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (it was started in its own session), then SIGKILL."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def running(
    command: Sequence[str | Path],
    *,
    env: Mapping[str, str],
    cwd: Path,
    port: int,
    log: Path,
    timeout: float = 300,
) -> Iterator[str]:
    """Start the server, yield its base URL once /v2/health/ready answers 200, stop it after."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(c) for c in command],
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"loopline serve exited {process.returncode}:\n{_tail(log)}")
            with contextlib.suppress(OSError):
                if get(f"{base}/v2/health/ready", timeout=2)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"not ready after {timeout:.0f}s:\n{_tail(log)}")
            time.sleep(0.5)
        yield base
    finally:
        _stop(process)


def serve_env(*, model_dir: Path, feature_repo: Path, home: Path) -> dict[str, str]:
    """The settings the ServingRuntime gives the container, pointed at local paths."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "BENTOML_"))}
    env.update(
        LOOPLINE_MODEL_PATH=str(model_dir),
        LOOPLINE_FEATURE_REPO=str(feature_repo),
        LOOPLINE_HOME=str(home),
        LOOPLINE_HOST="127.0.0.1",  # tests listen on loopback only
        LOOPLINE_TORCH_THREADS="1",
        BENTOML_HOME=str(home / "bentoml"),
        BENTOML_DO_NOT_TRACK="true",
        PROMETHEUS_MULTIPROC_DIR="",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR")
    return env


def infer_once(base: str, spec: ModelSpec, example: Mapping[str, object]) -> int:
    """One OIP v2 JSON inference with the spec's request fields and entity keys; returns the
    status. Used only so per-request metrics have samples; the serving tests check responses."""
    inputs = []
    for name in sorted({spec.request_id, *spec.entity_keys, *spec.request_fields}):
        value = example[name]
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        inputs.append(
            {
                "name": name,
                "shape": [1],
                "datatype": "FP64" if numeric else "BYTES",
                "data": [value if numeric else str(value)],
            }
        )
    request = urllib.request.Request(
        f"{base}/v2/models/{spec.name}/infer",
        data=json.dumps({"inputs": inputs}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
