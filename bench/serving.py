"""The serving benchmark: the predictor against a bare Starlette hello-world, same cores, one run.

    .venv/bin/python bench/serving.py            # after `make demo`; needs redis-server and wrk

It starts a redis-server, materializes the demo's features into it, and runs, one after the
other and pinned to the same CPUs (``--server-cpus``; the load generators get the others, and
Redis the server's unless ``--redis-cpus`` says otherwise):

1. the bare Starlette app under uvicorn: maximum throughput (wrk) and unloaded latency; and
   the bare gRPC baseline (``bench/grpc_hello.py``: a fixed ``ModelInfer`` answer on the
   predictor's gRPC server set-up), the most Python gRPC serves on these cores;
2. ``loopline serve`` (one worker, Redis features, file prediction log) twice, measuring the
   time from process start to ready with a cold and with a warm feature-plan cache;
3. for native REST, OIP REST (JSON) and OIP gRPC: maximum throughput (closed loop, 16 in
   flight), latency unloaded (open loop, 200/s) and at 70 % of that maximum (open loop).

HTTP maximums use wrk; gRPC's and every latency use bench/load.py (open loop: no coordinated
omission). The table is printed and written with the raw figures to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import (
    BIN,
    ROOT,
    check_demo,
    demo_predictor,
    free_port,
    load,
    pinned,
    post_script,
    stop,
    tensor,
    wait_http,
    write_results,
    wrk,
)

from loopline.spec import load_spec

REQUEST = {**load_spec("flight-delay").example_request, "event_timestamp": "2013-08-31T23:50:00Z"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-cpus", default=str((os.cpu_count() or 2) - 1))
    parser.add_argument("--client-cpus", default="0")
    parser.add_argument(
        "--redis-cpus",
        help="default: the server's CPUs. Redis's CPU is then charged to the predictor, and it "
        "is not starved by the Python load generator, which fills its CPU at these rates",
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    check_demo("wrk")
    results: dict[str, Any] = {"started": datetime.now(UTC).isoformat()}
    args.redis_cpus = args.redis_cpus or args.server_cpus
    results["args"] = {k: str(v) for k, v in vars(args).items()}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    duration = str(args.duration)
    with tempfile.TemporaryDirectory(prefix="loopline-bench-") as scratch:
        work = Path(scratch)
        with demo_predictor(work, args.redis_cpus) as env:
            native = json.dumps(REQUEST).encode()
            oip = json.dumps({"inputs": [tensor(k, v) for k, v in REQUEST.items()]}).encode()
            (work / "native.json").write_bytes(native)
            (work / "oip.json").write_bytes(oip)
            results["bare"] = bare(args, work, duration)
            results["bare_grpc"] = bare_grpc(args, work, duration)
            results["predictor"] = predictor(args, work, env, native, oip, duration)
    report(results, args.out)


def bare(args: argparse.Namespace, work: Path, duration: str) -> dict[str, Any]:
    port = free_port()
    command = [str(BIN / "uvicorn"), "bench.hello:app", "--port", str(port), "--no-access-log"]
    server = subprocess.Popen(
        pinned(args.server_cpus, *command), cwd=ROOT, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}/hello"
        wait_http(url, 30, server)
        wrk(args.client_cpus, url, 3, None)  # warm-up
        maximum = wrk(args.client_cpus, url, args.duration, None)
        unloaded = load(
            args.client_cpus, "http", "--url", url, "--duration", duration, "--rate", "200"
        )
    finally:
        stop(server)
    return {"max_rps": maximum, "unloaded": unloaded}


def bare_grpc(args: argparse.Namespace, work: Path, duration: str) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, str(ROOT / "bench" / "grpc_hello.py"), "--port", str(port)]
    server = subprocess.Popen(pinned(args.server_cpus, *command), cwd=ROOT)
    try:
        target = ["grpc", "--target", f"127.0.0.1:{port}", "--body", str(work / "oip.json")]
        deadline = time.monotonic() + 30
        while True:  # the first call connects; retry until the server listens
            try:
                load(args.client_cpus, *target, "--duration", "1", "--concurrency", "1")
                break
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        load(args.client_cpus, *target, "--duration", "3", "--concurrency", "16")  # warm-up
        maximum = load(args.client_cpus, *target, "--duration", duration, "--concurrency", "16")
        unloaded = load(args.client_cpus, *target, "--duration", duration, "--rate", "200")
    finally:
        stop(server)
    return {"max_rps": maximum["rate"], "unloaded": unloaded}


def predictor(
    args: argparse.Namespace,
    work: Path,
    env: dict[str, str],
    native: bytes,
    oip: bytes,
    duration: str,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for start in ("ready_cold_cache_s", "ready_warm_cache_s"):
        http_port, grpc_port = free_port(), free_port()
        command = [
            str(BIN / "loopline"),
            "serve",
            f"--port={http_port}",
            f"--grpc-port={grpc_port}",
        ]
        with (work / "predictor.log").open("ab") as output:
            server = subprocess.Popen(
                pinned(args.server_cpus, *command),
                env=env,
                cwd=work,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        results[start] = round(
            wait_http(f"http://127.0.0.1:{http_port}/v2/health/ready", 120, server), 2
        )
        if start == "ready_cold_cache_s":
            stop(server)
    base = f"http://127.0.0.1:{http_port}"
    paths = {
        "native_rest": ("http", f"{base}/predict", work / "native.json"),
        "oip_rest": ("http", f"{base}/v2/models/flight-delay/infer", work / "oip.json"),
        "oip_grpc": ("grpc", f"127.0.0.1:{grpc_port}", work / "oip.json"),
    }
    try:
        for name, (protocol, target, body) in paths.items():
            where = ["--url", target] if protocol == "http" else ["--target", target]
            common = [protocol, *where, "--body", str(body), "--duration", duration]
            if protocol == "http":
                script = post_script(work, target.split(str(http_port))[1], body.read_bytes())
                wrk(args.client_cpus, target, 3, script)
                maximum = wrk(args.client_cpus, target, args.duration, script)
            else:
                load(args.client_cpus, *common[:-2], "--duration", "3", "--concurrency", "16")
                maximum = load(args.client_cpus, *common, "--concurrency", "16")["rate"]
            unloaded = load(args.client_cpus, *common, "--rate", "200")
            loaded = load(args.client_cpus, *common, "--rate", str(round(0.7 * maximum)))
            results[name] = {"max_rps": maximum, "unloaded": unloaded, "at_70_percent": loaded}
            print(name, json.dumps(results[name]), flush=True)
    finally:
        stop(server)
    return results


def report(results: dict[str, Any], out: Path) -> None:
    bare_max, bare_unloaded = results["bare"]["max_rps"], results["bare"]["unloaded"]
    grpc_max = results["bare_grpc"]["max_rps"]
    lines = [
        f"# Serving benchmark, {results['started'][:19]}Z",
        "",
        f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`; server CPUs "
        f"{results['args']['server_cpus']}, load generators on {results['args']['client_cpus']}, "
        f"Redis on {results['args']['redis_cpus']} ({results['machine']['cpus']} CPUs).",
        "",
        f"Bare Starlette hello-world: {bare_max:,.0f} req/s max; unloaded p50 "
        f"{bare_unloaded['p50_ms']} ms, p99 {bare_unloaded['p99_ms']} ms.",
        f"Bare gRPC ModelInfer (bench/grpc_hello.py): {grpc_max:,.0f} req/s max "
        f"({grpc_max / bare_max:.2f} of bare Starlette); unloaded p50 "
        f"{results['bare_grpc']['unloaded']['p50_ms']} ms, "
        f"p99 {results['bare_grpc']['unloaded']['p99_ms']} ms.",
        f"Predictor ready after {results['predictor']['ready_cold_cache_s']} s (cold feature-plan "
        f"cache) and {results['predictor']['ready_warm_cache_s']} s (warm); target 3 s.",
        "",
        "| path | max req/s | ratio to bare Starlette (≥ 0.25) | ratio to bare gRPC "
        "| unloaded p50 (≤ 1 ms) | unloaded p99 (≤ 3 ms) | rate at 70 % | p99 at 70 % (≤ 5 ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("native_rest", "oip_rest", "oip_grpc"):
        path = results["predictor"][name]
        ratio = path["max_rps"] / bare_max
        path["ratio"] = round(ratio, 3)
        to_grpc = f"{path['max_rps'] / grpc_max:.2f}" if name == "oip_grpc" else "n/a"
        lines.append(
            f"| {name} | {path['max_rps']:,.0f} | {ratio:.2f} | {to_grpc} "
            f"| {path['unloaded']['p50_ms']} ms "
            f"| {path['unloaded']['p99_ms']} ms | {path['at_70_percent']['rate']:,.0f} "
            f"| {path['at_70_percent']['p99_ms']} ms |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    write_results(out, "serving", results["started"], results, text)


if __name__ == "__main__":
    main()
