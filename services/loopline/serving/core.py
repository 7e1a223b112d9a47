"""The inference core every protocol shares: rows in, predictions out, records logged first.

A micro-batch is served in two stages (``batching`` drives them). ``begin`` sends one
online-feature read for all its rows and returns at once: the event loop goes on parsing
requests, and the next batch's read may go out, while Redis answers. ``complete`` then runs the
artifact's preprocessing and one network call (in numpy, see ``model.numpy_network``), and
appends the batch to the prediction log before any of its requests is answered. Both run on the
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

import numpy as np
import torch

from loopline.errors import RequestError
from loopline.features.online import Lookup, OnlineFeatures, PendingLookup, Status
from loopline.model.artifact import TrainedModel
from loopline.model.numpy_network import NumpyTabularNet
from loopline.predictions import PredictionLog, PredictionRecord, encode
from loopline.serving import isolation
from loopline.serving.metrics import ServingMetrics
from loopline.serving.schema import TIMESTAMP, InputSchema, Row, Submission
from loopline.serving.served import ServedModel

logger = logging.getLogger(__name__)

SELF_CHECK_TOLERANCE = 1e-6
"""Largest difference in probability allowed between the numpy forward and PyTorch's."""


@dataclass(frozen=True, slots=True)
class Prediction:
    request_id: str
    probability: float
    decision: bool
    status: dict[str, Status]


@dataclass(frozen=True, slots=True)
class Fetched:
    """A batch's rows with their online features. ``failed``: the requests (by position in
    the batch) whose feature lookup raised, and their errors; their rows are not in ``rows``."""

    rows: list[Row]
    lookup: Lookup
    failed: dict[int, RequestError] = field(default_factory=dict)


Outcome = list[Prediction] | RequestError
"""What one request of a batch is answered with."""


