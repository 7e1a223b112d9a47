"""Holdout evaluation and the gradient-boosting baseline trained on the same features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from loopline.model.preprocessing import Preprocessor

MIN_SLICE_ROWS = 200
"""Slices smaller than this report their size only: their AUC would be noise."""


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    decisions = (scores >= threshold).astype(int)
    clipped = np.clip(scores, 1e-7, 1 - 1e-7)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "pr_auc": float(average_precision_score(labels, scores)),
        "log_loss": float(log_loss(labels, clipped, labels=[0, 1])),
        "brier": float(brier_score_loss(labels, scores)),
        "precision": float(precision_score(labels, decisions, zero_division=0)),
        "recall": float(recall_score(labels, decisions, zero_division=0)),
        "threshold": threshold,
        "rows": len(labels),
        "positive_rate": float(labels.mean()),
    }


def evaluate(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    slices: Mapping[str, pd.Series],
) -> dict[str, Any]:
    """Overall metrics plus, for each slice column, metrics per value."""
    report: dict[str, Any] = {"overall": binary_metrics(labels, scores, threshold), "slices": {}}
    for column, values in slices.items():
        per_value: dict[str, Any] = {}
        for value in sorted(values.dropna().unique()):
            mask = (values == value).to_numpy()
            subset = labels[mask]
            if mask.sum() < MIN_SLICE_ROWS or subset.min() == subset.max():
                per_value[str(value)] = {"rows": int(mask.sum())}
            else:
                per_value[str(value)] = binary_metrics(subset, scores[mask], threshold)
        report["slices"][column] = per_value
    return report


class GradientBoostingBaseline:
    """scikit-learn HistGradientBoosting on the network's inputs, categorical ids as categories."""

    def __init__(self, preprocessor: Preprocessor, seed: int) -> None:
        self.preprocessor = preprocessor
        self.classifier = HistGradientBoostingClassifier(
            max_iter=400,
            learning_rate=0.08,
            categorical_features=list(range(len(preprocessor.categorical))),
            early_stopping=True,
            validation_fraction=0.1,
            random_state=seed,
        )

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        ids, _ = self.preprocessor.transform_frame(frame)
        numeric = [pd.to_numeric(frame[c], errors="coerce") for c in self.preprocessor.numeric]
        return np.column_stack([ids, *[column.to_numpy(dtype=float) for column in numeric]])

    def fit(self, frame: pd.DataFrame, labels: np.ndarray) -> GradientBoostingBaseline:
        self.classifier.fit(self._matrix(frame), labels)
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.classifier.predict_proba(self._matrix(frame))[:, 1], dtype=float)
