"""A live window on real parts: the replay's live loop (``tests/integration/replay``: a real
server on the trained fixture's champion, ingest and the outcome join on a real redis-server)
replays 30 hours of the live period, then ``loopline monitor`` runs as a user runs it, pushing
to a real Pushgateway that a real Prometheus scrapes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopline.replay import replay
from tests.conftest import TrainedSetup, fast_spec_file
from tests.integration.replay.conftest import LiveSetup, live  # noqa: F401 (a fixture)
from tests.integration.serving.server import wait_until
from tests.redis_server import free_port

LOOPLINE = str(Path(sys.executable).with_name("loopline"))
START = datetime(2013, 9, 1, tzinfo=UTC)
END = datetime(2013, 9, 2, 6, tzinfo=UTC)


@dataclass(frozen=True)
class Monitored:
    home: Path
    reports: Path
    output: dict[str, Any]
    """What ``loopline monitor --json`` printed."""
    prometheus_url: str


def _started(command: list[str], url: str, directory: Path) -> subprocess.Popen[bytes]:
    log = (directory / f"{Path(command[0]).name}.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=directory)

    def ready() -> bool:
        assert process.poll() is None, (directory / f"{Path(command[0]).name}.log").read_text()
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 30, command[0])
    return process


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real Pushgateway and a real Prometheus scraping it every second: (push, query) URLs."""
    root = tmp_path_factory.mktemp("prometheus")
    gateway_port, prometheus_port = free_port(), free_port()
    gateway = _started(
        ["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{gateway_port}"],
        f"http://127.0.0.1:{gateway_port}/-/ready",
        root,
    )
    config = root / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: pushgateway\n"
        "    honor_labels: true\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{gateway_port}']}}]\n"
    )
    server = _started(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        f"http://127.0.0.1:{prometheus_port}/-/ready",
        root,
    )
    try:
        yield f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{prometheus_port}"
    finally:
        for process in (server, gateway):
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def monitored(
    live: LiveSetup,  # noqa: F811
    trained: TrainedSetup,
    prometheus: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Monitored:
    replay(live.settings, live.spec, START, END, speed=None)
    live.join.flush()
    root = tmp_path_factory.mktemp("monitor")
    home = root / "home"
    shutil.copytree(trained.settings.registry_dir, home / "registry")
    env = {
        **os.environ,
        "LOOPLINE_HOME": str(home),
        "LOOPLINE_PREDICTION_LOG_DIR": str(live.settings.log_dir),
        "LOOPLINE_OUTCOME_DATASET_DIR": str(live.settings.labelled_dir),
        "LOOPLINE_REPORTS_DIR": str(root / "reports"),
        "LOOPLINE_PUSHGATEWAY_URL": prometheus[0],
    }
    spec = fast_spec_file(root)
    result = subprocess.run(
        [LOOPLINE, "monitor", "--model", str(spec), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return Monitored(home, root / "reports", json.loads(result.stdout), prometheus[1])
