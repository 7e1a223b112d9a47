"""Ingest throughput and freshness on a real redis-server (docs/events.md, Measured).

1. throughput: the live reference events (Sep-Dec 2013, in event-time order) are XADDed first,
   then ``loopline ingest`` consumes them, through one shard and through two; each shard either
   as one process (both stages) or as two (``--stage shard`` and ``--stage repartition``, the
   chart's layout). Events per second = events / time to drain the streams, from when the input
   stream starts to shrink with every process built (Feast's start-up is not counted).
2. freshness: a producer XADDs at a steady rate (2,000 events/s by default) while one shard
   ingests. Two p99s, side by side: the consumer's ``loopline_ingest_freshness_seconds`` (XADD to
   the online write carrying the event, read from ``/metrics``: the bucket's upper bound and
   the value interpolated in it), and the bench's own, per event, from the times it can see:
   each entry id's millisecond time (the XADD) to when the event's id appears in the shard's
   committed set (polled every ``POLL_S``; the commit follows the online write).

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
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import redis

from bench.harness import ROOT, write_results
from loopline.events import Event, encode
from loopline.events.redis_stream import RedisEventStream
from loopline.features.store import apply
from loopline.replay.timeline import departures, outcomes, weather
from loopline.settings import Settings
from tests.redis_server import free_port, running_redis

PREFIX = "bench:events"
POLL_S = 0.005
WARM_UP = 500
FEAST_METRICS_DIRS = ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR")


def live_events(data: Path, limit: int) -> list[Event]:
    """The prepared tables' live rows as events (the replay's), in event-time order."""
    live = pd.Timestamp("2013-09-01", tz="UTC")

    def rows(name: str) -> pd.DataFrame:
        frame = pd.read_parquet(data / f"{name}.parquet")
        return frame[frame["event_timestamp"] >= live]

    events = [
        *departures(rows("departures")),
        *weather(rows("weather")),
        *outcomes(rows("outcomes")),
    ]
    events.sort(key=lambda e: e.event_timestamp)
    return events[:limit]


def ingest(
    settings: Settings, url: str, shards: int, shard: int, port: int, **extra: str
) -> subprocess.Popen[bytes]:
    # Feast's import (``apply``, in this process) set these for its own metrics: a child that
    # inherited them would keep every metric in mmapped files (multiprocess mode), a cost that
    # ``loopline ingest`` started on its own does not pay.
    inherited = {k: v for k, v in os.environ.items() if k not in FEAST_METRICS_DIRS}
    env = {
        **extra,
        **inherited,
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


def wait_ready(port: int) -> None:
    """Until the process's ``/metrics`` answers (it is served once ingest is built)."""
    for _ in range(600):
        try:
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"ingest on port {port} never answered")


def drained(client: redis.Redis, shards: int) -> bool:
    keys = [f"{PREFIX}:in", *(f"{PREFIX}:shard:{i}" for i in range(shards))]
    return sum(client.xlen(k) for k in keys) == 0


