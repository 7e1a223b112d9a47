"""Feast's own web UI starts on the applied repo and serves its page and the project list."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import TrainedSetup
from tests.redis_server import free_port

pytestmark = pytest.mark.integration
FEAST = str(Path(sys.executable).with_name("feast"))
START_S = 120.0
"""Importing Feast and its UI server takes 10-40 s on the reference machine under load."""


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def test_feast_ui_starts_and_serves_its_page(trained: TrainedSetup, tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "feast-ui.log").open("wb")
    command = [FEAST, "ui", "--host", "127.0.0.1", "--port", str(port)]
    ui = subprocess.Popen(command, cwd=trained.settings.feature_repo, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + START_S
        while True:
            assert ui.poll() is None, (tmp_path / "feast-ui.log").read_text()
            try:
                status, page = get(f"http://127.0.0.1:{port}/")
                break
            except OSError:
                assert time.monotonic() < deadline, "feast ui did not answer in time"
                time.sleep(0.5)
        assert status == 200
        assert b"<!doctype html>" in page.lower()
        status, projects = get(f"http://127.0.0.1:{port}/projects-list.json")
        assert status == 200
        assert b'"id":"loopline"' in projects.replace(b" ", b"")
    finally:
        ui.terminate()
        ui.wait(timeout=20)
        log.close()
