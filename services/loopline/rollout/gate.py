"""The promotion gate: may a newly trained version go further, and as what?

It reads every field of the spec's ``PromotionSpec`` on the candidate's holdout metrics:
``metric`` must reach ``min_value``, must not fall more than ``max_gap_to_baseline`` below the
gradient-boosting baseline trained on the same data, and, when a champion exists, must beat the
champion's by at least ``min_improvement``. The first version that passes becomes ``champion``;
a later one becomes ``challenger``, for the rollout to try on live traffic. A version that fails
gets no alias (it stays registered) and the decision says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loopline.spec import PromotionSpec


@dataclass(frozen=True)
class GateDecision:
    alias: str | None
    """``champion``, ``challenger``, or None when the version is held back."""
    metric: str
    value: float
    reasons: list[str] = field(default_factory=list)
    """Why it was held back (empty when it passed)."""

    @property
    def passed(self) -> bool:
        return self.alias is not None


def decide(
    promotion: PromotionSpec,
    candidate: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
) -> GateDecision:
    """``candidate`` and ``champion``: holdout metrics as training records them (``model`` and
    ``baseline`` sections); ``champion`` None when the model has none yet."""
    name = promotion.metric
    value = float(candidate["model"][name])
    baseline = float(candidate["baseline"][name])
    reasons = []
    if value < promotion.min_value:
        reasons.append(f"{name} {value:.4f} is below the minimum {promotion.min_value:.4f}")
    if baseline - value > promotion.max_gap_to_baseline:
        reasons.append(
            f"{name} {value:.4f} is {baseline - value:.4f} below the baseline's {baseline:.4f} "
            f"(allowed: {promotion.max_gap_to_baseline:.4f})"
        )
    if champion is not None:
        best = float(champion["model"][name])
        if value - best < promotion.min_improvement:
            reasons.append(
                f"{name} {value:.4f} does not beat the champion's {best:.4f} by "
                f"{promotion.min_improvement:.4f}"
            )
    if reasons:
        return GateDecision(None, name, value, reasons)
    return GateDecision("challenger" if champion is not None else "champion", name, value)