def throughput(
    settings: Settings, url: str, events: list[Event], shards: int, *, split: bool
) -> float:
    """Events/s through ``shards``; ``split``: each shard's stages as two processes (the shard
    consumers are built first, so the clock starts with every process ready)."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    stream = RedisEventStream(url, PREFIX, shards, 5.0, block_ms=0)
    for i in range(0, len(events), 1000):
        stream.publish(events[i : i + 1000])
    processes = []
    try:
        for stage in ("shard", "repartition") if split else ("all",):
            ports = [free_port() for _ in range(shards)]
            processes += [
                ingest(settings, url, shards, i, ports[i], LOOPLINE_INGEST_STAGE=stage)
                for i in range(shards)
            ]
            if stage == "shard":
                for port in ports:
                    wait_ready(port)
        while client.xlen(f"{PREFIX}:in") == len(events):
            time.sleep(0.01)
        started = time.monotonic()
        while not drained(client, shards):
            time.sleep(0.01)
        return len(events) / (time.monotonic() - started)
    finally:
        for process in processes:
            process.terminate()
            process.wait(60)


class CommitWatch:
    """When each event id first appears in shard 0's committed set (``<prefix>:seen:0``,
    scored by event time): polled in a thread, from the highest score seen on."""

    def __init__(self, url: str) -> None:
        self.seen_at: dict[str, float] = {}
        self._client = redis.Redis.from_url(url)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        low = float("-inf")
        while not self._stop.wait(POLL_S):
            found = self._client.zrangebyscore(f"{PREFIX}:seen:0", low, "+inf", withscores=True)
            now = time.time()
            for event_id, score in found:
                self.seen_at.setdefault(event_id.decode(), now)
                low = max(low, score)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._client.close()


def freshness(
    settings: Settings, url: str, events: list[Event], rate: float, seconds: float
) -> dict[str, float]:
    client = redis.Redis.from_url(url)
    client.flushdb()
    port = free_port()
    # A long dedup horizon keeps every id in the committed set until the bench has seen it.
    horizon = {"LOOPLINE_INGEST_DEDUP_HORIZON_S": str(30 * 86400)}
    process = ingest(settings, url, 1, 0, port, **horizon)
    added_at: dict[str, float] = {}
    try:
        wait_ready(port)
        # Warm-up (first connections, lazy imports): its events are left out of both p99s.
        warm = min(WARM_UP, len(events) // 10)
        send(client, events[:warm], added_at)
        while not drained(client, 1) or client.zcard(f"{PREFIX}:seen:0") < warm:
            time.sleep(0.05)
        before = scrape(port)
        measured = events[warm : warm + int(rate * seconds)]
        added_at.clear()
        watch = CommitWatch(url)
        batch = max(1, int(rate / 100))
        started = time.monotonic()
        for sent in range(0, len(measured), batch):
            send(client, measured[sent : sent + batch], added_at)
            time.sleep(max(0.0, started + (sent + batch) / rate - time.monotonic()))
        while not drained(client, 1):
            time.sleep(0.05)
        time.sleep(1.5)
        watch.close()
        after = scrape(port)
    finally:
        process.terminate()
        process.wait(60)
    delays = sorted(watch.seen_at[i] - added_at[i] for i in added_at if i in watch.seen_at)
    upper, interpolated = histogram_p99({le: n - before.get(le, 0.0) for le, n in after.items()})
    return {
        "freshness_events_sent": len(added_at),
        "freshness_events_committed": len(delays),
        "freshness_histogram_p99_s_upper_bound": upper,
        "freshness_histogram_p99_s_interpolated": round(interpolated, 4),
        "xadd_to_commit_p99_s": round(delays[int(0.99 * (len(delays) - 1))], 4),
        "xadd_to_commit_p50_s": round(delays[len(delays) // 2], 4),
        "xadd_to_commit_max_s": round(delays[-1], 4),
    }


def send(client: redis.Redis, events: list[Event], added_at: dict[str, float]) -> None:
    """XADD ``events`` (one pipeline), noting each one's entry id time."""
    with client.pipeline(transaction=False) as pipe:
        for event in events:
            pipe.xadd(f"{PREFIX}:in", {"event": encode(event)})
        ids = pipe.execute()
    for event, entry_id in zip(events, ids, strict=True):
        added_at[event.event_id] = int(entry_id.split(b"-")[0]) / 1000


def scrape(port: int) -> dict[float, float]:
    """The freshness histogram's cumulative bucket counts, all views together."""
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    buckets: dict[float, float] = {}
    for line in metrics.splitlines():
        if line.startswith("loopline_ingest_freshness_seconds_bucket"):
            le = float(line.split('le="', 1)[1].split('"', 1)[0])
            buckets[le] = buckets.get(le, 0.0) + float(line.rsplit(" ", 1)[1])
    return buckets


def histogram_p99(buckets: dict[float, float]) -> tuple[float, float]:
    """The 99th percentile of cumulative bucket counts: the upper bound of its bucket, and
    linearly interpolated within that bucket (as PromQL's ``histogram_quantile``)."""
    total = buckets.get(float("inf"), 0.0)
    below, count_below = 0.0, 0.0
    for bound, count in sorted(buckets.items()):
        if count >= 0.99 * total:
            inside = count - count_below
            share = (0.99 * total - count_below) / inside if inside else 1.0
            return bound, below + (bound - below) * share if bound != float("inf") else below
        below, count_below = bound, count
    raise ValueError("no freshness samples")


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
        with running_redis(root) as url:
            settings = Settings(feature_repo=repo, home=root / "home", redis_url=url)
            apply(settings)
            events = live_events(repo / "data", args.events)
            runs = {
                f"{shards}_{split}": throughput(settings, url, events, shards, split=split)
                for shards in (1, 2)
                for split in (False, True)
            }
            fresh = freshness(settings, url, events, args.rate, args.seconds)
    figures = {
        "events": len(events),
        "one_shard_one_process_events_per_s": round(runs["1_False"]),
        "one_shard_two_processes_events_per_s": round(runs["1_True"]),
        "two_shards_one_process_each_events_per_s": round(runs["2_False"]),
        "two_shards_two_processes_each_events_per_s": round(runs["2_True"]),
        "two_over_one_one_process": round(runs["2_False"] / runs["1_False"], 2),
        "two_over_one_two_processes": round(runs["2_True"] / runs["1_True"], 2),
        "freshness_rate_events_per_s": args.rate,
        **fresh,
        "cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 1),
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
