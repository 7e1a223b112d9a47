"""One worker's data plane: the model, its features, the batcher, the log, and admission.

It knows no transport: ``worker`` puts the HTTP app and the gRPC server in front of it.
``Runtime.load`` (in the BentoML service's ``__init__``) loads and verifies the artifact, the
feature plan and the readers; ``start`` (on the worker's event loop) opens the prediction log
and begins the warm-up; ``stop`` (once the transports have finished their in-flight requests)
drains the batcher and the log.

``ready`` is the one readiness flag: ``/v2/health/ready``, BentoML's ``/readyz`` and OIP
``ServerReady``/``ModelReady`` read it. It turns true only after a warm-up inference has read the
online store and produced a finite probability, and false again as soon as the worker starts
draining (``drain``, on SIGTERM). Admission (``admitted``, see ``admission``) needs the warm-up
only: while draining, requests are still served until the transports stop accepting. A warm-up
that fails (store down) is retried every second, so a pod becomes ready when its dependencies do.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import psutil

from loopline.errors import NotFound, Unavailable, clip
from loopline.features.online import OnlineFeatures
from loopline.features.online_plan import load_plan
from loopline.model.artifact import read_reference_columns
from loopline.predictions import LogUnavailable, PredictionLog, RedisShipper, Sink
from loopline.serving.admission import Admission
from loopline.serving.batching import MicroBatcher
from loopline.serving.core import InferenceCore, Prediction
from loopline.serving.metrics import ServingMetrics
from loopline.serving.rollout_state import Models, RolloutWatcher, watches
from loopline.serving.schema import TIMESTAMP, InputSchema, Limits, Row, Submission
from loopline.serving.scorer import Scorer
from loopline.serving.served import ServedModel, resolve_model
from loopline.settings import Settings

logger = logging.getLogger(__name__)
WARM_UP_RETRY_S = 1.0
WARM_UP_ROWS = 8


class Runtime:
    def __init__(
        self,
        settings: Settings,
        core: InferenceCore,
        log: PredictionLog,
        metrics: ServingMetrics,
        warm_up: list[Row],
        watcher: RolloutWatcher | None = None,
    ) -> None:
        self.settings = settings
        self.core = core
        self.schema = core.schema
        self.views = core.views
        self.metrics = metrics
        self.log = log
        self.batcher = MicroBatcher(core, settings.batch_max_size, settings.batch_wait_ms / 1000)
        self.warm = False
        self.draining = False
        limit = -(-settings.max_concurrency // settings.workers) if settings.max_concurrency else 0
        self.admission = Admission(
            max_rows=settings.max_queued_rows,
            deadline_s=(settings.queue_deadline_ms + 2 * settings.batch_wait_ms) / 1000,
            max_requests=limit,
        )
        self._warm_up_rows = warm_up
        self._warm_up: asyncio.Task[None] | None = None
        self._watcher = watcher

    @classmethod
    def load(cls, settings: Settings) -> Runtime:
        import torch

        torch.set_num_threads(settings.serve_torch_threads)
        metrics = ServingMetrics.create()
        metrics.forget_dead_workers()
        served = resolve_model(settings)
        champion = Scorer.load(served)
        plan = load_plan(settings, served.spec.feature_service)
        features = OnlineFeatures(plan, settings)
        schema = InputSchema.build(served.spec, plan, Limits.of(settings))

        def compatible(other: ServedModel) -> None:
            """A challenger must read the same features and request fields."""
            if other.spec.feature_service != served.spec.feature_service or (
                InputSchema.build(other.spec, plan, schema.limits).fields != schema.fields
            ):
                raise ValueError(
                    f"{other.name} {other.version} reads other features or request fields "
                    f"than {served.version}: it cannot be served beside it"
                )

        models = Models(champion)
        watcher = None
        if watches(settings):
            watcher = RolloutWatcher(settings, compatible, models)
            models = watcher.load()
        log = PredictionLog(
            settings.log_dir,
            fsync_ms=settings.prediction_log_fsync_ms,
            segment_bytes=settings.prediction_log_segment_bytes,
            max_pending=settings.prediction_log_max_pending,
            counters=metrics,
            sink=_sink(settings, metrics),
        )
        core = InferenceCore(models, features, schema, log, metrics)
        reference = read_reference_columns(served.path, WARM_UP_ROWS)
        metrics.model_info.labels(served.name, served.version, served.sha256).set(1)
        return cls(settings, core, log, metrics, _warm_up_rows(reference, schema), watcher)

    @property
    def served(self) -> ServedModel:
        """The champion now serving (it changes when a rollout promotes)."""
        return self.core.served

    @property
    def ready(self) -> bool:
        return self.warm and not self.draining

    def drain(self) -> None:
        """Readiness turns false now (SIGTERM); requests are served until the transports stop."""
        self.draining = True

    async def start(self) -> None:
        self.log.open()
        self._warm_up = asyncio.create_task(self._warm_up_until_ready())
        if self._watcher is not None:
            self._watcher.start(self._swap)

    def _swap(self, models: Models) -> None:
        """Batches begun from now on are scored with ``models``; those in flight are not."""
        before, self.core.models = self.core.served, models
        champion = models.champion.served
        if before.version != champion.version:
            self.metrics.model_info.labels(before.name, before.version, before.sha256).set(0)
        self.metrics.model_info.labels(champion.name, champion.version, champion.sha256).set(1)

    def on_warm(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the event loop once the warm-up has succeeded (after
        ``start``); never if it is cancelled first."""
        assert self._warm_up is not None, "start() first"

        def done(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is None:
                callback()

        self._warm_up.add_done_callback(done)

    async def stop(self) -> None:
        """Drain, once no transport takes requests: the batcher is flushed and the log made
        durable."""
        if self._warm_up is not None:
            self._warm_up.cancel()
        if self._watcher is not None:
            self._watcher.stop()
        self.draining = True
        await self.batcher.drain()
        self.core.features.close()
        await asyncio.to_thread(self.log.close, self.settings.shutdown_grace_s)
        self.metrics.close()

    def check_model(self, name: str, version: str | None = None) -> None:
        if name != self.served.name or version not in (None, "", self.served.version):
            wanted = clip(name) + (f" version {clip(version)}" if version else "")
            raise NotFound(
                f"model {wanted} not found; serving {self.served.name} {self.served.version}"
            )

    def check_admission(self, rows: int = 1) -> None:
        """Raise what ``admitted`` would raise now: 503 (not warmed up, log queue full) or 429
        (the admission queue is full in rows or in time). Cheap: HTTP calls it once the body
        is in, before parsing it."""
        self._check_serving()
        self.admission.check(rows)

    @contextlib.asynccontextmanager
    async def admitted(self, rows: int = 1) -> AsyncIterator[None]:
        """Readiness, admission (rows and time) and log back-pressure, for every inference
        request, once its body is in: its ``rows`` count in the queue until it is answered."""
        self._check_serving()
        with self.admission.admit(rows):
            yield

    def _check_serving(self) -> None:
        if not self.warm:
            raise Unavailable("not ready: the model is warming up")
        if self.log.full:
            raise Unavailable("prediction log queue is full; the sink is failing or slow")

    async def predict(self, rows: list[Row], endpoint: str) -> list[Prediction]:
        try:
            return await self.batcher.submit(Submission(rows, endpoint))
        except LogUnavailable as error:
            raise Unavailable(str(error)) from error

    async def serve(self, rows: list[Row], endpoint: str) -> list[Prediction]:
        """Admit ``rows`` (or raise at once) and predict them."""
        async with self.admitted(len(rows)):
            return await self.predict(rows, endpoint)

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
        self.warm = True
        started = psutil.Process().create_time()
        logger.info(
            "ready %.1f s after the worker started: serving %s %s",
            time.time() - started,
            self.served.name,
            self.served.version,
        )


def _sink(settings: Settings, metrics: ServingMetrics) -> Sink | None:
    metrics.expose_log_sink(settings.prediction_log_sink)
    url = settings.prediction_log_url
    if url is None:
        return None
    return RedisShipper(url, settings.prediction_log_stream, metrics)


def _warm_up_rows(reference: dict[str, list[Any]], schema: InputSchema) -> list[Row]:
    """The first rows of the reference sample, at their own request times."""
    stamps = reference[TIMESTAMP][:WARM_UP_ROWS]
    return [
        Row({n: schema.check(n, reference[n][i]) for n in schema.fields}, stamps[i], None)
        for i in range(len(stamps))
    ]
