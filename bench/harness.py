"""Processes and load generators for the benchmarks (``serving.py``, ``bentoml_overhead.py``)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def pinned(cpus: str, *command: str) -> list[str]:
    return ["taskset", "-c", cpus, *command]


def wait_http(url: str, timeout: float, process: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} not ready in {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()


def wrk(cpus: str, url: str, duration: float, script: Path | None) -> float:
    command = ["wrk", "-t1", "-c16", f"-d{duration:.0f}s", url]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run(pinned(cpus, *command), capture_output=True, text=True, check=True)
    line = next(ln for ln in output.stdout.splitlines() if ln.startswith("Requests/sec"))
    if "Non-2xx" in output.stdout:
        raise RuntimeError(f"wrk saw errors:\n{output.stdout}")
    return float(line.split()[1])


def load(cpus: str, *arguments: str) -> dict[str, Any]:
    command = [sys.executable, str(ROOT / "bench" / "load.py"), *arguments]
    output = subprocess.run(pinned(cpus, *command), capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise RuntimeError(f"{arguments}: {result['errors']} errors")
    return result


def post_script(directory: Path, path: str, body: bytes) -> Path:
    script = directory / f"{path.strip('/').replace('/', '_')}.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
    )
    return script


def tensor(name: str, value: object) -> dict[str, Any]:
    datatype = (
        "BYTES" if isinstance(value, str) else "FP64" if isinstance(value, float) else "INT64"
    )
    return {"name": name, "datatype": datatype, "shape": [1], "data": [value]}


def check_demo(*tools: str) -> None:
    """Exit with a message unless the demo has run and ``tools`` are on PATH."""
    for tool in ("redis-server", "taskset", *tools):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is required (apt-get install -y wrk redis-server util-linux)")
    if not (ROOT / "feature_repo" / "data" / "manifest.json").exists():
        sys.exit("run `make demo` first: the benchmark serves the demo's model and features")


def setup_features(work: Path, redis_url: str | None = None) -> dict[str, str]:
    """A copy of the demo's feature repo with its history materialized, into Redis at
    ``redis_url`` or else into the copy's own SQLite, and the champion exported: the
    environment of a ``loopline serve`` that serves them."""
    repo = work / "feature_repo"
    shutil.copytree(ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("*.db*"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env["LOOPLINE_FEATURE_REPO"] = str(repo)
    if redis_url is not None:
        env["LOOPLINE_REDIS_URL"] = redis_url
    for verb in ("apply", "materialize"):
        subprocess.run([str(BIN / "loopline"), "features", verb], env=env, cwd=ROOT, check=True)
    model = work / "model"
    export = [str(BIN / "loopline"), "models", "export", "flight-delay", str(model)]
    subprocess.run(export, cwd=ROOT, check=True)
    return {
        **env,
        "LOOPLINE_MODEL_PATH": str(model),
        "LOOPLINE_HOME": str(work / "home"),
        "LOOPLINE_HOST": "127.0.0.1",
    }


@contextlib.contextmanager
def demo_predictor(work: Path, redis_cpus: str) -> Iterator[dict[str, str]]:
    """A redis-server (pinned to ``redis_cpus``) holding the demo's features, the champion
    exported under ``work``: yields the ``loopline serve`` environment that serves them."""
    redis_port = free_port()
    redis_command = ["redis-server", "--port", str(redis_port), "--save", ""]
    redis_command += ["--appendonly", "no", "--bind", "127.0.0.1", "--dir", str(work)]
    redis = subprocess.Popen(pinned(redis_cpus, *redis_command), stdout=subprocess.DEVNULL)
    try:
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        time.sleep(0.5)
        yield setup_features(work, redis_url)
    finally:
        stop(redis)


def write_results(out: Path, name: str, started: str, payload: object, text: str) -> None:
    """``<out>/<name>-<utc>.json`` (the raw figures) and ``.md`` (the table printed)."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = started[:19].replace(":", "").replace("-", "")
    (out / f"{name}-{stamp}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / f"{name}-{stamp}.md").write_text(text)
