"""The rollout's statistical rule on generated data (not real predictions): scores are the label
plus Gaussian noise, so a smaller noise is a better model by construction."""

from __future__ import annotations

import numpy as np
import pytest

from loopline.rollout.rule import Sample, Thresholds, judge

LIMITS = Thresholds(min_labelled=500, min_per_class=20, max_labelled=5000, bootstrap=300)


def generated(
    n: int,
    noise: float,
    seed: int = 1,
    *,
    fallback: float = 0.0,
    latency_ms: float = 4.0,
    labels_seed: int = 7,
) -> Sample:
    """``n`` labelled rows (request ids ``g0``…, the same labels for one ``labels_seed``)."""
    labels = np.random.default_rng(labels_seed).binomial(1, 0.3, n).astype(np.int64)
    rng = np.random.default_rng(seed)
    scores = 1 / (1 + np.exp(-(2 * labels - 1 + rng.normal(0, noise, n))))
    return Sample(
        ids=np.array([f"g{i}" for i in range(n)]),
        labels=labels,
        scores=scores,
        fallback=rng.random(n) < fallback,
        latency_ms=rng.gamma(4, latency_ms / 4, n),
    )


@pytest.mark.parametrize("paired", [True, False])
def test_a_clearly_better_challenger_is_promoted(paired: bool) -> None:
    verdict = judge(generated(3000, 2.0), generated(3000, 1.0, seed=2), paired, LIMITS)
    assert verdict.verdict == "promote", verdict.reasons
    assert verdict.figures["auc_difference_low"] > 0  # type: ignore[operator]


@pytest.mark.parametrize("paired", [True, False])
def test_a_clearly_worse_challenger_is_rolled_back(paired: bool) -> None:
    verdict = judge(generated(3000, 1.0), generated(3000, 2.5, seed=2), paired, LIMITS)
    assert verdict.verdict == "roll-back", verdict.reasons
    assert verdict.figures["auc_difference_high"] < 0  # type: ignore[operator]


def test_too_few_labelled_predictions_wait_whatever_they_say() -> None:
    verdict = judge(generated(3000, 1.0), generated(400, 3.0, seed=2), False, LIMITS)
    assert verdict.verdict == "wait"
    assert verdict.reasons == ["the challenger has 400 labelled predictions (needs 500)"]


def test_one_label_too_rare_waits() -> None:
    sample = generated(600, 1.0)
    rare = Sample(
        sample.ids,
        np.zeros(600, dtype=np.int64),
        *(sample.scores, sample.fallback, sample.latency_ms),
    )
    verdict = judge(generated(600, 1.0), rare, False, LIMITS)
    assert verdict.verdict == "wait"
    assert "0 predictions of one label" in verdict.reasons[0]


def test_an_undecided_comparison_waits_then_rolls_back_at_the_maximum() -> None:
    # Generated: two equally good models (the same noise, other draws); no margin, so only a
    # challenger better with 95% confidence would be promoted: the interval straddles zero.
    small = Thresholds(min_labelled=500, max_labelled=5000, auc_margin=0.0, bootstrap=300)
    champion = generated(800, 1.5)
    verdict = judge(champion, generated(800, 1.5, seed=2), False, small)
    assert verdict.verdict == "wait", verdict.reasons
    verdict = judge(generated(5000, 1.5), generated(5000, 1.5, seed=2), False, small)
    assert verdict.verdict == "roll-back", verdict.reasons
    assert verdict.reasons[0].startswith("undecided after 5000 labelled predictions")


def test_more_fallback_answers_roll_back_even_a_better_model() -> None:
    verdict = judge(generated(3000, 2.0), generated(3000, 1.0, seed=2, fallback=0.05), True, LIMITS)
    assert verdict.verdict == "roll-back"
    assert "fallback" in verdict.reasons[0]


def test_a_slower_canary_is_rolled_back_a_slower_shadow_is_not_judged_on_latency() -> None:
    slow = generated(3000, 1.0, seed=2, latency_ms=40.0)
    canary = judge(generated(3000, 2.0), slow, False, LIMITS)
    assert canary.verdict == "roll-back"
    assert "p99 latency" in canary.reasons[0]
    assert judge(generated(3000, 2.0), slow, True, LIMITS).verdict == "promote"


def test_the_decision_can_be_recomputed() -> None:
    first = judge(generated(1500, 1.5), generated(1500, 1.4, seed=2), True, LIMITS)
    again = judge(generated(1500, 1.5), generated(1500, 1.4, seed=2), True, LIMITS)
    assert first == again
