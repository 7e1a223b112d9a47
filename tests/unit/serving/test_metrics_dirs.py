"""``loopline serve`` removes the metrics directories that servers killed with SIGKILL left."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from loopline.serving.cli import METRICS_PREFIX, remove_stale_metrics_dirs


def test_only_directories_of_dead_servers_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    stale = tmp_path / f"{METRICS_PREFIX}{int(dead.stdout)}-abc"
    live = tmp_path / f"{METRICS_PREFIX}{os.getpid()}-def"
    unnamed = tmp_path / f"{METRICS_PREFIX}xyz"  # no owner in its name: left alone
    other = tmp_path / "something-else-1"
    for directory in (stale, live, unnamed, other):
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"\0" * 16)
    assert remove_stale_metrics_dirs(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live, unnamed, other)
    )


def test_a_reused_pid_does_not_keep_an_older_directory(tmp_path: Path) -> None:
    # This process is alive, but started after the directory was made: not its owner.
    old = tmp_path / f"{METRICS_PREFIX}{os.getpid()}-old"
    old.mkdir()
    os.utime(old, (1_000_000_000, 1_000_000_000))
    assert remove_stale_metrics_dirs(tmp_path) == [old]
