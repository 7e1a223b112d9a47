"""The replay benchmark: the whole live period (Sep-Dec 2013) against one local server, --max.

    .venv/bin/python bench/replay.py [--from 2013-09-01 --to 2013-12-31] [--redis]  # after demo

Default, the embedded setup the demo runs: one ``loopline serve`` (one worker, SQLite features
materialized up to where live traffic begins) that ingests the events itself and answers
``POST /events`` once they are applied. ``--redis``: a redis-server holding the features, the
event stream and the log, ``loopline serve`` and ``loopline ingest`` (every shard) on it; the
replay appends events straight to the stream. Then ``loopline replay --max --json``: every
departure, weather observation and outcome, and every live prediction request, in time order.
Target: at most 3 minutes (docs/outcomes.md). Writes the summary and the wall time to
bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from harness import (
    BIN,
    ROOT,
    check_demo,
    demo_predictor,
    free_port,
    setup_features,
    stop,
    wait_http,
    write_results,
)

TARGET_S = 180.0


def cpu_steal_s() -> float:
    """Seconds of this VM's CPU time the host gave to others (``/proc/stat``'s steal, all
    CPUs): what makes two runs of one build differ on a shared machine."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="start", default="2013-09-01")
    parser.add_argument("--to", dest="end", default="2013-12-31")
    parser.add_argument("--redis", action="store_true", help="Redis and `loopline ingest`.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    arguments = parser.parse_args()
    check_demo()
    started = datetime.now(UTC).isoformat()
    loopline = str(BIN / "loopline")
    setup = "redis" if arguments.redis else "embedded"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        context = (
            demo_predictor(work, redis_cpus="0")
            if arguments.redis
            else contextlib.nullcontext(setup_features(work))
        )
        with context as env:
            port, metrics_port = free_port(), free_port()
            env = {
                **env,
                "LOOPLINE_PREDICTION_LOG_DIR": str(work / "log"),
                "LOOPLINE_REPLAY_URL": f"http://127.0.0.1:{port}",
                "LOOPLINE_INGEST_METRICS_PORT": str(metrics_port),
                # Embedded: a slice's requests wait for its events (ignored with --redis).
                "LOOPLINE_EVENTS_ANSWER_APPLIED": "true",
            }
            serve = subprocess.Popen(
                [loopline, "serve", f"--port={port}", f"--grpc-port={free_port()}"], env=env
            )
            ingest = subprocess.Popen([loopline, "ingest"], env=env) if arguments.redis else None
            try:
                wait_http(f"http://127.0.0.1:{port}/v2/health/ready", 120, serve)
                began, stolen = time.perf_counter(), cpu_steal_s()
                command = [loopline, "replay", "--from", arguments.start, "--to", arguments.end]
                result = subprocess.run(
                    [*command, "--max", "--json"], env=env, capture_output=True, check=True
                )
                wall = time.perf_counter() - began
                stolen = cpu_steal_s() - stolen
            finally:
                if ingest is not None:
                    stop(ingest)
                stop(serve)
    summary = json.loads(result.stdout)
    payload = {
        "started": started,
        "setup": setup,
        "wall_s": wall,
        "cpu_steal_s": round(stolen, 2),
        "target_s": TARGET_S,
        "replay": summary,
    }
    text = (
        f"# Replay {arguments.start} → {arguments.end}, --max, one server ({setup})\n\n"
        f"| wall (s) | slices | ms a slice | events | events/s | predictions | outcomes joined "
        f"| target |\n"
        f"|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {wall:.1f} | {summary['slices']:,} | "
        f"{1000 * summary['seconds'] / max(1, summary['slices']):.1f} | "
        f"{summary['events']:,} | {summary['events_per_s']:,.0f} | "
        f"{summary['predictions']:,} | {summary['outcomes_joined']:,} | "
        f"{'met' if wall <= TARGET_S else 'missed'} (≤ {TARGET_S:.0f} s) |\n\n"
        f"CPU time the host took from this machine meanwhile (steal): {stolen:.1f} s.\n"
    )
    print(text)
    write_results(arguments.out, "replay", started, payload, text)


if __name__ == "__main__":
    main()
