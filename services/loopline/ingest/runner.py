"""``loopline ingest``: the consumers of one shard (or all), built from settings and run.

Each shard runs two threads, its repartition stage and its shard stage (``consumer``), until
``stop`` is set; ``LOOPLINE_INGEST_STAGE`` runs one of the two alone, so that a shard's stages
can run as two processes (each thread holds the interpreter lock about half the time, so in one
process they share one core; docs/decisions.md, 25). A step that fails (Redis or the online
store down) is retried after a pause that doubles up to ``retry.MAX_PAUSE_S``; the shard then
starts again from its last commit.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta

from prometheus_client import CollectorRegistry, start_http_server

from loopline.errors import SettingsError
from loopline.events import OutcomeSink
from loopline.events.memory_stream import MemoryEventStream
from loopline.events.redis_stream import RedisEventStream
from loopline.events.stream import EventStream
from loopline.ingest.consumer import OnlineWriter, Repartitioner, ShardConsumer
from loopline.ingest.metrics import IngestMetrics
from loopline.ingest.offline import OfflineWriter
from loopline.outcomes import build_outcome_sink
from loopline.retry import retry_until_stopped
from loopline.settings import Settings
from loopline.settings_live import IngestStage

logger = logging.getLogger(__name__)


def event_stream(settings: Settings, *, producer: bool = False) -> EventStream:
    """The configured stream: Redis when a URL is set, else one in memory."""
    url = settings.events_url
    if url is None:
        return MemoryEventStream(settings.ingest_shards)
    timeout_s = settings.events_timeout_ms / 1000
    block_ms = 0 if producer else settings.ingest_block_ms
    return RedisEventStream(
        url, settings.events_stream_prefix, settings.ingest_shards, timeout_s, block_ms
    )


def outcome_sink(settings: Settings, registry: CollectorRegistry) -> OutcomeSink:
    """Where outcomes go: the outcome join, its live-performance gauges on ``registry``."""
    return build_outcome_sink(settings, registry)


class Ingest:
    """Every consumer of ``shards`` over one stream, in threads of this process: both stages
    of each shard, or only the one ``stage`` names (``online`` and ``sink`` are the shard
    stage's; a repartition stage alone needs neither)."""

    def __init__(
        self,
        settings: Settings,
        stream: EventStream,
        shards: Sequence[int],
        online: OnlineWriter | None,
        registry: CollectorRegistry | None = None,
        sink: OutcomeSink | None = None,
        stage: IngestStage = "all",
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.metrics = IngestMetrics(self.registry)
        self.stream = stream
        self.stop = threading.Event()
        self.repartitioners: list[Repartitioner] = []
        self.consumers: list[ShardConsumer] = []
        self.sink: OutcomeSink | None = None
        if stage != "shard":
            self._add_repartitioners(settings, shards)
        if stage != "repartition":
            if online is None:
                raise ValueError("the shard stage needs an online writer")
            self.sink = sink or outcome_sink(settings, self.registry)
            self._add_consumers(settings, shards, online, self.sink)
        self._threads: list[threading.Thread] = []

    def _add_repartitioners(self, settings: Settings, shards: Sequence[int]) -> None:
        batch, block = settings.ingest_batch_size, settings.ingest_block_ms
        self.repartitioners = [
            Repartitioner(
                self.stream,
                f"shard-{shard}",
                self.metrics,
                batch,
                block,
                timedelta(seconds=settings.ingest_max_future_s),
            )
            for shard in shards
        ]

    def _add_consumers(
        self, settings: Settings, shards: Sequence[int], online: OnlineWriter, sink: OutcomeSink
    ) -> None:
        batch, block, stream = settings.ingest_batch_size, settings.ingest_block_ms, self.stream
        self.consumers = [
            ShardConsumer(
                shard,
                stream,
                online,
                sink,
                OfflineWriter(
                    stream,
                    shard,
                    settings.data_dir,
                    settings.ingest_offline_rows,
                    settings.ingest_offline_interval_s,
                ),
                self.metrics,
                batch,
                block,
                timedelta(seconds=settings.ingest_allowed_lateness_s),
                timedelta(seconds=settings.ingest_dedup_horizon_s),
            )
            for shard in shards
        ]

    def start(self) -> None:
        for stage in self.repartitioners:
            self._spawn("repartition", stage.step, lambda: None)
        for consumer in self.consumers:
            self._spawn("shard", consumer.step, consumer.forget)

    def _spawn(self, stage: str, step: Callable[[], int], on_failure: Callable[[], None]) -> None:
        thread = threading.Thread(
            target=self._loop, args=(stage, step, on_failure), name=f"ingest-{stage}", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def _loop(self, stage: str, step: Callable[[], int], on_failure: Callable[[], None]) -> None:
        def failed(first: bool) -> None:
            self.metrics.failures.labels(stage).inc()
            if first:
                logger.exception("ingest %s step failed; retrying", stage)
            on_failure()

        retry_until_stopped(self.stop, step, failed)

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop after the steps in progress, then write the offline rows that wait."""
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        for consumer in self.consumers:
            try:
                consumer.flush_offline()
            except Exception:
                logger.exception("offline rows of shard %d not written; kept", consumer.shard)
        if self.sink is not None:
            self.sink.close()
        self.stream.close()


def shards_of(settings: Settings) -> Sequence[int]:
    """The shards this process consumes: ``ingest_shard``, or every one."""
    if settings.ingest_shard is None:
        return range(settings.ingest_shards)
    return [settings.ingest_shard]


def build(settings: Settings, stream: EventStream | None = None) -> Ingest:
    """The ingest of ``settings.ingest_shard`` (all shards when None), its stages as
    ``settings.ingest_stage`` says, writing to the configured online store."""
    from loopline.ingest.online import FeastOnlineWriter

    if stream is None and settings.events_url is None:
        raise SettingsError(
            "loopline ingest needs LOOPLINE_EVENTS_REDIS_URL or LOOPLINE_REDIS_URL (without "
            "Redis, `loopline serve` ingests in its own process)"
        )
    shards = shards_of(settings)
    stage = settings.ingest_stage
    online = None if stage == "repartition" else FeastOnlineWriter(settings)
    return Ingest(settings, stream or event_stream(settings), shards, online, stage=stage)


def run(settings: Settings) -> None:
    """Ingest until SIGTERM or SIGINT, serving ``/metrics`` meanwhile."""
    ingest = build(settings)
    server = None
    if settings.ingest_metrics_port:
        server, _ = start_http_server(
            settings.ingest_metrics_port, addr=settings.host, registry=ingest.registry
        )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: ingest.stop.set())
    ingest.start()
    logger.info("ingesting shards %s (%s)", list(shards_of(settings)), settings.ingest_stage)
    ingest.stop.wait()
    ingest.close()
    if server is not None:
        server.shutdown()
