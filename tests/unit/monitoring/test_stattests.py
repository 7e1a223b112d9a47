"""The fast path's drift scores equal Evidently's own, on generated samples (labelled as such:
seeded random columns shaped like served features: continuous, discrete with ties, nulls and
infinities, categories that appear on one side only)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from loopline.monitoring.drift import Reference, compute_drift
from loopline.monitoring.report import run_report
from loopline.monitoring.stattests import ColumnKind, drift_score, summarise
from loopline.spec import DriftSpec

TOLERANCE = 1e-9
"""Relative: the two sum the same terms in a different order."""
COLUMNS: dict[str, ColumnKind] = {
    "continuous": "numeric",
    "shifted": "numeric",
    "counts": "numeric",
    "sparse": "numeric",
    "constant": "numeric",
    "carrier": "categorical",
    "hour": "categorical",
}


def generated(rows: int, seed: int, shift: float) -> pd.DataFrame:
    """Generated data: a reference (shift 0) or a drifted window."""
    rng = np.random.default_rng(seed)
    sparse = rng.exponential(3.0, rows)
    sparse[rng.random(rows) < 0.2] = np.nan
    sparse[:3] = np.inf
    carriers = np.array(["UA", "AA", "B6", "DL", "EV"] + (["ZZ"] if shift else []))
    return pd.DataFrame(
        {
            "continuous": rng.normal(0, 1, rows),
            "shifted": rng.normal(shift, 1 + shift, rows),
            "counts": rng.poisson(4 + 3 * shift, rows).astype(float),
            "sparse": sparse,
            "constant": np.full(rows, 2.5),
            "carrier": rng.choice(carriers, rows),
            "hour": rng.integers(5, 23 if shift else 20, rows),
            "probability": rng.beta(2, 5 - 2 * shift, rows),
        }
    )


@pytest.fixture(scope="module")
def samples() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generated(3000, 1, 0.0), generated(20_000, 2, 0.5)


def test_scores_equal_evidentlys_on_the_same_rows(
    samples: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    reference, current = samples
    spec = DriftSpec(stattest_threshold=0.1, drift_share=0.3)
    ours = compute_drift(Reference(reference, COLUMNS), current, spec)
    theirs = run_report(
        reference, current, COLUMNS, spec, name="test", timestamp=datetime.now(UTC)
    ).drift
    assert [f.name for f in ours.features] == [f.name for f in theirs.features] == list(COLUMNS)
    for mine, evidently in zip(ours.features, theirs.features, strict=True):
        assert mine.score == pytest.approx(evidently.score, rel=TOLERANCE, abs=1e-12), mine.name
        assert mine.drifted == evidently.drifted
    assert ours.prediction is not None
    assert theirs.prediction is not None
    assert ours.prediction.score == pytest.approx(theirs.prediction.score, rel=TOLERANCE)
    assert ours.share == theirs.share
    assert {"shifted", "counts", "carrier", "hour"} <= set(ours.drifted_features)
    assert "constant" not in ours.drifted_features
    assert ours.detected


def test_a_sample_equal_to_its_reference_has_no_drift() -> None:
    frame = generated(1000, 3, 0.0)
    for name, kind in COLUMNS.items():
        summary = summarise(frame[name], kind)
        assert drift_score(summary, summary) == 0.0


def test_categories_compare_as_text() -> None:
    served = summarise(pd.Series([5, 6, 6, None], dtype=object), "categorical")
    trained = summarise(pd.Series(["5", "6", "6"]), "categorical")
    assert drift_score(trained, served) == 0.0
    assert served.rows == 3