class InferenceCore:
    def __init__(
        self,
        served: ServedModel,
        model: TrainedModel,
        features: OnlineFeatures,
        schema: InputSchema,
        log: PredictionLog,
        metrics: ServingMetrics,
    ) -> None:
        self.served = served
        self.schema = schema
        self._network = model.network.eval()
        self._preprocessor = model.preprocessor
        self._forward = NumpyTabularNet(model.network)
        self.features = features
        self._log = log
        self._metrics = metrics
        self._threshold = served.spec.decision_threshold
        self.views = [view.name for view in features.plan.views]
        self._feature_names = features.feature_names
        self._score = metrics.prediction_score.labels(served.version)
        self._status = {
            (view, status): metrics.feature_status.labels(view, status)
            for view in self.views
            for status in ("fresh", "stale", "missing", "fallback")
        }

    def begin(self, batch: Sequence[Submission]) -> Awaitable[Fetched]:
        """Send the feature read of every row of ``batch`` now; await the result for them."""
        rows = [row for submission in batch for row in submission.rows]
        started = time.perf_counter()
        try:
            pending = self.features.begin([r.fields for r in rows], [r.as_of for r in rows])
        except Exception:
            logger.warning("a batch's feature read raised: reading it request by request")
            return self._one_by_one(batch)
        return self._fetched(batch, rows, pending, started)

    def complete(self, batch: Sequence[Submission], fetched: Fetched) -> list[Outcome]:
        """Predict and log every request of ``batch`` that can be; raises ``LogUnavailable``
        if they could not be logged."""
        rows, lookup = fetched.rows, fetched.lookup
        failed: dict[int, RequestError] = dict(fetched.failed)
        served = [k for k in range(len(batch)) if k not in failed]
        bounds = isolation.spans([len(batch[k].rows) for k in served])
        probabilities = self._scored(rows, lookup, dict(zip(served, bounds, strict=True)), failed)
        now = datetime.now(UTC)
        predictions = [
            Prediction(
                request_id,
                probability,
                probability >= self._threshold,
                {view: lookup.status[view][i] for view in self.views},
            )
            for i, (request_id, probability) in enumerate(
                zip(_request_ids(rows), probabilities, strict=True)
            )
        ]
        outcomes: dict[int, Outcome] = {}
        lines: list[bytes] = []
        for k, (start, stop) in zip(served, bounds, strict=True):
            if k in failed:
                continue
            try:
                lines += [
                    self._line(predictions[i], rows[i], batch[k].endpoint, now, lookup, i)
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
                    self._observe(isolation.sliced(lookup, start, stop), probabilities[start:stop])
        else:
            self._observe(lookup, probabilities)
        return [outcomes[k] if k in outcomes else failed[k] for k in range(len(batch))]

    async def score(self, rows: list[Row]) -> tuple[Lookup, list[float]]:
        """Features and probabilities of ``rows``, nothing logged (the warm-up)."""
        fetched = await self.begin([Submission(rows, "warm-up")])
        if fetched.failed:
            raise fetched.failed[0]
        return fetched.lookup, self._probabilities(rows, fetched.lookup)

    async def _fetched(
        self, batch: Sequence[Submission], rows: list[Row], pending: PendingLookup, started: float
    ) -> Fetched:
        try:
            lookup = await self.features.finish(pending)
        except Exception:
            logger.warning("a batch's feature lookup raised: reading it request by request")
            return await self._one_by_one(batch)
        self._metrics.feature_lookup_duration.observe(time.perf_counter() - started)
        return Fetched(rows, lookup)

    async def _one_by_one(self, batch: Sequence[Submission]) -> Fetched:
        rows, lookup, failed = await isolation.lookup_one_by_one(
            self.features, batch, self._feature_names, self.views, self.schema.fields
        )
        return Fetched(rows, lookup, failed)

    def _scored(
        self,
        rows: list[Row],
        lookup: Lookup,
        bounds: dict[int, tuple[int, int]],
        failed: dict[int, RequestError],
    ) -> list[float]:
        """Probabilities of ``rows``; if the batch's preprocessing or network raises, each
        request's (``bounds``: their row ranges) separately, adding those that fail to
        ``failed`` (their probabilities are NaN, never answered)."""
        started = time.perf_counter()
        try:
            probabilities = self._probabilities(rows, lookup)
        except Exception:
            logger.warning("a batch's preprocessing raised: serving it request by request")
            probabilities = [math.nan] * len(rows)
            for k, (start, stop) in bounds.items():

                def attempt(part: Sequence[Row], offset: int, start: int = start) -> list[float]:
                    at = start + offset
                    return self._probabilities(part, isolation.sliced(lookup, at, at + len(part)))

                try:
                    probabilities[start:stop] = attempt(rows[start:stop], 0)
                except Exception as error:
                    failed[k] = isolation.preprocessing_failed(rows[start:stop], attempt, error)
        self._metrics.model_inference_duration.observe(time.perf_counter() - started)
        self._metrics.batch_size.observe(len(rows))
        return probabilities

    def _probabilities(self, rows: Sequence[Row], lookup: Lookup) -> list[float]:
        if not rows:
            return []
        columns: dict[str, Any] = {n: [r.fields[n] for r in rows] for n in self.schema.fields}
        columns.update(lookup.values)
        ids, numeric = self._preprocessor.transform(columns, len(rows))
        probabilities: list[float] = self._forward(ids, numeric).astype(np.float64).tolist()
        return probabilities

    def self_check(self, reference: dict[str, list[Any]]) -> None:
        """Refuse to serve unless the numpy forward gives the network's own probabilities
        (within float32 rounding) on ``reference``, rows of the artifact's reference sample as
        columns (``ValueError`` otherwise)."""
        ids, numeric = self._preprocessor.transform(reference, len(reference[TIMESTAMP]))
        with torch.inference_mode():
            logits = self._network(torch.from_numpy(ids), torch.from_numpy(numeric))
            expected = torch.sigmoid(logits).numpy()
        served = self._forward(ids, numeric)
        if not np.allclose(served, expected, rtol=0, atol=SELF_CHECK_TOLERANCE):
            difference = float(np.abs(served - expected).max())
            raise ValueError(f"the numpy forward differs from the network's by {difference:.2g}")

    def _line(
        self, prediction: Prediction, row: Row, endpoint: str, now: datetime, lookup: Lookup, i: int
    ) -> bytes:
        """Row ``i``'s log line; ``_Unloggable`` if its record cannot be built or encoded."""
        try:
            return encode(self._record(prediction, row, endpoint, now, lookup, i))
        except Exception as error:
            raise _Unloggable(i, error) from error

    def _record(
        self, prediction: Prediction, row: Row, endpoint: str, now: datetime, lookup: Lookup, i: int
    ) -> PredictionRecord:
        return PredictionRecord(
            request_id=prediction.request_id,
            timestamp=now,
            model=self.served.name,
            model_version=self.served.version,
            endpoint=endpoint,
            event_timestamp=datetime.fromtimestamp(row.as_of, UTC),
            id_field=self.schema.id_field,
            id_value=row.client_id,
            request=row.fields,
            features={name: lookup.values[name][i] for name in self._feature_names},
            feature_status=prediction.status,
            probability=prediction.probability,
            decision=prediction.decision,
        )

    def _observe(self, lookup: Lookup, probabilities: list[float]) -> None:
        for view in self.views:
            states = lookup.status[view]
            for status in set(states):
                self._status[view, status].inc(states.count(status))
        for probability in probabilities:
            self._score.observe(probability)


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
