"""The promotion gate reads every field of the spec's PromotionSpec, compares with the champion's
score on the same holdout, and holds back a version that failed a behavioural check."""

from __future__ import annotations

import pytest

from loopline.rollout.gate import decide
from loopline.spec import PromotionSpec, load_spec


def metrics(model: float, baseline: float) -> dict[str, dict[str, float]]:
    return {"model": {"roc_auc": model}, "baseline": {"roc_auc": baseline}}


@pytest.mark.parametrize(
    ("model", "baseline", "champion", "expected"),
    [
        (0.75, 0.755, None, "champion"),
        (0.75, 0.755, 0.74, "challenger"),
        (0.74, 0.76, None, None),  # more than 0.01 below the baseline
        (0.69, 0.60, None, None),  # below the spec's minimum
        (0.75, 0.755, 0.76, None),  # worse than the champion
    ],
)
def test_the_shipped_specs_gate(
    model: float, baseline: float, champion: float | None, expected: str | None
) -> None:
    promotion = load_spec("flight-delay").promotion
    reigning = None if champion is None else {"roc_auc": champion}
    decision = decide(promotion, metrics(model, baseline), reigning)
    assert decision.alias == expected
    assert decision.passed == (expected is not None)
    assert bool(decision.reasons) == (expected is None)
    assert decision.champion_value == champion


def test_min_improvement_is_read() -> None:
    promotion = PromotionSpec(metric="roc_auc", min_improvement=0.005, max_gap_to_baseline=1)
    champion = {"roc_auc": 0.750}
    held = decide(promotion, metrics(0.754, 0.754), champion)
    assert held.alias is None
    assert held.reasons == [
        "roc_auc 0.7540 does not beat the champion's 0.7500 on the same holdout by 0.0050"
    ]
    assert decide(promotion, metrics(0.756, 0.756), champion).alias == "challenger"


def test_every_reason_is_given() -> None:
    promotion = PromotionSpec(metric="pr_auc", min_value=0.5, max_gap_to_baseline=0.01)
    decision = decide(
        promotion,
        {"model": {"pr_auc": 0.4}, "baseline": {"pr_auc": 0.45}},
        {"pr_auc": 0.6},
        ["entity keys are not inputs: changing ['tailnum'] changes a score by 1.00e-02"],
    )
    assert decision.metric == "pr_auc"
    assert len(decision.reasons) == 4
    assert decision.reasons[0].startswith("behavioural check failed: entity keys")
    assert "below the minimum" in decision.reasons[1]
    assert "below the baseline" in decision.reasons[2]
    assert "champion" in decision.reasons[3]


def test_a_failed_check_alone_holds_the_version_back() -> None:
    promotion = PromotionSpec(metric="roc_auc", max_gap_to_baseline=1)
    decision = decide(promotion, metrics(0.9, 0.8), None, ["rows score as probabilities: x"])
    assert decision.alias is None
    assert decision.reasons == ["behavioural check failed: rows score as probabilities: x"]
