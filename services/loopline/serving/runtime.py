"""One worker's predictor: the model, its features, the batcher, the log, and their lifecycle.

``Runtime.load`` (in the BentoML service's ``__init__``) loads and verifies the artifact, the
feature plan and the readers; ``start`` (the service's start-up hook, on the worker's event loop)
opens the prediction log and the gRPC server and begins the warm-up; ``stop`` (shutdown hook,
after the HTTP server has finished its in-flight requests) drains gRPC, the batcher and the log.

``ready`` is the one readiness flag: ``/v2/health/ready``, OIP ``ServerReady``/``ModelReady`` and
admission all read it. It turns true only after a warm-up inference has read the online store and
produced a finite probability, and false again when draining. A warm-up that fails (store down)
is retried every second, so a pod becomes ready when its dependencies do.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import psutil

from loopline.errors import NotFound, Overloaded, Unauthorized, Unavailable
from loopline.features.online import OnlineFeatures
from loopline.features.online_plan import load_plan
from loopline.model.artifact import load_model, read_reference_columns
from loopline.serving import oip
from loopline.serving.batching import MicroBatcher
from loopline.serving.core import InferenceCore, Prediction, Submission
from loopline.serving.metrics import ServingMetrics
from loopline.serving.prediction_log import LogUnavailable, PredictionLog, Sink
from loopline.serving.schema import TIMESTAMP, InputSchema, Row
from loopline.serving.served import resolve_model
from loopline.settings import Settings

logger = logging.getLogger(__name__)
WARM_UP_RETRY_S = 1.0
WARM_UP_ROWS = 8
SELF_CHECK_ROWS = 2000


class Runtime:
    def __init__(
        self,
        settings: Settings,
        core: InferenceCore,
        log: PredictionLog,
        metrics: ServingMetrics,
        warm_up: list[Row],
    ) -> None:
        self.settings = settings
        self.core = core
        self.served = core.served
        self.schema = core.schema
        self.views = core.views
        self.metrics = metrics
        self.log = log
        self.batcher = MicroBatcher(core, settings.batch_max_size, settings.batch_wait_ms / 1000)
        self.ready = False
        self.in_flight = 0
        self._limit = (
            -(-settings.max_concurrency // settings.workers) if settings.max_concurrency else 0
        )
        self.server_metadata = oip.server_metadata()
        self.model_metadata = oip.model_metadata(self.served, self.schema, self.views)
        self._token = f"Bearer {settings.auth_token}".encode() if settings.auth_token else None
        self._warm_up_rows = warm_up
        self._warm_up: asyncio.Task[None] | None = None
        self._grpc: Any = None

    @classmethod
    def load(cls, settings: Settings) -> Runtime:
        import torch

        torch.set_num_threads(settings.serve_torch_threads)
        metrics = ServingMetrics.create()
        metrics.forget_dead_workers()
        served = resolve_model(settings)
        model = load_model(served.path, served.sha256)
        plan = load_plan(settings, served.spec.feature_service)
        features = OnlineFeatures(plan, settings)
        schema = InputSchema.build(served.spec, plan)
        log = PredictionLog(
            settings.log_dir,
            fsync_ms=settings.prediction_log_fsync_ms,
            segment_bytes=settings.prediction_log_segment_bytes,
            max_pending=settings.prediction_log_max_pending,
            metrics=metrics,
            sink=_sink(settings, metrics),
        )
        core = InferenceCore(served, model, features, schema, log, metrics)
        reference = read_reference_columns(served.path, SELF_CHECK_ROWS)
        core.self_check(reference)
        metrics.model_info.labels(served.name, served.version, served.sha256).set(1)
        return cls(settings, core, log, metrics, _warm_up_rows(reference, schema))

    async def start(self) -> None:
        from loopline.serving.grpc_server import start_grpc_server

        self.log.open()
        self._grpc = start_grpc_server(self, asyncio.get_running_loop())
        self._warm_up = asyncio.create_task(self._warm_up_until_ready())

    async def stop(self) -> None:
        """Drain: gRPC stops taking calls and finishes its own (the loop keeps serving them
        meanwhile), then the batcher is flushed and the log made durable."""
        if self._warm_up is not None:
            self._warm_up.cancel()
        if self._grpc is not None:
            stopped = self._grpc.stop(self.settings.shutdown_grace_s)
            await asyncio.to_thread(stopped.wait)
        self.ready = False
        await self.batcher.drain()
        self.core.features.close()
        await asyncio.to_thread(self.log.close, self.settings.shutdown_grace_s)
        self.metrics.close()

    def check_model(self, name: str, version: str | None = None) -> None:
        if name != self.served.name or version not in (None, "", self.served.version):
            wanted = f"{name}" + (f" version {version}" if version else "")
            raise NotFound(
                f"model {wanted} not found; serving {self.served.name} {self.served.version}"
            )

    def authorize(self, presented: bytes | None) -> None:
        """Check an inference call's ``Authorization`` value when a token is configured."""
        if self._token is not None and not hmac.compare_digest(presented or b"", self._token):
            raise Unauthorized("missing or invalid bearer token")

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Readiness, concurrency and log back-pressure, for every inference request."""
        if not self.ready:
            raise Unavailable("not ready: the model is warming up or the server is draining")
        if self._limit and self.in_flight >= self._limit:
            raise Overloaded(f"over capacity: {self.in_flight} requests in flight")
        if self.log.full:
            raise Unavailable("prediction log queue is full; the sink is failing or slow")
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def predict(self, rows: list[Row], endpoint: str) -> list[Prediction]:
        try:
            return await self.batcher.submit(Submission(rows, endpoint))
        except LogUnavailable as error:
            raise Unavailable(str(error)) from error

    async def _warm_up_until_ready(self) -> None:
        while True:
            try:
                lookup, probabilities = await self.core.score(self._warm_up_rows)
                failed = [v for v, states in lookup.status.items() if "fallback" in states]
                if failed:
                    raise RuntimeError(f"online store unavailable for {failed}")
                if not all(math.isfinite(p) for p in probabilities):
                    raise RuntimeError("the model produced a non-finite probability")
            except Exception as error:
                logger.warning("warm-up failed, retrying: %r", error)
                await asyncio.sleep(WARM_UP_RETRY_S)
                continue
            break
        # Everything loaded so far lives as long as the process: move it out of the garbage
        # collector's sight, so a full collection scans only what requests allocate.
        gc.collect()
        gc.freeze()
        self.ready = True
        started = psutil.Process().create_time()
        logger.info(
            "ready %.1f s after the worker started: serving %s %s",
            time.time() - started,
            self.served.name,
            self.served.version,
        )


def _sink(settings: Settings, metrics: ServingMetrics) -> Sink | None:
    if settings.prediction_log_sink == "file":
        return None
    from loopline.serving.log_shipper import RedisShipper

    url = settings.prediction_log_redis_url or settings.redis_url
    if url is None:
        raise ValueError("prediction_log_sink=redis needs LOOPLINE_PREDICTION_LOG_REDIS_URL")
    return RedisShipper(url, settings.prediction_log_stream, metrics)


def _warm_up_rows(reference: dict[str, list[Any]], schema: InputSchema) -> list[Row]:
    """The first rows of the reference sample, at their own request times."""
    stamps = reference[TIMESTAMP][:WARM_UP_ROWS]
    return [
        Row({n: schema.check(n, reference[n][i]) for n in schema.fields}, stamps[i], None)
        for i in range(len(stamps))
    ]
