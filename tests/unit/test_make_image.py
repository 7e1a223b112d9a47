"""``make image`` where no Docker engine answers: one line saying so, and a failing exit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

MAKE = shutil.which("make")


@pytest.mark.parametrize("docker", ["absent", "no-daemon"])
def test_make_image_without_docker_is_one_clear_line(tmp_path: Path, docker: str) -> None:
    assert MAKE is not None, "make is required"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if docker == "no-daemon":  # the CLI is installed, but no engine runs
        shim = bin_dir / "docker"
        shim.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
        shim.chmod(0o755)
    result = subprocess.run(
        [MAKE, "--no-print-directory", "image"],
        cwd=REPO_ROOT,
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "no Docker engine answers here" in line
    assert "docs/delivery.md" in line
