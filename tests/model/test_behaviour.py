"""Behavioural tests on a trained artifact (Made-With-ML style): invariance, direction, and
robustness to inputs the training data never had."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopline.model.artifact import TrainedModel, load_model
from loopline.registry import ModelRegistry
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


def assert_probabilities(scores: np.ndarray, count: int) -> None:
    assert scores.shape == (count,)
    assert np.isfinite(scores).all()
    assert ((scores > 0) & (scores < 1)).all()


def test_reference_rows_score_as_probabilities(model: TrainedModel, rows: pd.DataFrame) -> None:
    assert_probabilities(model.predict_proba(rows), len(rows))


def test_unseen_carrier_and_tail_number_still_score(
    model: TrainedModel, rows: pd.DataFrame
) -> None:
    unseen = rows.assign(carrier="ZZ", tailnum="N00000", dest="XXX")
    assert_probabilities(model.predict_proba(unseen), len(rows))


def test_missing_features_score_with_fitted_defaults(
    model: TrainedModel, rows: pd.DataFrame
) -> None:
    request_only = rows[["carrier", "origin", "dest", "sched_hour", "weekday", "distance"]]
    assert_probabilities(model.predict_proba(request_only), len(rows))
    all_missing = rows.assign(**{column: np.nan for column in model.preprocessor.numeric})
    assert_probabilities(model.predict_proba(all_missing), len(rows))


def test_tail_number_is_not_an_input(model: TrainedModel, rows: pd.DataFrame) -> None:
    """Invariance: the tail number reaches the model only through plane attributes."""
    renamed = rows.assign(tailnum="N99999")
    np.testing.assert_allclose(model.predict_proba(rows), model.predict_proba(renamed))


def test_congestion_at_the_origin_raises_the_risk(model: TrainedModel, rows: pd.DataFrame) -> None:
    """Direction: the same flights, with the last hour's departures at the origin running an
    hour late, are on average more likely to arrive late."""
    calm = rows.assign(origin_dep_delay_mean_1h=0.0, origin_dep_delay_mean_3h=0.0)
    congested = rows.assign(origin_dep_delay_mean_1h=60.0, origin_dep_delay_mean_3h=60.0)
    assert model.predict_proba(congested).mean() > model.predict_proba(calm).mean()
