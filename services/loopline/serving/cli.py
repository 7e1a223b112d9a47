"""``loopline serve``: the BentoML arbiter with the predictor's workers, HTTP and gRPC."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import psutil
import typer

from loopline.settings import Settings, load_settings

SHM = "/dev/shm"
METRICS_PREFIX = "loopline-metrics-"
WORKER_SCRIPT = "loopline.serving.uvicorn_worker"
"""BentoML's worker with the predictor's uvicorn server (drain on SIGTERM, header timeout)."""


def serve(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option("--port", help="HTTP port (default 3000).")] = None,
    grpc_port: Annotated[
        int | None, typer.Option("--grpc-port", help="OIP gRPC port (default 8081).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default 1).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface (default 0.0.0.0).")] = None,
) -> None:
    """Serve the model: native JSON and OIP v2 REST on --port, OIP v2 gRPC on --grpc-port.

    Everything else is LOOPLINE_* settings (docs/serving.md); options override them.
    """
    overrides = {"http_port": port, "grpc_port": grpc_port, "workers": workers, "host": host}
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"LOOPLINE_{name.upper()}"] = str(value)  # the workers read settings too
    settings = load_settings()
    ctx.find_root().obj = settings
    from loopline.serving.served import preflight

    preflight(settings)
    run_server(settings)


def run_server(settings: Settings) -> None:
    """Start the arbiter and its workers; returns when they have stopped (SIGTERM, SIGINT)."""
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")  # no usage reports from a server
    from _bentoml_impl.server import serve_http, serving
    from bentoml import Service
    from bentoml._internal.configuration.containers import BentoMLContainer

    from loopline.serving.service import Predictor

    # A metrics directory per server (BentoML empties it at start), in memory: the workers
    # update its files through mmap on every request, and on a disk those pages stall the
    # worker whenever writeback (e.g. the prediction log's fsync) flushes them.
    # Named by the arbiter's pid, so the next start can remove those a SIGKILL left behind.
    parent = SHM if os.access(SHM, os.W_OK) else tempfile.gettempdir()
    remove_stale_metrics_dirs(Path(parent))
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(
        prefix=f"{METRICS_PREFIX}{os.getpid()}-", dir=parent
    )
    serving._SERVICE_WORKER_SCRIPT = WORKER_SCRIPT  # read when the arbiter's watcher is built
    BentoMLContainer.prometheus_multiproc_dir.set(metrics_dir)
    service: Service[Any] = Predictor  # the decorator made the class a BentoML Service
    service.config["workers"] = settings.workers
    service.inject_config()
    try:
        serve_http(
            service,
            host=settings.host,
            port=settings.http_port,
            timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)),
        )
    finally:
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def remove_stale_metrics_dirs(parent: Path) -> list[Path]:
    """Remove the metrics directories of servers that died without removing theirs (SIGKILL):
    this user's ``loopline-metrics-<pid>-*`` whose process is gone, or is a newer process that
    reused the pid. Returns what was removed."""
    removed = []
    for path in parent.glob(f"{METRICS_PREFIX}*"):
        match = re.fullmatch(rf"{METRICS_PREFIX}(\d+)-.+", path.name)
        if match is None or not path.is_dir() or path.stat().st_uid != os.getuid():
            continue
        if _alive_since(int(match.group(1)), path.stat().st_mtime):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive_since(pid: int, created: float) -> bool:
    """Whether process ``pid`` exists and started before ``created`` (so could own it)."""
    try:
        started: float = psutil.Process(pid).create_time()
    except psutil.Error:
        return False
    return started <= created + 1
