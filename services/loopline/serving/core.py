"""The inference core every protocol shares: rows in, predictions out, records logged first.

A micro-batch is served in two stages (``batching`` drives them). ``begin`` sends one
online-feature read for all its rows and returns at once: the event loop goes on parsing
requests, and the next batch's read may go out, while Redis answers. ``complete`` then runs the
artifact's preprocessing and one network call (in numpy, see ``model.numpy_network``) of the
``Models`` the batch began with (the champion, and a challenger during a rollout:
``rollout_state``), and appends the batch to the prediction log before any of its requests is
answered. Both run on the
event loop thread: the network is small, so handing it to a thread would cost more than it
saves (docs/decisions.md, §10).

Each request of a batch has its own outcome: its predictions, or the ``RequestError`` it alone
is answered with (``isolation``), so a row that cannot be served or logged fails only its own
request; the rest of the batch is served and logged as usual.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loopline.errors import RequestError
from loopline.features.online import Lookup, OnlineFeatures, PendingLookup, Status
from loopline.predictions import PredictionLog, PredictionRecord, encode
from loopline.serving import isolation
from loopline.serving.metrics import ServingMetrics
from loopline.serving.rollout_state import Models, Scored
from loopline.serving.schema import InputSchema, Row, Submission
from loopline.serving.served import ServedModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prediction:
    request_id: str
    probability: float
    decision: bool
    status: dict[str, Status]
    version: str
    """The model version that answered (the challenger's for a canary's rows)."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A batch's rows with their online features. ``failed``: the requests (by position in
    the batch) whose feature lookup raised, and their errors; their rows are not in ``rows``."""

    rows: list[Row]
    lookup: Lookup
    models: Models
    """What the batch is scored with: the models in place when it began."""
    failed: dict[int, RequestError] = field(default_factory=dict)


Outcome = list[Prediction] | RequestError
"""What one request of a batch is answered with."""


class InferenceCore:
    def __init__(
        self,
        models: Models,
        features: OnlineFeatures,
        schema: InputSchema,
        log: PredictionLog,
        metrics: ServingMetrics,
    ) -> None:
        self.models = models
        """Replaced between batches when the rollout plan changes (``RolloutWatcher``)."""
        self.schema = schema
        self._fields = list(schema.fields)
        self.features = features
        self._log = log
        self._metrics = metrics
        self.views = [view.name for view in features.plan.views]
        self._feature_names = features.feature_names
        self._scores: dict[str, Any] = {}
        """The score histogram's child per version that answered."""
        self._status = {
            (view, status): metrics.feature_status.labels(view, status)
            for view in self.views
            for status in ("fresh", "stale", "missing", "fallback")
        }

    @property
    def served(self) -> ServedModel:
        """The champion: what the server answers as, outside a canary's rows."""
        return self.models.champion.served

    def begin(self, batch: Sequence[Submission]) -> Awaitable[Fetched]:
        """Send the feature read of every row of ``batch`` now; await the result for them."""
        rows = [row for submission in batch for row in submission.rows]
        started = time.perf_counter()
        models = self.models
        try:
            pending = self.features.begin([r.fields for r in rows], [r.as_of for r in rows])
        except Exception:
            logger.warning("a batch's feature read raised: reading it request by request")
            return self._one_by_one(batch, models)
        return self._fetched(batch, rows, pending, started, models)

    def complete(self, batch: Sequence[Submission], fetched: Fetched) -> list[Outcome]:
        """Predict and log every request of ``batch`` that can be; raises ``LogUnavailable``
        if they could not be logged."""
        rows, lookup = fetched.rows, fetched.lookup
        failed: dict[int, RequestError] = dict(fetched.failed)
        served = [k for k in range(len(batch)) if k not in failed]
        bounds = isolation.spans([len(batch[k].rows) for k in served])
        ids = _request_ids(rows)
        scored = self._scored(
            fetched.models, rows, lookup, ids, dict(zip(served, bounds, strict=True)), failed
        )
        now = datetime.now(UTC)
        clock = time.perf_counter()
        predictions = [
            Prediction(
                request_id,
                answer.probability,
                answer.decision,
                {view: lookup.status[view][i] for view in self.views},
                answer.version,
            )
            for i, (request_id, answer) in enumerate(zip(ids, scored, strict=True))
        ]
        outcomes: dict[int, Outcome] = {}
        lines: list[bytes] = []
        for k, (start, stop) in zip(served, bounds, strict=True):
            if k in failed:
                continue
            latency_ms = (clock - batch[k].received) * 1000
            try:
                lines += [
                    self._line(
                        predictions[i],
                        scored[i],
                        rows[i],
                        batch[k].endpoint,
                        now,
                        latency_ms,
                        i,
                        lookup,
                    )
                    for i in range(start, stop)
                ]
            except _Unloggable as error:
                failed[k] = isolation.record_failed(
                    rows[error.row],
                    self.schema.id_field,
                    error.row - start,
                    stop - start,
                    error.error,
                )
                continue
            outcomes[k] = predictions[start:stop]
        self._log.write(lines)
        if failed:
            for k, (start, stop) in zip(served, bounds, strict=True):
                if k in outcomes:
                    self._observe(isolation.sliced(lookup, start, stop), scored[start:stop])
        else:
            self._observe(lookup, scored)
        return [outcomes[k] if k in outcomes else failed[k] for k in range(len(batch))]

    async def score(self, rows: list[Row]) -> tuple[Lookup, list[float]]:
        """Features and probabilities of ``rows``, nothing logged (the warm-up)."""
        fetched = await self.begin([Submission(rows, "warm-up")])
        if fetched.failed:
            raise fetched.failed[0]
        champion = fetched.models.champion
        return fetched.lookup, champion.probabilities(rows, fetched.lookup, self._fields)

    async def _fetched(
        self,
        batch: Sequence[Submission],
        rows: list[Row],
        pending: PendingLookup,
        started: float,
        models: Models,
    ) -> Fetched:
        try:
            lookup = await self.features.finish(pending)
        except Exception:
            logger.warning("a batch's feature lookup raised: reading it request by request")
            return await self._one_by_one(batch, models)
        self._metrics.feature_lookup_duration.observe(time.perf_counter() - started)
        return Fetched(rows, lookup, models)

    async def _one_by_one(self, batch: Sequence[Submission], models: Models) -> Fetched:
        rows, lookup, failed = await isolation.lookup_one_by_one(
            self.features, batch, self._feature_names, self.views, self.schema.fields
        )
        return Fetched(rows, lookup, models, failed)

    def _scored(
        self,
        models: Models,
        rows: list[Row],
        lookup: Lookup,
        ids: list[str],
        bounds: dict[int, tuple[int, int]],
        failed: dict[int, RequestError],
    ) -> list[Scored]:
        """Answers of ``rows``; if the batch's preprocessing or network raises, each
        request's (``bounds``: their row ranges) separately, adding those that fail to
        ``failed`` (their answers are NaN, never given)."""
        started = time.perf_counter()
        fields = self._fields
        try:
            scored = models.score(rows, lookup, ids, fields)
        except Exception:
            logger.warning("a batch's preprocessing raised: serving it request by request")
            unserved = Scored(math.nan, False, models.champion.version)
            scored = [unserved] * len(rows)
            for k, (start, stop) in bounds.items():

                def attempt(part: Sequence[Row], offset: int, start: int = start) -> list[Scored]:
                    at = start + offset
                    part_lookup = isolation.sliced(lookup, at, at + len(part))
                    return models.score(part, part_lookup, ids[at : at + len(part)], fields)

                try:
                    scored[start:stop] = attempt(rows[start:stop], 0)
                except Exception as error:
                    failed[k] = isolation.preprocessing_failed(rows[start:stop], attempt, error)
        self._metrics.model_inference_duration.observe(time.perf_counter() - started)
        self._metrics.batch_size.observe(len(rows))
        return scored

    def _line(
        self,
        prediction: Prediction,
        scored: Scored,
        row: Row,
        endpoint: str,
        now: datetime,
        latency_ms: float,
        i: int,
        lookup: Lookup,
    ) -> bytes:
        """Row ``i``'s log line; ``_Unloggable`` if its record cannot be built or encoded."""
        try:
            record = PredictionRecord(
                request_id=prediction.request_id,
                timestamp=now,
                model=self.served.name,
                model_version=prediction.version,
                endpoint=endpoint,
                event_timestamp=datetime.fromtimestamp(row.as_of, UTC),
                id_field=self.schema.id_field,
                id_value=row.client_id,
                request=row.fields,
                features={name: lookup.values[name][i] for name in self._feature_names},
                feature_status=prediction.status,
                probability=prediction.probability,
                decision=prediction.decision,
                latency_ms=round(latency_ms, 3),
                shadow=scored.shadow,
            )
            return encode(record)
        except Exception as error:
            raise _Unloggable(i, error) from error

    def _observe(self, lookup: Lookup, scored: list[Scored]) -> None:
        for view in self.views:
            states = lookup.status[view]
            for status in set(states):
                self._status[view, status].inc(states.count(status))
        for answer in scored:
            histogram = self._scores.get(answer.version)
            if histogram is None:
                histogram = self._metrics.prediction_score.labels(answer.version)
                self._scores[answer.version] = histogram
            histogram.observe(answer.probability)


class _Unloggable(Exception):
    """Row ``row`` of a batch has no log line: ``error`` was raised building or encoding it."""

    def __init__(self, row: int, error: Exception) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.row, self.error = row, error


def _request_ids(rows: Sequence[Row]) -> list[str]:
    """Each row's id: the caller's (``Row.request_id``), or a random 128-bit id as 32 hex digits
    (``uuid4().hex``'s form), all from one ``os.urandom`` call for the batch rather than a
    system call per row."""
    digits = os.urandom(16 * len(rows)).hex()
    return [row.request_id or digits[32 * i : 32 * (i + 1)] for i, row in enumerate(rows)]
