"""The overload benchmark: one worker, default settings, open loop past capacity.

    .venv/bin/python bench/overload.py           # after `make demo`; needs redis-server

It starts a redis-server with the demo's features and ``loopline serve`` (one worker, the
defaults, pinned to ``--server-cpus``; the load generator on ``--client-cpus``, with Redis,
which stands for a store on another host), then measures on native REST (``/predict``, one row).
The generator is ``bench/loadgen`` (Rust, ``make loadgen``) when it is built: ``bench/load.py``'s
flags and JSON, one thread per connection, so the 300 % rate is offered on time; else, or with
``--generator python``, ``bench/load.py``, whose event loop saturates its core near 4,000
requests/s (its lag then measures the generator). Either runs every phase (closed loop too).

1. capacity: closed loop, 64 requests in flight (as wrk -c64 would), and the worker's CPU
   per prediction (its user + system time over the answers);
2. the CPU of a refusal: the same load on a second server whose queue holds one row and whose
   one admitted request waits 1 s, so every other request is refused (429) by admission; and
   of a bare Starlette hello (``bench/hello.py``) for comparison;
3. open loop at 50 %, 150 % and 300 % of capacity over ``--connections`` connections (more than
   the admission queue holds, so the worker has to refuse): goodput (200s per second), the
   refusals' latency on the wire, the 200s' p99, every status;
4. recovery: closed loop again in 1 s windows right after the 300 % run, until the rate is
   back to 90 % of capacity.

Targets (issue 12, acceptance 2): at 150 % goodput ≥ 60 % of capacity and refusals answered
within 10 ms; at 300 % goodput ≥ 70 % and the 200s' p99 ≤ 2x the p99 at 50 %; no 500 at any
rate; capacity again within 5 s. The table and the raw figures go to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from harness import (
    BIN,
    ROOT,
    check_demo,
    demo_predictor,
    free_port,
    pinned,
    stop,
    wait_http,
    write_results,
)

from loopline.spec import load_spec

REQUEST = {**load_spec("flight-delay").example_request, "event_timestamp": "2013-08-31T23:50:00Z"}
REFUSE_ALL = {"LOOPLINE_MAX_QUEUED_ROWS": "1", "LOOPLINE_BATCH_WAIT_MS": "1000"}
LOADGEN = ROOT / "bench" / "loadgen" / "target" / "release" / "loadgen"
GENERATORS = {"rust": [str(LOADGEN)], "python": [sys.executable, str(ROOT / "bench" / "load.py")]}


def run_load(
    args: argparse.Namespace, url: str, body: Path | None, *arguments: str
) -> dict[str, Any]:
    """The load generator (``args.generator``) over HTTP on ``args.client_cpus``: POSTs of
    ``body``, or GETs when there is none; with the CPU the generator itself spent."""
    command = [*GENERATORS[args.generator], "http", "--url", url]
    command += [*(["--body", str(body)] if body else []), "--warmup", "50", *arguments]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(
        pinned(args.client_cpus, *command), capture_output=True, text=True, check=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    spent = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    result["generator_cpu_s"] = round(spent, 3)
    return result


def cpu_seconds(pid: int) -> float:
    """User and system CPU of ``pid`` and its children (the arbiter's worker)."""
    process = psutil.Process(pid)
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        times = each.cpu_times()
        total += times.user + times.system
    return total


def measured(pid: int, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``work()``'s result with the CPU ``pid`` spent meanwhile, per request answered."""
    before = cpu_seconds(pid)
    result = work()
    spent = cpu_seconds(pid) - before
    result["server_cpu_s"] = round(spent, 3)
    result["server_cpu_us_per_request"] = round(spent / max(1, result["requests"]) * 1e6, 1)
    return result


class Predictor:
    def __init__(self, args: argparse.Namespace, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        command = [str(BIN / "loopline"), "serve", f"--port={self.port}"]
        command.append(f"--grpc-port={free_port()}")
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                pinned(args.server_cpus, *command), env=env, stdout=output, stderr=output
            )
        wait_http(f"http://127.0.0.1:{self.port}/v2/health/ready", 120, self.process)
        self.url = f"http://127.0.0.1:{self.port}/predict"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-cpus", default=str((os.cpu_count() or 2) - 1))
    parser.add_argument("--client-cpus", default="0")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE: a setting to try (default: none)"
    )
    parser.add_argument("--skip-costs", action="store_true", help="capacity and rates only")
    parser.add_argument(
        "--generator",
        choices=sorted(GENERATORS),
        default="rust" if LOADGEN.exists() else "python",
        help="load generator (default: rust when `make loadgen` has built it)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    check_demo()
    if args.generator == "rust" and not LOADGEN.exists():
        sys.exit(f"{LOADGEN} is not built: `make loadgen` (or --generator python)")
    results: dict[str, Any] = {"started": datetime.now(UTC).isoformat()}
    results["args"] = {k: str(v) for k, v in vars(args).items()}
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_1m_at_start": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory(prefix="loopline-overload-") as scratch:
        work = Path(scratch)
        body = work / "native.json"
        body.write_text(json.dumps(REQUEST))
        with demo_predictor(work, args.client_cpus) as env:
            env["LOOPLINE_SHUTDOWN_DRAIN_S"] = "0"
            env.update(item.split("=", 1) for item in args.env)
            results["costs"] = {} if args.skip_costs else costs(args, env, work, body)
            results["rates"] = rates(args, env, work, body)
    results["machine"]["load_1m_at_end"] = round(os.getloadavg()[0], 2)
    report(results, args.out)


def costs(args: argparse.Namespace, env: dict[str, str], work: Path, body: Path) -> dict[str, Any]:
    closed = ["--duration", str(args.duration / 2), "--concurrency", "64"]
    refusing = Predictor(args, {**env, **REFUSE_ALL}, work / "refusing.log")
    try:
        refusal = measured(
            refusing.process.pid, lambda: run_load(args, refusing.url, body, *closed)
        )
    finally:
        stop(refusing.process)
    port = free_port()
    command = [str(BIN / "uvicorn"), "bench.hello:app", "--port", str(port), "--no-access-log"]
    bare = subprocess.Popen(pinned(args.server_cpus, *command), cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/hello"
        wait_http(url, 30, bare)
        hello = measured(bare.pid, lambda: run_load(args, url, None, *closed))
    finally:
        stop(bare)
    return {"refusal": refusal, "starlette_hello": hello}


def rates(args: argparse.Namespace, env: dict[str, str], work: Path, body: Path) -> dict[str, Any]:
    server = Predictor(args, env, work / "predictor.log")
    pid = server.process.pid
    duration = str(args.duration)
    closed = ["--duration", duration, "--concurrency", "64"]
    out: dict[str, Any] = {}
    try:
        run_load(args, server.url, body, "--duration", "3", "--concurrency", "64")
        out["capacity"] = measured(pid, lambda: run_load(args, server.url, body, *closed))
        capacity = out["capacity"]["statuses"].get("200", 0) / args.duration
        out["capacity_rps"] = round(capacity, 1)
        for share in (0.5, 1.5, 3.0):
            rate = ["--rate", str(round(share * capacity)), "--duration", duration]
            rate += ["--connections", str(args.connections), "--timeout", "10"]
            result = measured(pid, lambda r=rate: run_load(args, server.url, body, *r))
            result["goodput_rps"] = round(result["statuses"].get("200", 0) / args.duration, 1)
            out[f"at_{round(share * 100)}_percent"] = result
            print(share, json.dumps(result), flush=True)
        out["recovery"] = recovery(args, server.url, body, capacity)
    finally:
        stop(server.process)
    return out


def recovery(args: argparse.Namespace, url: str, body: Path, capacity: float) -> dict[str, Any]:
    """1 s closed-loop windows right after the overload, until 90 % of capacity is back."""
    ended = time.monotonic()
    windows = []
    while time.monotonic() - ended < 10:
        window = run_load(args, url, body, "--duration", "1", "--concurrency", "64")
        windows.append(window["statuses"].get("200", 0))
        if windows[-1] >= 0.9 * capacity:
            break
    return {"seconds": round(time.monotonic() - ended, 2), "windows_200s": windows}


def report(results: dict[str, Any], out: Path) -> None:
    rates, costs = results["rates"], results["costs"]
    capacity = rates["capacity_rps"]
    predict_us = rates["capacity"]["server_cpu_us_per_request"]
    refusal_us = costs.get("refusal", {}).get("server_cpu_us_per_request", float("nan"))
    hello_us = costs.get("starlette_hello", {}).get("server_cpu_us_per_request", float("nan"))
    base_p99 = rates["at_50_percent"]["server_ok_p99_ms"]
    wire_p99 = rates["at_50_percent"]["ok_p99_ms"]
    lines = [
        f"# Overload benchmark, {results['started'][:19]}Z",
        "",
        f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`; one worker, default "
        f"settings, the server alone on CPU {results['args']['server_cpus']}, Redis and the load "
        f"generator on {results['args']['client_cpus']} (Redis stands for a store on another "
        f"host), {results['args']['connections']} connections open "
        f"loop, generator: {results['args']['generator']} "
        f"({results['machine']['cpus']} CPUs shared; 1-minute load "
        f"{results['machine']['load_1m_at_start']} at start, "
        f"{results['machine']['load_1m_at_end']} at end). Settings tried: "
        f"{results['args']['env'] or 'none (defaults)'}.",
        "",
        f"Capacity (closed loop, 64 in flight): {capacity:,.0f} predictions/s. Worker CPU: "
        f"{predict_us:.0f} µs per prediction, {refusal_us:.0f} µs per refusal "
        f"({refusal_us / predict_us:.2f} of a prediction), {hello_us:.0f} µs per bare Starlette "
        f"hello ({hello_us / predict_us:.2f}).",
        "",
        "| offered | achieved rate | goodput | of capacity | 200 p99 (wire) | 200 p99 (in the "
        "server) | refused | refused p99 | refused max | statuses | unanswered "
        "| generator lag p99 | generator CPU (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for share in (50, 150, 300):
        r = rates[f"at_{share}_percent"]
        refused = sum(v for k, v in r["statuses"].items() if k in ("429", "503"))
        lines.append(
            f"| {share} % | {r['rate']:,.0f}/s | {r['goodput_rps']:,.0f}/s "
            f"| {r['goodput_rps'] / capacity:.2f} | {r['ok_p99_ms']} ms "
            f"| {r['server_ok_p99_ms']} ms | {refused:,} "
            f"| {r['refused_p99_ms']} ms | {r['refused_max_ms']} ms | {r['statuses']} "
            f"| {r['unanswered']} | {r['lag_p99_ms']} ms "
            f"| {r['generator_cpu_s'] / (r['requests'] / max(r['rate'], 1e-9)):.2f} |"
        )
    at150, at300 = rates["at_150_percent"], rates["at_300_percent"]
    lines += [
        "",
        f"- 150 %: goodput {at150['goodput_rps'] / capacity:.2f} of capacity (target ≥ 0.60), "
        f"refusals p99 {at150['refused_p99_ms']} ms (target ≤ 10 ms).",
        f"- 300 %: goodput {at300['goodput_rps'] / capacity:.2f} of capacity (target ≥ 0.70), "
        f"admitted requests' p99 in the server {at300['server_ok_p99_ms']} ms = "
        f"{at300['server_ok_p99_ms'] / max(base_p99, 1e-9):.2f}x the p99 at 50 % ({base_p99} ms; "
        f"target ≤ 2x); on the wire, with the wait in the kernel, {at300['ok_p99_ms']} ms = "
        f"{at300['ok_p99_ms'] / max(wire_p99, 1e-9):.2f}x ({wire_p99} ms).",
        f"- Recovery: 90 % of capacity again {rates['recovery']['seconds']} s after the 300 % "
        f"run ended (1 s windows: {rates['recovery']['windows_200s']}; target ≤ 5 s).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    write_results(out, "overload", results["started"], results, text)


if __name__ == "__main__":
    main()
