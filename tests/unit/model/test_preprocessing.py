"""The fitted transformation: unknown categories, missing numbers, JSON round trip.

Frames here are small GENERATED examples, not reference data."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from loopline.model.preprocessing import CLIP, UNKNOWN, Preprocessor

TRAIN = pd.DataFrame(
    {
        "carrier": ["UA"] * 3 + ["AA"] * 2 + ["OO"],
        "hour": [5, 5, 6, 6, 7, 7],
        "temp": [10.0, 20.0, np.nan, 30.0, 40.0, 50.0],
    }
)


def fitted() -> Preprocessor:
    return Preprocessor.fit(TRAIN, ["carrier", "hour"], ["temp"], min_category_count=2)


def test_rare_and_unseen_categories_share_the_unknown_id() -> None:
    ids, _ = fitted().transform_frame(
        pd.DataFrame({"carrier": ["UA", "OO", "ZZ", None], "hour": 5})
    )
    assert ids[0, 0] != UNKNOWN
    assert list(ids[1:, 0]) == [UNKNOWN, UNKNOWN, UNKNOWN]


def test_integers_and_their_text_are_the_same_category() -> None:
    prep = fitted()
    from_ints, _ = prep.transform_frame(pd.DataFrame({"carrier": ["UA"], "hour": [6]}))
    from_text, _ = prep.transform_frame(pd.DataFrame({"carrier": ["UA"], "hour": ["6"]}))
    assert from_ints[0, 1] == from_text[0, 1] != UNKNOWN


def test_missing_numbers_get_the_training_median_and_an_indicator() -> None:
    prep = fitted()
    _, numeric = prep.transform_frame(pd.DataFrame({"temp": [np.nan, 30.0]}))
    stats = prep.numeric["temp"]
    assert stats.median == 30.0
    assert numeric[0, 0] == numeric[1, 0] == np.float32((30.0 - stats.mean) / stats.std)
    assert list(numeric[:, 1]) == [1.0, 0.0]


def test_absent_columns_count_as_missing_and_values_are_clipped() -> None:
    _, numeric = fitted().transform_frame(pd.DataFrame({"carrier": ["UA", "UA"]}))
    assert list(numeric[:, 1]) == [1.0, 1.0]
    _, extreme = fitted().transform_frame(pd.DataFrame({"temp": [1e9]}))
    assert extreme[0, 0] == CLIP


def test_state_round_trips_through_json() -> None:
    prep = fitted()
    restored = Preprocessor.from_dict(json.loads(json.dumps(prep.to_dict())))
    frame = pd.DataFrame({"carrier": ["AA", "ZZ"], "hour": [7, 8], "temp": [np.nan, 12.5]})
    originals, copies = prep.transform_frame(frame), restored.transform_frame(frame)
    for original, copy in zip(originals, copies, strict=True):
        np.testing.assert_array_equal(original, copy)
    assert restored.vocabulary_sizes == [3, 4]


SERVED = [  # as JSON requests and the online store hand them over: mixed, missing, extreme
    {"carrier": "UA", "hour": 7, "temp": 55.5},
    {"carrier": "ZZ", "hour": 3, "temp": math.inf},
    {"carrier": None, "hour": "7", "temp": None},
    {"carrier": 7, "hour": 7.0, "temp": "12.5"},
    {"carrier": "AA", "hour": None, "temp": True},
]


def test_served_columns_and_a_frame_of_the_same_rows_transform_alike() -> None:
    prep = fitted()
    columns = {name: [row[name] for row in SERVED] for name in SERVED[0]}
    served = prep.transform(columns, len(SERVED))
    for got, want in zip(served, prep.transform_frame(pd.DataFrame(SERVED)), strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    ids, numeric = served
    assert ids[0, 1] == ids[2, 1] != UNKNOWN  # 7 and "7" are the same hour
    assert list(numeric[:, 1]) == [0.0, 1.0, 1.0, 0.0, 0.0]  # inf and None are missing
    temp = prep.numeric["temp"]  # "12.5" is a number, True is 1
    assert numeric[3, 0] == pytest.approx((12.5 - temp.mean) / temp.std, abs=1e-6)
    assert numeric[4, 0] == pytest.approx((1.0 - temp.mean) / temp.std, abs=1e-6)


def test_absent_columns_are_missing_in_every_row() -> None:
    ids, numeric = fitted().transform({}, 2)
    assert (ids == UNKNOWN).all()
    assert (numeric[:, 1::2] == 1).all()
