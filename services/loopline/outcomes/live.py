"""Live model performance per model version, over sliding windows of outcome time.

A window of ``W`` ending at the latest outcome joined (world time, so a replay of 2013 reads as
it did then) holds the labelled predictions whose outcome became known in ``(latest - W,
latest]``. Rows enter the windows when they are written to the labelled dataset, so a scrape
and the dataset agree: recomputing a gauge from the parquet gives the same number. Values are
computed at scrape time from the rows in the window (a few thousand a day), never
approximated: ROC AUC (Mann-Whitney, ties counted half), log loss (probabilities clipped as
scikit-learn clips them), expected calibration error (equal-width bins), precision and recall
of the decisions at the spec's threshold, and the mean label delay. A shadow challenger's rows
(``Joined.shadow``) count for its own version, so both versions of a shadow rollout have gauges.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loopline.outcomes.dataset import Joined

CALIBRATION_BINS = 10
GAUGES = {
    "loopline_live_roc_auc": "ROC AUC of the labelled predictions in the window.",
    "loopline_live_log_loss": "Log loss of the labelled predictions in the window.",
    "loopline_live_calibration_error": (
        f"Expected calibration error ({CALIBRATION_BINS} equal-width bins) in the window."
    ),
    "loopline_live_precision": "Precision of the decisions at the spec's threshold.",
    "loopline_live_recall": "Recall of the decisions at the spec's threshold.",
    "loopline_live_positive_rate": "Share of the labelled predictions whose label is 1.",
    "loopline_live_label_delay_seconds": "Mean time from request to label (world time).",
    "loopline_live_labelled": "Labelled predictions in the window.",
}


def window_label(window: timedelta) -> str:
    hours = window.total_seconds() / 3600
    return f"{hours:g}h"


def roc_auc(labels: NDArray[np.int64], scores: NDArray[np.float64]) -> float:
    """The probability that a positive outranks a negative (NaN without both classes)."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = average_ranks(scores)
    rank_sum = float(ranks[labels == 1].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def average_ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """1-based ranks, ties given the mean of the ranks they span (``scipy.stats.rankdata``'s
    default, which a test holds this to; scipy's import alone took 1.3 s of every process that
    imports the join, ``loopline replay`` among them)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return ranks


def log_loss(labels: NDArray[np.int64], scores: NDArray[np.float64]) -> float:
    eps = np.finfo(scores.dtype).eps
    p = np.clip(scores, eps, 1 - eps)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log1p(-p)))


def calibration_error(labels: NDArray[np.int64], scores: NDArray[np.float64]) -> float:
    bins = np.minimum((scores * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
    total = 0.0
    for b in np.unique(bins):
        inside = bins == b
        total += abs(float(scores[inside].mean()) - float(labels[inside].mean())) * inside.sum()
    return total / len(labels)


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def window_metrics(
    labels: NDArray[np.int64],
    scores: NDArray[np.float64],
    delays: NDArray[np.float64],
    threshold: float,
) -> dict[str, float]:
    """Every gauge's value for one window's rows (NaN where a metric is undefined)."""
    if len(labels) == 0:
        nan = math.nan
        return {name: nan for name in GAUGES} | {"loopline_live_labelled": 0.0}
    decided = scores >= threshold
    hits = int((decided & (labels == 1)).sum())
    return {
        "loopline_live_roc_auc": roc_auc(labels, scores),
        "loopline_live_log_loss": log_loss(labels, scores),
        "loopline_live_calibration_error": calibration_error(labels, scores),
        "loopline_live_precision": _ratio(hits, int(decided.sum())),
        "loopline_live_recall": _ratio(hits, int(labels.sum())),
        "loopline_live_positive_rate": float(labels.mean()),
        "loopline_live_label_delay_seconds": float(delays.mean()),
        "loopline_live_labelled": float(len(labels)),
    }


class LivePerformance(Collector):
    """The live gauges, per model version and window, computed when scraped."""

    def __init__(self, windows: Sequence[timedelta], threshold: float) -> None:
        if not windows:
            raise ValueError("at least one window is needed")
        self.windows = sorted(windows)
        self.threshold = threshold
        self._lock = threading.Lock()
        self._rows: dict[str, deque[tuple[datetime, float, int, float]]] = defaultdict(deque)
        self.latest: datetime | None = None
        """The latest outcome time added: where every window ends."""

    def add(self, joined: Iterable[Joined]) -> None:
        """Take the labelled ones of ``joined`` (just written to the dataset)."""
        with self._lock:
            for item in joined:
                if item.outcome_timestamp is None:
                    continue
                if self.latest is None or item.outcome_timestamp > self.latest:
                    self.latest = item.outcome_timestamp
                if item.label is None:
                    continue
                delay = item.label_delay_s
                assert delay is not None
                self._rows[item.record.model_version].append(
                    (item.outcome_timestamp, item.record.probability, item.label, delay)
                )
            self._prune()

    def _prune(self) -> None:
        if self.latest is None:
            return
        oldest = self.latest - self.windows[-1]
        for rows in self._rows.values():
            while rows and rows[0][0] <= oldest:
                rows.popleft()

    def snapshot(self) -> dict[tuple[str, str], dict[str, float]]:
        """Every gauge's value by (model version, window label)."""
        with self._lock:
            latest = self.latest
            rows = {version: list(kept) for version, kept in self._rows.items()}
        values = {}
        for version, kept in rows.items():
            for window in self.windows:
                assert latest is not None
                inside = [r for r in kept if r[0] > latest - window]
                values[version, window_label(window)] = window_metrics(
                    np.array([r[2] for r in inside], dtype=np.int64),
                    np.array([r[1] for r in inside], dtype=np.float64),
                    np.array([r[3] for r in inside], dtype=np.float64),
                    self.threshold,
                )
        return values

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot()
        for name, documentation in GAUGES.items():
            family = GaugeMetricFamily(name, documentation, labels=["model_version", "window"])
            for (version, window), values in sorted(snapshot.items()):
                family.add_metric([version, window], values[name])
            yield family
