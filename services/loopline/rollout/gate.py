"""The promotion gate: may a newly trained version go further, and as what?

It reads every field of the spec's ``PromotionSpec`` on the candidate's holdout metrics:
``metric`` must reach ``min_value``, must not fall more than ``max_gap_to_baseline`` below the
gradient-boosting baseline trained on the same data, and, when a champion exists, must beat the
champion by at least ``min_improvement`` **on the same holdout rows** (the champion's artifact
scored on them, not the figure it recorded on its own, older holdout: two holdouts of different
months say nothing about which model is better now). A failed behavioural check
(``model.behaviour``) holds the version back too. The first version that passes becomes
``champion``; a later one becomes ``challenger``, for the rollout to try on live traffic. A
version that fails gets no alias (it stays registered) and the decision says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loopline.spec import PromotionSpec


@dataclass(frozen=True)
class GateDecision:
    alias: str | None
    """``champion``, ``challenger``, or None when the version is held back."""
    metric: str
    value: float
    champion_value: float | None = None
    """The champion's ``metric`` on the same holdout; None when there is no champion."""
    reasons: list[str] = field(default_factory=list)
    """Why it was held back (empty when it passed)."""

    @property
    def passed(self) -> bool:
        return self.alias is not None


def decide(
    promotion: PromotionSpec,
    candidate: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    failed_checks: Sequence[str] = (),
) -> GateDecision:
    """``candidate``: its holdout metrics as training records them (``model`` and ``baseline``
    sections); ``champion``: the champion's metrics on the same holdout rows (one section, as
    ``evaluate`` reports ``overall``), None when the model has none yet; ``failed_checks``:
    the behavioural checks the candidate failed, as sentences."""
    name = promotion.metric
    value = float(candidate["model"][name])
    baseline = float(candidate["baseline"][name])
    reasons = [f"behavioural check failed: {failure}" for failure in failed_checks]
    if value < promotion.min_value:
        reasons.append(f"{name} {value:.4f} is below the minimum {promotion.min_value:.4f}")
    if baseline - value > promotion.max_gap_to_baseline:
        reasons.append(
            f"{name} {value:.4f} is {baseline - value:.4f} below the baseline's {baseline:.4f} "
            f"(allowed: {promotion.max_gap_to_baseline:.4f})"
        )
    best = None if champion is None else float(champion[name])
    if best is not None and value - best < promotion.min_improvement:
        reasons.append(
            f"{name} {value:.4f} does not beat the champion's {best:.4f} on the same holdout "
            f"by {promotion.min_improvement:.4f}"
        )
    if reasons:
        return GateDecision(None, name, value, best, reasons)
    return GateDecision("challenger" if champion is not None else "champion", name, value, best)
