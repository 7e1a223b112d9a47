"""The soak (``make soak``, not in CI): 10 minutes at 50 % of capacity, one worker, defaults.

    .venv/bin/python bench/soak.py [--minutes 10]    # after `make demo`; needs redis-server

Capacity is measured first (closed loop, 64 in flight, as in bench/overload.py); then the load
generator (``bench/loadgen`` when built, else ``bench/load.py``: ``--generator``) runs open
loop at half of it in 30 s windows, and after each window the worker's RSS is sampled. Passes
when the RSS of the last window is within 10 % of the first's (after a first window of warm-up:
allocator pools, the page cache of the log) and the median p99 of the last three windows is
within 20 % of the first three's. Writes bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from harness import ROOT, check_demo, demo_predictor, stop, write_results
from overload import GENERATORS, LOADGEN, REQUEST, Predictor, run_load

WINDOW_S = 30.0
RSS_GROWTH = 0.10
P99_DRIFT = 0.20


def worker_rss(arbiter: int) -> int:
    return sum(p.memory_info().rss for p in psutil.Process(arbiter).children(recursive=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-cpus", default=str((os.cpu_count() or 2) - 1))
    parser.add_argument("--client-cpus", default="0")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--generator",
        choices=sorted(GENERATORS),
        default="rust" if LOADGEN.exists() else "python",
        help="load generator, as in bench/overload.py (default: rust when built)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    check_demo()
    started = datetime.now(UTC).isoformat()
    windows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="loopline-soak-") as scratch:
        work = Path(scratch)
        body = work / "native.json"
        body.write_text(json.dumps(REQUEST))
        with demo_predictor(work, args.server_cpus) as env:
            server = Predictor(args, {**env, "LOOPLINE_SHUTDOWN_DRAIN_S": "0"}, work / "log")
            try:
                closed = ["--duration", "5", "--concurrency", "64"]
                capacity = run_load(args, server.url, body, *closed)["rate"]
                rate = ["--rate", str(round(capacity / 2)), "--duration", str(WINDOW_S)]
                for _ in range(max(4, round(args.minutes * 60 / WINDOW_S))):
                    window = run_load(args, server.url, body, *rate)
                    window["rss_mb"] = round(worker_rss(server.process.pid) / 2**20, 1)
                    windows.append(window)
                    print(json.dumps(window), flush=True)
            finally:
                stop(server.process)
    report(started, capacity, windows, args.out)


def report(started: str, capacity: float, windows: list[dict[str, Any]], out: Path) -> None:
    first_rss, last_rss = windows[1]["rss_mb"], windows[-1]["rss_mb"]
    growth = last_rss / first_rss - 1
    early = statistics.median(w["p99_ms"] for w in windows[1:4])
    late = statistics.median(w["p99_ms"] for w in windows[-3:])
    drift = late / early - 1
    statuses: dict[str, int] = {}
    for window in windows:
        for status, count in window["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    passed = growth < RSS_GROWTH and drift < P99_DRIFT
    text = "\n".join(
        [
            f"# Soak, {started[:19]}Z",
            "",
            f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`. Capacity "
            f"{capacity:,.0f} req/s; {len(windows)} windows of {WINDOW_S:.0f} s at half of it.",
            "",
            f"- Worker RSS {first_rss} MB after the first window, {last_rss} MB at the end: "
            f"{growth:+.1%} (limit {RSS_GROWTH:.0%}).",
            f"- p99 (median of 3 windows) {early} ms early, {late} ms late: {drift:+.1%} "
            f"(limit {P99_DRIFT:.0%}).",
            f"- Statuses: {statuses}. {'PASSED' if passed else 'FAILED'}.",
            "",
        ]
    )
    print(text)
    write_results(out, "soak", started, {"windows": windows}, text)
    if not passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
