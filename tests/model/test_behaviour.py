"""Behavioural tests on a trained artifact (Made-With-ML style): invariance, direction, and
robustness to inputs the training data never had. The checks are ``model.behaviour``'s, the ones
every training job runs before the gate; here they run on the test suite's champion, and each is
shown to catch the fault it is for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopline.model import behaviour
from loopline.model.artifact import TrainedModel, load_model
from loopline.registry import ModelRegistry
from loopline.spec import BehaviourSpec
from tests.conftest import TrainedSetup

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def model(trained: TrainedSetup) -> TrainedModel:
    version = ModelRegistry(trained.settings.registry_dir).get(trained.spec.name, "champion")
    return load_model(version.path, version.lineage.artifact_sha256)


@pytest.fixture(scope="module")
def rows(trained: TrainedSetup) -> pd.DataFrame:
    version = ModelRegistry(trained.settings.registry_dir).get(trained.spec.name, "champion")
    return pd.read_parquet(version.path / version.lineage.reference_sample).head(200)


@pytest.mark.parametrize("name", sorted(behaviour.CHECKS))
def test_the_champion_passes(
    name: str, model: TrainedModel, rows: pd.DataFrame, trained: TrainedSetup
) -> None:
    assert behaviour.CHECKS[name](model, rows, trained.spec) is None


def test_every_check_runs_and_the_shipped_spec_declares_a_direction(
    model: TrainedModel, rows: pd.DataFrame, trained: TrainedSetup
) -> None:
    results = behaviour.behaviour_checks(model, rows, trained.spec)
    assert [r.name for r in results] == list(behaviour.CHECKS)
    assert all(r.passed for r in results)
    assert trained.spec.behaviour.raises_risk == [
        "origin_dep_delay_mean_1h",
        "origin_dep_delay_mean_3h",
    ]


def test_scores_outside_zero_and_one_are_caught() -> None:
    assert behaviour.probability_failure(np.array([0.2, 0.5]), 2) is None
    assert behaviour.probability_failure(np.array([0.2, 1.0]), 2) == (
        "1 scores are not strictly between 0 and 1"
    )
    assert behaviour.probability_failure(np.array([np.nan, 0.5]), 2) == "1 scores are not finite"
    assert behaviour.probability_failure(np.array([0.5]), 2) == "(1,) scores for 2 rows"


class Inverted(TrainedModel):
    """The champion with its answers turned around: more congestion, less risk."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return 1 - super().predict_proba(frame)


class ReadsTheTailNumber(TrainedModel):
    """The champion, nudged by the tail number itself (a leak the invariance check is for)."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        nudge = frame["tailnum"].map(lambda tail: 0.01 if str(tail).endswith("9") else 0.0)
        return super().predict_proba(frame) * 0.9 + nudge.to_numpy(dtype=float)


def test_a_reversed_direction_is_caught(
    model: TrainedModel, rows: pd.DataFrame, trained: TrainedSetup
) -> None:
    inverted = Inverted(model.network, model.preprocessor)
    failure = behaviour.risk_rises_with_declared_features(inverted, rows, trained.spec)
    assert failure is not None
    assert "is not above" in failure


def test_a_model_reading_an_entity_key_is_caught(
    model: TrainedModel, rows: pd.DataFrame, trained: TrainedSetup
) -> None:
    leaky = ReadsTheTailNumber(model.network, model.preprocessor)
    failure = behaviour.entity_keys_are_not_inputs(leaky, rows, trained.spec)
    assert failure is not None
    assert failure.startswith("changing ['tailnum'] changes a score by")


def test_a_declared_feature_the_model_lacks_is_a_failure_not_a_crash(
    model: TrainedModel, rows: pd.DataFrame, trained: TrainedSetup
) -> None:
    spec = trained.spec.model_copy(
        update={"behaviour": BehaviourSpec(raises_risk=["origin_dep_delay_mean_1h", "gate_queue"])}
    )
    failure = behaviour.risk_rises_with_declared_features(model, rows, spec)
    assert failure == "['gate_queue'] are not among the model's inputs"
