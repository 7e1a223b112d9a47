"""A real ``loopline serve`` in a subprocess, on free loopback ports, and clients for it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from tests.redis_server import free_port

LOOPLINE = Path(sys.executable).parent / "loopline"
START_TIMEOUT_S = 90.0


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    log_dir: Path
    output: Path
    env: dict[str, str] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def client(self, **options: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, **{"timeout": 30, **options})

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """One scrape of ``/metrics`` on a new connection (with several workers, any of them
        answers for all): each sample's value by name and sorted labels."""
        text = httpx.get(f"{self.url}/metrics", headers={"connection": "close"}).text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def processes(self) -> list[psutil.Process]:
        """The arbiter and its workers (each worker runs in a session of its own)."""
        try:
            arbiter = psutil.Process(self.process.pid)
            return [arbiter, *arbiter.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def signal(self, sig: int) -> None:
        """SIGTERM to the arbiter, which drains its workers; SIGKILL to every process, and then
        the metrics directory the arbiter would have removed is removed here."""
        processes = self.processes()
        if sig != signal.SIGKILL:
            processes[0].send_signal(sig)
            return
        metrics_dirs = set()
        for process in processes:
            with contextlib.suppress(psutil.Error):
                metrics_dirs.add(process.environ().get("PROMETHEUS_MULTIPROC_DIR"))
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(processes, timeout=10)
        for directory in metrics_dirs - {None}:
            shutil.rmtree(str(directory), ignore_errors=True)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            raise

    def stop(self) -> None:
        """SIGTERM and wait; anything still running after that is killed."""
        workers = self.processes()[1:]
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            self.wait()
        for worker in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.kill()

    def log(self) -> str:
        return self.output.read_text(errors="replace")


def start_server(
    directory: Path, settings: Mapping[str, str], *, ready: bool = True, workers: int = 1
) -> Server:
    """Start ``loopline serve`` with ``LOOPLINE_*`` ``settings``; wait for live (and ready)."""
    directory.mkdir(parents=True, exist_ok=True)
    http_port, grpc_port = free_port(), free_port()
    log_dir = directory / "prediction-log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "PROMETHEUS_"))}
    env.update(
        LOOPLINE_HOST="127.0.0.1",
        LOOPLINE_PREDICTION_LOG_DIR=str(log_dir),
        LOOPLINE_SHUTDOWN_GRACE_S="10",
        LOOPLINE_SHUTDOWN_DRAIN_S="0",  # tests that drain on SIGTERM set their own
        BENTOML_HOME=str(directory / "bentoml"),
        BENTOML_DO_NOT_TRACK="true",
    )
    env.update(settings)
    output = directory / f"server-{http_port}.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [
                str(LOOPLINE),
                "serve",
                f"--port={http_port}",
                f"--grpc-port={grpc_port}",
                f"--workers={workers}",
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, http_port, grpc_port, log_dir, output, env)
    path = "/v2/health/ready" if ready else "/v2/health/live"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"loopline serve exited {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.url + path, timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"loopline serve not {path} in {START_TIMEOUT_S} s:\n{server.log()}")
        time.sleep(0.1)


def client_call(library: str, address: str, call: str, **arguments: Any) -> dict[str, Any]:
    """Run ``clients.py`` in its own process: tritonclient.grpc and kserve register the
    same protobuf names, so they cannot share one interpreter (or this test session)."""
    script = Path(__file__).with_name("clients.py")
    result = subprocess.run(
        [sys.executable, str(script), library, address, call, json.dumps(arguments)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"{library} {call} failed:\n{result.stderr}")
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
