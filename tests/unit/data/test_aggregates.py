"""Window aggregates: no look-ahead, and batch and streaming agree.

The events here are GENERATED test data (random delays at random times), not reference data.
"""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from loopline.data.aggregates import StreamingWindowAggregator, WindowSpec, window_aggregates

SPEC = WindowSpec(key="origin", value="dep_delay", prefix="d")
START = pd.Timestamp("2013-01-01", tz="UTC")


def generated_events(n: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    minutes = np.sort(rng.uniform(0, 24 * 60, n))
    return pd.DataFrame(
        {
            "origin": rng.choice(["EWR", "JFK"], n),
            "event_timestamp": START + pd.to_timedelta(minutes, unit="m"),
            "dep_delay": rng.normal(10, 30, n).round(),
        }
    )


def test_a_row_never_contains_an_event_stamped_at_or_after_it() -> None:
    events = pd.DataFrame(
        {
            "origin": ["EWR", "EWR", "EWR"],
            "event_timestamp": [START + timedelta(minutes=m) for m in (5, 10, 65)],
            "dep_delay": [10.0, 100.0, 1000.0],
        }
    )
    rows = window_aggregates(events, SPEC, START, START + timedelta(hours=2)).set_index(
        "event_timestamp"
    )
    # At 00:10 only the 00:05 event has happened; the 00:10 event belongs to the next bucket.
    assert rows.loc[START + timedelta(minutes=10), "d_count_1h"] == 1
    assert rows.loc[START + timedelta(minutes=10), "d_mean_1h"] == 10.0
    assert rows.loc[START + timedelta(minutes=20), "d_mean_1h"] == 55.0
    # At 01:10 the 00:05 event has left the 1 h window; the 01:05 event has arrived.
    assert rows.loc[START + timedelta(minutes=70), "d_count_1h"] == 2
    assert rows.loc[START + timedelta(minutes=70), "d_mean_1h"] == 550.0
    assert rows.loc[START + timedelta(minutes=70), "d_count_3h"] == 3


def test_quiet_keys_report_zero_counts_and_no_mean() -> None:
    events = generated_events(5)
    rows = window_aggregates(events, SPEC, START, START + timedelta(days=1, hours=4))
    last = rows[rows["event_timestamp"] == rows["event_timestamp"].max()]
    assert (last["d_count_3h"] == 0).all()
    assert last["d_mean_3h"].isna().all()


def test_streaming_emits_exactly_the_batch_rows() -> None:
    events = generated_events(400)
    end = START + timedelta(days=1)
    batch = window_aggregates(events, SPEC, START, end)
    aggregator = StreamingWindowAggregator(SPEC)
    streamed: list[dict[str, object]] = []
    pending = events.itertuples(index=False)
    upcoming = next(pending, None)
    for bucket_end in pd.date_range(START, end, freq=pd.Timedelta(SPEC.step)):
        while upcoming is not None and upcoming.event_timestamp < bucket_end:
            aggregator.add(upcoming.origin, upcoming.event_timestamp, upcoming.dep_delay)
            upcoming = next(pending, None)
        streamed += aggregator.emit(bucket_end)
    streamed_frame = pd.DataFrame(streamed)
    # Streaming knows a key only from its first event; compare on the rows both produced.
    merged = batch.merge(streamed_frame, on=["origin", "event_timestamp"], suffixes=("", "_s"))
    assert len(merged) > 0.9 * len(batch)
    for column in SPEC.column_names():
        np.testing.assert_allclose(merged[column], merged[f"{column}_s"], equal_nan=True)


def test_out_of_order_events_are_refused() -> None:
    aggregator = StreamingWindowAggregator(SPEC)
    aggregator.add("EWR", START + timedelta(minutes=30), 1.0)
    with pytest.raises(ValueError, match="older than the open bucket"):
        aggregator.add("EWR", START + timedelta(minutes=5), 1.0)
