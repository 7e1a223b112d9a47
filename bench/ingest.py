"""Ingest throughput and freshness on a real redis-server (docs/events.md).

1. throughput: the live reference events (Sep-Dec 2013, in event-time order) are XADDed first,
   then ``loopline ingest`` consumes them: one process for one shard, then two processes for two
   shards. Events per second = events / time to drain the streams.
2. freshness: a producer XADDs at a steady rate (2,000 events/s by default) while one shard
   ingests; the p99 of ``loopline_ingest_freshness_seconds`` (XADD to online-store write), read
   from ``/metrics``, upper bucket bound.

Needs the prepared reference data in ``feature_repo/data`` (``make data``). Usage:
``nice python bench/ingest.py [--events N] [--rate R] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import redis

from bench.harness import ROOT, free_port, write_results
from loopline.events import Event, EventType, departure_event_id, outcome_event_id, weather_event_id
from loopline.events.record import WEATHER_FIELDS
from loopline.events.redis_stream import RedisEventStream
from loopline.features.store import apply
from loopline.settings import Settings

PREFIX = "bench:events"


def live_events(data: Path, limit: int) -> list[Event]:
    """The prepared tables' live rows as events, in event-time order."""
    live = pd.Timestamp("2013-09-01", tz="UTC")
    events: list[Event] = []
    for row in pd.read_parquet(data / "departures.parquet").itertuples():
        if row.event_timestamp >= live:
            keys = {"flight_id": row.flight_id, "origin": row.origin, "carrier": row.carrier}
            payload = {"dep_delay": float(row.dep_delay)}
            events.append(
                Event(
                    departure_event_id(row.flight_id),
                    EventType.DEPARTURE,
                    row.event_timestamp.to_pydatetime(),
                    keys,
                    payload,
                )
            )
    weather = pd.read_parquet(data / "weather.parquet")
    for row in weather[weather["event_timestamp"] >= live].to_dict("records"):
        stamp = row["event_timestamp"].to_pydatetime()
        payload = {f: None if pd.isna(row[f]) else float(row[f]) for f in WEATHER_FIELDS}
        events.append(
            Event(
                weather_event_id(row["origin"], stamp),
                EventType.WEATHER,
                stamp,
                {"origin": row["origin"]},
                payload,
            )
        )
    outcomes = pd.read_parquet(data / "outcomes.parquet")
    for row in outcomes[outcomes["event_timestamp"] >= live].to_dict("records"):
        arrived = not pd.isna(row["arr_delay"])
        payload = {
            "status": row["status"],
            "arr_delay": float(row["arr_delay"]) if arrived else None,
            "delayed": int(row["delayed"]) if arrived else None,
        }
        events.append(
            Event(
                outcome_event_id(row["flight_id"]),
                EventType.OUTCOME,
                row["event_timestamp"].to_pydatetime(),
                {"flight_id": row["flight_id"]},
                payload,
            )
        )
    events.sort(key=lambda e: e.event_timestamp)
    return events[:limit]


def redis_server(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


def ingest(
    settings: Settings, url: str, shards: int, shard: int, port: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "services"),
        "LOOPLINE_FEATURE_REPO": str(settings.feature_repo),
        "LOOPLINE_HOME": str(settings.home),
        "LOOPLINE_REDIS_URL": url,
        "LOOPLINE_EVENTS_STREAM_PREFIX": PREFIX,
        "LOOPLINE_INGEST_SHARDS": str(shards),
        "LOOPLINE_INGEST_SHARD": str(shard),
        "LOOPLINE_INGEST_METRICS_PORT": str(port),
        "LOOPLINE_HOST": "127.0.0.1",
    }
    command = [sys.executable, "-c", "from loopline.cli import run; run()", "ingest"]
    return subprocess.Popen(command, env=env)


def drained(client: redis.Redis, shards: int) -> bool:
    keys = [f"{PREFIX}:in", *(f"{PREFIX}:shard:{i}" for i in range(shards))]
    return sum(client.xlen(k) for k in keys) == 0


def throughput(settings: Settings, url: str, events: list[Event], shards: int) -> float:
    client = redis.Redis.from_url(url)
    client.flushdb()
    stream = RedisEventStream(url, PREFIX, shards, 5.0, block_ms=0)
    for i in range(0, len(events), 1000):
        stream.publish(events[i : i + 1000])
    ports = [free_port() for _ in range(shards)]
    processes = [ingest(settings, url, shards, i, ports[i]) for i in range(shards)]
    try:
        while client.xlen(f"{PREFIX}:in") == len(events):  # start-up (Feast) not counted
            time.sleep(0.01)
        started = time.monotonic()
        while not drained(client, shards):
            time.sleep(0.01)
        return len(events) / (time.monotonic() - started)
    finally:
        for process in processes:
            process.terminate()
            process.wait(60)


def freshness_p99(
    settings: Settings, url: str, events: list[Event], rate: float, seconds: float
) -> float:
    client = redis.Redis.from_url(url)
    client.flushdb()
    port = free_port()
    process = ingest(settings, url, 1, 0, port)
    stream = RedisEventStream(url, PREFIX, 1, 5.0, block_ms=0)
    try:
        for _ in range(600):
            try:
                httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        batch = max(1, int(rate / 100))
        started = time.monotonic()
        sent = 0
        while sent < min(len(events), int(rate * seconds)):
            stream.publish(events[sent : sent + batch])
            sent += batch
            time.sleep(max(0.0, started + sent / rate - time.monotonic()))
        while not drained(client, 1):
            time.sleep(0.05)
        time.sleep(1.5)
        return p99(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
    finally:
        process.terminate()
        process.wait(60)


def p99(metrics: str) -> float:
    """Upper bound of the bucket holding the 99th percentile, all views together."""
    buckets: dict[float, float] = {}
    for line in metrics.splitlines():
        if line.startswith("loopline_ingest_freshness_seconds_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            value = float(line.rsplit(" ", 1)[1])
            buckets[float(bound)] = buckets.get(float(bound), 0.0) + value
    total = buckets.get(float("inf"), 0.0)
    return next(bound for bound, count in sorted(buckets.items()) if count >= 0.99 * total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    started = datetime.now(UTC).isoformat()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo = root / "feature_repo"
        shutil.copytree(ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("*.db", "live"))
        process, url = redis_server(root)
        try:
            settings = Settings(feature_repo=repo, home=root / "home", redis_url=url)
            apply(settings)
            events = live_events(repo / "data", args.events)
            one = throughput(settings, url, events, 1)
            two = throughput(settings, url, events, 2)
            fresh = freshness_p99(settings, url, events, args.rate, args.seconds)
        finally:
            process.terminate()
    figures = {
        "events": len(events),
        "one_shard_events_per_s": round(one),
        "two_shards_events_per_s": round(two),
        "freshness_rate_events_per_s": args.rate,
        "freshness_p99_s_upper_bound": fresh,
        "cpus": os.cpu_count(),
    }
    text = "\n".join(
        [
            "| figure | value |",
            "|---|---|",
            *(f"| {name} | {value} |" for name, value in figures.items()),
            "",
        ]
    )
    print(text)
    write_results(args.out, "ingest", started, figures, text)


if __name__ == "__main__":
    main()
