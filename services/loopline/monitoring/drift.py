"""Drift of the live window from the champion's training reference, as our own typed result.

A column drifts when its score (a distance: ``stattests``) reaches the spec's
``drift.stattest_threshold``; the window drifts when the share of drifted feature columns
reaches ``drift.drift_share`` (Evidently's own rule: ``DataDriftPreset``). The prediction drift
is the same distance between the window's served probabilities and the champion's scores on the
reference sample; it is reported, and decided on, apart from the feature share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from loopline.monitoring.stattests import METHODS, ColumnKind, Summary, drift_score, summarise
from loopline.spec import DriftSpec

PREDICTION = "probability"
"""The column holding the model's answer, on both sides."""


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    kind: ColumnKind
    method: str
    score: float
    threshold: float

    @property
    def drifted(self) -> bool:
        return self.score >= self.threshold


@dataclass(frozen=True)
class DriftResult:
    """Per-feature drift, the share of drifted features, and the prediction drift."""

    features: list[FeatureDrift]
    prediction: FeatureDrift | None
    """None when the reference has no scores to compare with."""
    drift_share_threshold: float

    @property
    def drifted_features(self) -> list[str]:
        return [feature.name for feature in self.features if feature.drifted]

    @property
    def share(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    @property
    def detected(self) -> bool:
        """Dataset drift: the drifted share reached the spec's ``drift_share``."""
        return bool(self.features) and self.share >= self.drift_share_threshold

    def as_dict(self) -> dict[str, Any]:
        def one(feature: FeatureDrift) -> dict[str, Any]:
            return {
                "kind": feature.kind,
                "method": feature.method,
                "score": feature.score,
                "threshold": feature.threshold,
                "drifted": feature.drifted,
            }

        return {
            "share": self.share,
            "share_threshold": self.drift_share_threshold,
            "detected": self.detected,
            "features": {feature.name: one(feature) for feature in self.features},
            "prediction": None if self.prediction is None else one(self.prediction),
        }


class Reference:
    """The champion's reference sample, summarised once per column."""

    def __init__(self, frame: pd.DataFrame, columns: Mapping[str, ColumnKind]) -> None:
        self.columns = dict(columns)
        self.frame = frame
        self.summaries = {name: summarise(frame[name], kind) for name, kind in columns.items()}
        self.prediction = (
            summarise(frame[PREDICTION], "numeric") if PREDICTION in frame.columns else None
        )


def compute_drift(reference: Reference, current: pd.DataFrame, spec: DriftSpec) -> DriftResult:
    """Drift of ``current`` (one column per feature, ``probability``) from ``reference``.
    A column with no value on either side is left out (Evidently refuses it)."""
    features = []
    for name, kind in reference.columns.items():
        feature = _one(name, kind, reference.summaries[name], current[name], spec)
        if feature is not None:
            features.append(feature)
    prediction = None
    if reference.prediction is not None:
        prediction = _one(PREDICTION, "numeric", reference.prediction, current[PREDICTION], spec)
    return DriftResult(features, prediction, spec.drift_share)


def _one(
    name: str, kind: ColumnKind, reference: Summary, column: pd.Series, spec: DriftSpec
) -> FeatureDrift | None:
    current = summarise(column, kind)
    if reference.rows == 0 or current.rows == 0:
        return None
    return FeatureDrift(
        name, kind, METHODS[kind], drift_score(reference, current), spec.stattest_threshold
    )
