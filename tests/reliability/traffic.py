"""Load for the reliability tests: ``bench/load.py`` (open or closed loop) in its own process,
so the generator does not share this interpreter's GIL with the test's own checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.serving.conftest import FRESH, REQUEST

LOAD = Path(__file__).resolve().parents[2] / "bench" / "load.py"


def batch_body(directory: Path, rows: int) -> Path:
    """A ``/predict_batch`` body of ``rows`` copies of the example request."""
    path = directory / f"batch-{rows}.json"
    path.write_text(json.dumps([{**REQUEST, "event_timestamp": FRESH}] * rows))
    return path


def run_load(url: str, body: Path, *arguments: str, timeout: float = 60) -> dict[str, Any]:
    """One run of ``bench/load.py http`` (its JSON summary): statuses, wire latencies of the
    200s and of the refusals, refusals without ``Retry-After``, what was left unanswered."""
    command = [sys.executable, str(LOAD), "http", "--url", url, "--body", str(body)]
    output = subprocess.run(
        [*command, "--warmup", "20", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result
