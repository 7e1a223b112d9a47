"""Holdout metrics (small hand-made labels and scores)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopline.model.evaluate import MIN_SLICE_ROWS, binary_metrics, evaluate

LABELS = np.array([0, 0, 1, 1])
SCORES = np.array([0.1, 0.6, 0.4, 0.9])


def test_binary_metrics_on_a_hand_checked_case() -> None:
    metrics = binary_metrics(LABELS, SCORES, threshold=0.5)
    assert metrics["roc_auc"] == pytest.approx(0.75)
    assert metrics["precision"] == pytest.approx(0.5)
    assert metrics["recall"] == pytest.approx(0.5)
    assert metrics["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)
    assert metrics["rows"] == 4


def test_small_slices_report_only_their_size() -> None:
    rows = MIN_SLICE_ROWS + 10
    labels = np.tile([0, 1], rows)[: rows + 3]
    scores = np.linspace(0.01, 0.99, len(labels))
    carriers = pd.Series(["UA"] * rows + ["OO"] * 3)
    report = evaluate(labels, scores, 0.5, {"carrier": carriers})
    assert report["slices"]["carrier"]["OO"] == {"rows": 3}
    assert "roc_auc" in report["slices"]["carrier"]["UA"]
