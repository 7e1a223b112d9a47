"""``start`` and ``evaluate`` against a real registry and a labelled dataset written by the
join's own writer. The labelled rows are generated (scores are the label plus noise), not real
predictions; the artifacts are stand-ins (nothing is served here)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from loopline.outcomes import Joined, LabelledDataset
from loopline.predictions import ShadowScore
from loopline.registry import ModelRegistry
from loopline.registry.decisions import read_decisions
from loopline.registry.rollout import read_plan
from loopline.rollout.controller import evaluate, start
from loopline.settings import Settings
from loopline.spec import load_spec
from tests.unit.predictions.records import record
from tests.unit.registry.test_store import NAME, make_artifact, make_lineage

SPEC = load_spec("flight-delay")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path / "home", rollout_min_labelled=300, rollout_bootstrap=300)
    registry = ModelRegistry(settings.registry_dir)
    for n in (1, 2):
        artifact = make_artifact(tmp_path / f"artifact{n}", weights=bytes([n]))
        lineage = make_lineage(artifact).model_copy(update={"spec": SPEC.model_dump()})
        registry.register(NAME, artifact, lineage)
    registry.set_alias(NAME, "champion", "v1")
    registry.set_alias(NAME, "challenger", "v2")
    return settings


def labelled(settings: Settings, n: int, noise: dict[str, float], shadow: bool) -> None:
    """``n`` generated requests answered by v1 (and by v2 in shadow, or every other one in
    canary), their scores the label plus ``noise[version]``, written as the join writes."""
    rng = np.random.default_rng(3)
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        label = int(rng.random() < 0.3)

        def score(version: str, label: int = label) -> float:
            return float(1 / (1 + np.exp(-(2 * label - 1 + rng.normal(0, noise[version])))))

        version = "v1" if shadow or i % 2 else "v2"
        answered = replace(
            record(i),
            timestamp=now + timedelta(milliseconds=i),
            model_version=version,
            probability=score(version),
            shadow=ShadowScore("v2", score("v2"), False) if shadow else None,
        )
        outcome = answered.event_timestamp + timedelta(hours=3)
        rows += Joined(
            answered, "delayed" if label else "on_time", outcome, 0.0, label
        ).with_shadow()
    LabelledDataset(settings.labelled_dir, SPEC.label.name).write(rows)


def test_a_worse_canary_is_rolled_back(settings: Settings) -> None:
    started = start(settings, NAME, "canary", 0.5)
    assert (started.action, started.canary_percent) == ("started", 50)
    plan = read_plan(settings.registry_dir, NAME)
    assert plan is not None
    assert (plan.challenger, plan.mode, plan.share) == ("v2", "canary", 0.5)
    labelled(settings, 2000, {"v1": 1.0, "v2": 3.0}, shadow=False)
    result = evaluate(settings, NAME)
    assert result.action == "rolled-back"
    assert result.decision is not None
    assert result.decision.figures["auc_difference_high"] < 0  # type: ignore[operator]
    assert ModelRegistry(settings.registry_dir).aliases(NAME) == {"champion": "v1"}
    after = read_plan(settings.registry_dir, NAME)
    assert after is not None
    assert (after.champion, after.challenger) == ("v1", None)
    outcomes = [d.outcome for d in read_decisions(settings.registry_dir, NAME)]
    assert outcomes == ["started", "rolled-back"]
    assert evaluate(settings, NAME).action == "idle"  # nothing left to decide, nothing recorded


def test_a_better_shadow_is_promoted_and_the_old_champion_keeps_its_version(
    settings: Settings,
) -> None:
    start(settings, NAME, "shadow")
    labelled(settings, 1500, {"v1": 2.0, "v2": 1.0}, shadow=True)
    result = evaluate(settings, NAME)
    assert (result.action, result.champion, result.canary_percent) == ("promoted", "v2", 0)
    assert result.decision is not None
    assert result.decision.figures["paired_labelled"] == 1500
    registry = ModelRegistry(settings.registry_dir)
    assert registry.aliases(NAME) == {"champion": "v2"}
    assert [v.version for v in registry.versions(NAME)] == ["v1", "v2"]
    plan = read_plan(settings.registry_dir, NAME)
    assert plan is not None
    assert (plan.champion, plan.challenger) == ("v2", None)


def test_too_few_outcomes_wait_and_a_new_challenger_is_started(settings: Settings) -> None:
    first = evaluate(settings, NAME)  # the gate set a challenger: the rollout starts it
    assert (first.action, first.mode) == ("started", settings.rollout_mode)
    labelled(settings, 100, {"v1": 1.0, "v2": 3.0}, shadow=True)
    waiting = evaluate(settings, NAME)
    assert waiting.action == "waiting"
    assert waiting.decision is not None
    assert "100 labelled predictions (needs 300)" in waiting.decision.reasons[0]
    assert ModelRegistry(settings.registry_dir).aliases(NAME)["challenger"] == "v2"
