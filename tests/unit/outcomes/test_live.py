"""The live metrics' own arithmetic held to the libraries it stands in for."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from loopline.outcomes.live import average_ranks, roc_auc


@pytest.mark.parametrize("distinct", [3, 50, 10_000])
def test_average_ranks_are_scipys_with_ties(distinct: int) -> None:
    chance = np.random.default_rng(distinct)
    values = chance.integers(0, distinct, size=2_000).astype(np.float64) / distinct
    assert np.array_equal(average_ranks(values), rankdata(values))
    labels = chance.integers(0, 2, size=2_000)
    assert roc_auc(labels, values) == pytest.approx(roc_auc_score(labels, values), abs=1e-12)


def test_ranks_of_one_value_and_of_none() -> None:
    assert average_ranks(np.array([0.5])).tolist() == [1.0]
    assert average_ranks(np.array([], dtype=np.float64)).tolist() == []
