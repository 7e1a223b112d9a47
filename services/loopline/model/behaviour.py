"""Behavioural checks on a trained artifact (Made-With-ML style): invariance, direction, and
robustness to inputs the training data never had.

Run by every training job before the promotion gate (a failure is a reason to hold the version
back) and by ``tests/model/test_behaviour.py`` on the test suite's champion. Each check takes the
model and rows of its reference sample and returns what went wrong, or None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from loopline.model.artifact import TrainedModel
from loopline.spec import ModelSpec

UNSEEN = "__unseen__"
"""A category no training set has: it must map to the preprocessor's unknown id."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    failure: str | None
    """What went wrong; None when the check passed."""

    @property
    def passed(self) -> bool:
        return self.failure is None


Check = Callable[[TrainedModel, pd.DataFrame, ModelSpec], str | None]


def probability_failure(scores: np.ndarray, count: int) -> str | None:
    """Why ``scores`` are not ``count`` probabilities strictly inside (0, 1), or None."""
    if scores.shape != (count,):
        return f"{scores.shape} scores for {count} rows"
    if not np.isfinite(scores).all():
        return f"{int((~np.isfinite(scores)).sum())} scores are not finite"
    outside = int(((scores <= 0) | (scores >= 1)).sum())
    return f"{outside} scores are not strictly between 0 and 1" if outside else None


def rows_score_as_probabilities(
    model: TrainedModel, rows: pd.DataFrame, _: ModelSpec
) -> str | None:
    return probability_failure(model.predict_proba(rows), len(rows))


def unseen_categories_still_score(
    model: TrainedModel, rows: pd.DataFrame, spec: ModelSpec
) -> str | None:
    """Every categorical field and entity key at a value training never saw."""
    unseen = rows.assign(
        **dict.fromkeys([*spec.fields_of("categorical"), *spec.entity_keys], UNSEEN)
    )
    return probability_failure(model.predict_proba(unseen), len(rows))


def missing_features_score_with_defaults(
    model: TrainedModel, rows: pd.DataFrame, spec: ModelSpec
) -> str | None:
    """The request alone (no feature was found), and every numeric input missing."""
    request_only = rows[list(dict.fromkeys([*spec.entity_keys, *spec.request_fields]))]
    all_missing = rows.assign(**dict.fromkeys(model.preprocessor.numeric, np.nan))
    return probability_failure(model.predict_proba(request_only), len(rows)) or probability_failure(
        model.predict_proba(all_missing), len(rows)
    )


def entity_keys_are_not_inputs(
    model: TrainedModel, rows: pd.DataFrame, spec: ModelSpec
) -> str | None:
    """Invariance: an entity key that is not a request field (the tail number) reaches the
    model only through the features looked up by it."""
    keys = [key for key in spec.entity_keys if key not in spec.request_fields]
    if not keys:
        return None
    renamed = model.predict_proba(rows.assign(**dict.fromkeys(keys, UNSEEN)))
    change = float(np.abs(renamed - model.predict_proba(rows)).max())
    return f"changing {keys} changes a score by {change:.2e}" if change > 1e-6 else None


def risk_rises_with_declared_features(
    model: TrainedModel, rows: pd.DataFrame, spec: ModelSpec
) -> str | None:
    """Direction: the same rows with ``behaviour.raises_risk`` at their 95th percentile score
    higher on average than with them at their 5th."""
    columns = spec.behaviour.raises_risk
    if not columns:
        return None
    missing = [column for column in columns if column not in rows.columns]
    if missing:
        return f"{missing} are not among the model's inputs"
    values = rows[columns].apply(pd.to_numeric, errors="coerce")
    low = model.predict_proba(rows.assign(**values.quantile(0.05).to_dict())).mean()
    high = model.predict_proba(rows.assign(**values.quantile(0.95).to_dict())).mean()
    if high > low:
        return None
    return f"mean probability {high:.4f} with {columns} high is not above {low:.4f} with them low"


CHECKS: dict[str, Check] = {
    "rows score as probabilities": rows_score_as_probabilities,
    "unseen categories still score": unseen_categories_still_score,
    "missing features score with defaults": missing_features_score_with_defaults,
    "entity keys are not inputs": entity_keys_are_not_inputs,
    "risk rises with declared features": risk_rises_with_declared_features,
}


def behaviour_checks(model: TrainedModel, rows: pd.DataFrame, spec: ModelSpec) -> list[CheckResult]:
    """Every check in ``CHECKS`` on ``rows`` (a few hundred training rows are enough)."""
    return [CheckResult(name, check(model, rows, spec)) for name, check in CHECKS.items()]
