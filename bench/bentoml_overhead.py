"""What BentoML 1.4's HTTP stack costs, and what Loopline's arrangement leaves of it.

    .venv/bin/python bench/bentoml_overhead.py      # needs wrk

Serves a hello-world four ways, one after the other on the same CPU (``--server-cpus``): bare
Starlette under uvicorn, then the three services of bench/bentoml_apps.py under
``bentoml serve``. For each: maximum throughput (wrk, 16 connections), latency on one
connection at about 200 requests per second (bench/load.py), and the worker's live objects
before and after the load, which is where BentoML's per-request timer leak shows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
from harness import (
    BIN,
    ROOT,
    free_port,
    load,
    pinned,
    post_script,
    stop,
    wait_http,
    wrk,
)

VARIANTS = {
    "bare Starlette (uvicorn)": None,
    "BentoML @bentoml.api, defaults": "bentoml_apps:Default",
    "BentoML asgi_app mount, metrics/access log/tracing off": "bentoml_apps:Mounted",
    "Loopline: app in front via service_class": "bentoml_apps:Wrapped",
}


def measure(args: argparse.Namespace, service: str | None) -> dict[str, Any]:
    port = free_port()
    if service is None:
        command = [str(BIN / "uvicorn"), "bentoml_apps:app", "--port", str(port)]
        command.append("--no-access-log")
    else:
        command = [str(BIN / "bentoml"), "serve", service, "--port", str(port)]
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true"}
    env["BENTOML_HOME"] = tempfile.mkdtemp(prefix="bentoml-home-")
    server = subprocess.Popen(
        pinned(args.server_cpus, *command),
        cwd=Path(__file__).parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    post = service == VARIANTS["BentoML @bentoml.api, defaults"]
    body = Path(tempfile.mkdtemp()) / "empty.json"
    body.write_text("{}")
    script = post_script(body.parent, "hello", b"{}") if post else None
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/livez" if post else url + "/hello", 60, server)

        def objects() -> int:
            response = (
                httpx.post(url + "/objects", json={}) if post else httpx.get(url + "/objects")
            )
            count: int = response.json()["objects"]
            return count

        before = objects()
        maximum = wrk(args.client_cpus, url + "/hello", args.duration, script)
        after = objects()
        hello = ["http", "--url", url + "/hello", "--duration", str(args.duration)]
        hello += ["--body", str(body)] if post else []
        unloaded = load(args.client_cpus, *hello, "--rate", "200")
    finally:
        stop(server)
    return {"max_rps": maximum, "unloaded": unloaded, "objects": [before, after]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-cpus", default=str((os.cpu_count() or 2) - 1))
    parser.add_argument("--client-cpus", default="0")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    results = {name: measure(args, service) for name, service in VARIANTS.items()}
    bare = results["bare Starlette (uvicorn)"]["max_rps"]
    lines = [
        "| variant | max req/s | vs bare | p50 ms | p99 ms | max ms "
        "| live objects, before → after |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        u = r["unloaded"]
        lines.append(
            f"| {name} | {r['max_rps']:,.0f} | {r['max_rps'] / bare:.2f} | {u['p50_ms']} "
            f"| {u['p99_ms']} | {u['max_ms']} | {r['objects'][0]:,} → {r['objects'][1]:,} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bentoml-overhead.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "bentoml-overhead.md").write_text(text)


if __name__ == "__main__":
    main()
