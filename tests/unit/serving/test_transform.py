"""The compiled preprocessing is held to the artifact's ``Preprocessor``, value for value."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loopline.model.preprocessing import NumericStats, Preprocessor
from loopline.serving.transform import CompiledPreprocessor

ROWS = [
    {"carrier": "UA", "sched_hour": 7, "distance": 1400.0, "temp": 55.5},
    {"carrier": "ZZ", "sched_hour": 3, "distance": None, "temp": math.inf},
    {"carrier": None, "sched_hour": "7", "distance": -1e12, "temp": math.nan},
    {"carrier": 7, "sched_hour": 7.0, "distance": 12, "temp": True},
]


def test_transform_equals_the_preprocessor_on_mixed_rows(preprocessor: Preprocessor) -> None:
    frame = pd.DataFrame(ROWS)
    columns = {c: [row[c] for row in ROWS] for c in frame}
    expected = preprocessor.transform(frame)
    actual = CompiledPreprocessor(preprocessor).transform(columns, len(ROWS))
    for want, got in zip(expected, actual, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_absent_columns_are_missing_for_every_row(preprocessor: Preprocessor) -> None:
    ids, numeric = CompiledPreprocessor(preprocessor).transform({}, 2)
    expected_ids, expected_numeric = preprocessor.transform(pd.DataFrame(index=range(2)))
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(numeric, expected_numeric)
    assert (numeric[:, 1::2] == 1).all()


def test_check_against_returns_the_arrays_when_they_agree(preprocessor: Preprocessor) -> None:
    ids, numeric = CompiledPreprocessor(preprocessor).check_against(pd.DataFrame(ROWS))
    assert ids.shape == (len(ROWS) + 5, 2)
    assert numeric.shape == (len(ROWS) + 5, 4)


def test_check_against_refuses_a_diverging_implementation(preprocessor: Preprocessor) -> None:
    compiled = CompiledPreprocessor(preprocessor)
    tampered = Preprocessor(
        categorical=preprocessor.categorical,
        numeric={**preprocessor.numeric, "temp": NumericStats(median=0.0, mean=1.0, std=2.0)},
    )
    compiled.preprocessor = tampered  # the reference now disagrees with the compiled state
    with pytest.raises(ValueError, match="differs"):
        compiled.check_against(pd.DataFrame(ROWS))
