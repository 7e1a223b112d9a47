"""The rollout's statistical rule: promote, roll back or wait, on labelled live predictions.

The comparison is the challenger's ROC AUC minus the champion's, ``Δ``, with a 95% percentile
bootstrap interval ``[lo, hi]`` (``bootstrap`` resamples, a fixed seed so that a decision can be
recomputed). In shadow both versions scored the same requests: the bootstrap is paired (one
resample of request ids for both), which removes the requests' own difficulty from ``Δ``'s
variance. In canary the versions answered different requests: each is resampled on its own.

1. Too few: either version has fewer than ``min_labelled`` labelled predictions, or fewer
   than ``min_per_class`` of either label → wait.
2. Guards (roll back whatever the AUC says): the share of answers served with a ``fallback``
   feature status rose by more than ``max_fallback_increase``; in canary, the challenger's
   p99 latency exceeds ``max_p99_ratio`` times the champion's + ``p99_slack_ms``.
3. ``hi < 0``: worse with 95% confidence → roll back.
4. ``lo > -margin``: not worse than the champion by more than the margin → promote.
5. Otherwise undecided: wait, until either version has ``max_labelled`` labelled
   predictions, then roll back (the champion stays: there is no evidence for the change).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from loopline.outcomes.live import roc_auc

Verdict = Literal["promote", "roll-back", "wait"]
SEED = 20261201


@dataclass(frozen=True)
class Thresholds:
    min_labelled: int = 500
    min_per_class: int = 20
    max_labelled: int = 20000
    auc_margin: float = 0.01
    bootstrap: int = 2000
    max_fallback_increase: float = 0.01
    max_p99_ratio: float = 1.5
    p99_slack_ms: float = 5.0


@dataclass(frozen=True)
class Sample:
    """One version's live predictions in the rollout: labelled ones for the AUC (``ids`` to
    pair them), and every answer's fallback flag and latency for the guards."""

    ids: NDArray[np.str_]
    labels: NDArray[np.int64]
    scores: NDArray[np.float64]
    fallback: NDArray[np.bool_]
    latency_ms: NDArray[np.float64]

    @property
    def labelled(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reasons: list[str]
    figures: dict[str, float | int | str | None] = field(default_factory=dict)


def judge(champion: Sample, challenger: Sample, paired: bool, limits: Thresholds) -> Judgement:
    figures: dict[str, float | int | str | None] = {
        "champion_labelled": champion.labelled,
        "challenger_labelled": challenger.labelled,
        "paired": int(paired),
        "auc_margin": limits.auc_margin,
        "min_labelled": limits.min_labelled,
    }
    short = [
        f"the {role} has {what}"
        for role, sample in (("champion", champion), ("challenger", challenger))
        for what in _shortfall(sample, limits)
    ]
    if short:
        return Judgement("wait", short, figures)
    guards = _guards(champion, challenger, paired, limits, figures)
    if guards:
        return Judgement("roll-back", guards, figures)
    if paired:
        champion, challenger = _paired(champion, challenger)
        figures["paired_labelled"] = champion.labelled
    delta, low, high = _auc_difference(champion, challenger, paired, limits.bootstrap)
    figures |= {
        "champion_auc": roc_auc(champion.labels, champion.scores),
        "challenger_auc": roc_auc(challenger.labels, challenger.scores),
        "auc_difference": delta,
        "auc_difference_low": low,
        "auc_difference_high": high,
    }
    interval = f"ROC AUC difference {delta:+.4f} (95% interval {low:+.4f} to {high:+.4f})"
    if high < 0:
        return Judgement("roll-back", [f"the challenger is worse: {interval}"], figures)
    if low > -limits.auc_margin:
        reason = f"the challenger is not worse by more than {limits.auc_margin}: {interval}"
        return Judgement("promote", [reason], figures)
    most = max(champion.labelled, challenger.labelled)
    if most >= limits.max_labelled:
        reason = f"undecided after {most} labelled predictions: {interval}; the champion stays"
        return Judgement("roll-back", [reason], figures)
    return Judgement("wait", [f"undecided so far: {interval}"], figures)


def _shortfall(sample: Sample, limits: Thresholds) -> list[str]:
    if sample.labelled < limits.min_labelled:
        return [f"{sample.labelled} labelled predictions (needs {limits.min_labelled})"]
    positives = int(sample.labels.sum())
    fewest = min(positives, sample.labelled - positives)
    if fewest < limits.min_per_class:
        return [f"{fewest} predictions of one label (needs {limits.min_per_class} of each)"]
    return []


def _guards(
    champion: Sample,
    challenger: Sample,
    paired: bool,
    limits: Thresholds,
    figures: dict[str, float | int | str | None],
) -> list[str]:
    reasons = []
    before, after = _mean(champion.fallback), _mean(challenger.fallback)
    figures |= {"champion_fallback_share": before, "challenger_fallback_share": after}
    if after - before > limits.max_fallback_increase:
        reasons.append(
            f"answers with a fallback feature status rose from {before:.2%} to {after:.2%} "
            f"(allowed: +{limits.max_fallback_increase:.2%})"
        )
    if paired:  # shadow: every answer was the champion's, so latency tells nothing apart
        return reasons
    fast, slow = _p99(champion.latency_ms), _p99(challenger.latency_ms)
    figures |= {"champion_p99_ms": fast, "challenger_p99_ms": slow}
    allowed = fast * limits.max_p99_ratio + limits.p99_slack_ms
    if not math.isnan(slow) and not math.isnan(fast) and slow > allowed:
        reasons.append(
            f"the challenger's p99 latency {slow:.1f} ms exceeds {limits.max_p99_ratio} times the "
            f"champion's {fast:.1f} ms + {limits.p99_slack_ms} ms"
        )
    return reasons


def _paired(champion: Sample, challenger: Sample) -> tuple[Sample, Sample]:
    """Both samples restricted to the request ids they share, in the same order."""
    _, left, right = np.intersect1d(champion.ids, challenger.ids, return_indices=True)
    return _take(champion, left), _take(challenger, right)


def _take(sample: Sample, index: NDArray[np.intp]) -> Sample:
    return Sample(
        sample.ids[index],
        sample.labels[index],
        sample.scores[index],
        sample.fallback,
        sample.latency_ms,
    )


def _auc_difference(
    champion: Sample, challenger: Sample, paired: bool, resamples: int
) -> tuple[float, float, float]:
    rng = np.random.default_rng(SEED)
    delta = roc_auc(challenger.labels, challenger.scores) - roc_auc(
        champion.labels, champion.scores
    )
    differences = []
    for _ in range(resamples):
        first = rng.integers(0, champion.labelled, champion.labelled)
        second = first if paired else rng.integers(0, challenger.labelled, challenger.labelled)
        difference = roc_auc(challenger.labels[second], challenger.scores[second]) - roc_auc(
            champion.labels[first], champion.scores[first]
        )
        if not math.isnan(difference):  # a resample with one class only
            differences.append(difference)
    low, high = np.percentile(differences, [2.5, 97.5])
    return float(delta), float(low), float(high)


def _mean(values: NDArray[np.bool_]) -> float:
    return float(values.mean()) if len(values) else 0.0


def _p99(values: NDArray[np.float64]) -> float:
    finite = values[~np.isnan(values)]
    return float(np.percentile(finite, 99)) if len(finite) else math.nan
