"""The drift statistics the monitor decides on, computed without Evidently (the fast path).

Evidently 0.7 computes a column's drift from the raw rows of both samples; on a million logged
rows it takes minutes, mostly outside the statistics themselves (docs/decisions.md, "Monitoring:
drift statistics outside Evidently"). The two statistics the monitor uses are functions of each
sample's *distinct values and their counts* alone, so they are computed from those, exactly:

- numeric columns, ``wasserstein`` (Evidently's "Wasserstein distance (normed)"): the first
  Wasserstein distance ``∫|F_ref(x) - F_cur(x)| dx`` over the empirical CDFs, divided by
  ``max(std(reference), 0.001)``. An empirical CDF is a step function whose steps are at the
  distinct values, each as high as its count over the total: the value counts determine it
  entirely, so the integral summed over the merged distinct values is the very integral scipy's
  ``wasserstein_distance`` sums over the merged raw values (equal up to float rounding).
- categorical columns, ``jensenshannon``: Evidently's distance of the two samples' value
  shares over the union of values seen (``get_binned_data`` with categorical columns), which
  are the value counts over the totals.

Both drop nulls and infinities first, as Evidently does. The reference side (a few thousand
rows of the champion's training sample) is summarised once (``Summary``). This module is the only
place the monitor goes around Evidently; ``tests/unit/monitoring/test_stattests.py`` holds it
to Evidently's own answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.spatial import distance

ColumnKind = Literal["numeric", "categorical"]
METHODS: dict[ColumnKind, str] = {"numeric": "wasserstein", "categorical": "jensenshannon"}
"""Evidently's name of the method each kind of column is tested with."""
MIN_NORM = 0.001
"""Evidently's floor on the reference standard deviation the distance is divided by."""


@dataclass(frozen=True)
class Summary:
    """One column of a sample as its distinct values and their counts (nulls dropped)."""

    kind: ColumnKind
    values: np.ndarray
    """Sorted distinct values (float64 for numeric columns, str for categorical ones)."""
    counts: np.ndarray
    std: float
    """Population standard deviation of the sample (numeric columns; 0 otherwise)."""

    @property
    def rows(self) -> int:
        return int(self.counts.sum())


def summarise(column: pd.Series | np.ndarray, kind: ColumnKind) -> Summary:
    """``column``'s distinct values and counts; categorical values are compared as text."""
    if kind == "numeric":
        numbers = pd.to_numeric(pd.Series(column), errors="coerce").to_numpy(np.float64)
        numbers = numbers[np.isfinite(numbers)]
        values, counts = np.unique(numbers, return_counts=True)
        std = _std(values, counts)
        return Summary(kind, values, counts, std)
    text = pd.Series(column).dropna().astype(str)
    shares = text.value_counts(sort=False).sort_index()
    return Summary(kind, shares.index.to_numpy(str), shares.to_numpy(np.int64), 0.0)


def drift_score(reference: Summary, current: Summary) -> float:
    """The drift of ``current`` from ``reference``: a distance, 0 when they are alike."""
    if reference.rows == 0 or current.rows == 0:
        raise ValueError("a drift score needs at least one value on each side")
    if reference.kind == "numeric":
        return wasserstein_normed(reference, current)
    return jensen_shannon(reference, current)


def wasserstein_normed(reference: Summary, current: Summary) -> float:
    support = np.union1d(reference.values, current.values)
    gaps = np.diff(support)
    reference_cdf = _cdf_at(reference, support[:-1])
    current_cdf = _cdf_at(current, support[:-1])
    distance_value = float(np.sum(np.abs(reference_cdf - current_cdf) * gaps))
    return distance_value / max(reference.std, MIN_NORM)


def jensen_shannon(reference: Summary, current: Summary) -> float:
    keys = np.union1d(reference.values, current.values)
    return float(distance.jensenshannon(_shares(reference, keys), _shares(current, keys)))


def _cdf_at(summary: Summary, points: np.ndarray) -> np.ndarray:
    """The empirical CDF (share of values ≤ x) at each of ``points``."""
    cumulative = np.concatenate([[0], np.cumsum(summary.counts)])
    return cumulative[np.searchsorted(summary.values, points, side="right")] / summary.rows


def _shares(summary: Summary, keys: np.ndarray) -> np.ndarray:
    shares = np.zeros(len(keys))
    shares[np.searchsorted(keys, summary.values)] = summary.counts / summary.rows
    return shares


def _std(values: np.ndarray, counts: np.ndarray) -> float:
    total = counts.sum()
    if total == 0:
        return 0.0
    mean = float(np.dot(values, counts) / total)
    return float(np.sqrt(np.dot((values - mean) ** 2, counts) / total))
