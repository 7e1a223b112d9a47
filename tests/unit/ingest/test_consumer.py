"""The shard consumer over the in-memory stream: the aggregates it writes are the batch
definition's rows (``window_aggregates``), in order or out of order within the lateness, with
duplicates, across restarts; late and malformed events are counted."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopline.data.aggregates import window_aggregates
from loopline.events import Event, EventType, clock_event_id, encode
from loopline.events.memory_stream import MemoryEventStream
from loopline.ingest.offline import read_live
from loopline.ingest.runner import Ingest
from loopline.ingest.state import SPECS
from loopline.settings import Settings
from tests.events_data import START, departure, shuffled_within, stream


class RecordingWriter:
    """Keeps every row written, by view, key and bucket end (a store's upserts, all kept)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, pd.Timestamp], dict[str, object]] = {}
        self.weather: dict[str, Event] = {}

    def write(self, rows: dict[str, dict[str, dict[str, object]]], weather: list[Event]) -> None:
        for view, by_key in rows.items():
            for key, row in by_key.items():
                self.rows[view, key, pd.Timestamp(row["event_timestamp"])] = row  # type: ignore[arg-type]
        for event in weather:
            self.weather[event.keys["origin"]] = event


class CountingSink:
    """Counts the outcomes ingest hands over (the join itself is tested in tests/unit/outcomes)."""

    def __init__(self) -> None:
        self.handled = 0

    def handle(self, outcomes: Sequence[Event]) -> None:
        self.handled += len(outcomes)

    def close(self) -> None:
        pass


def settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        home=tmp_path / "home",
        feature_repo=tmp_path / "repo",
        ingest_batch_size=7,
        ingest_block_ms=1,
        **extra,
    )


def run(
    events: list[Event], tmp_path: Path, shards: int = 1, **extra: Any
) -> tuple[Ingest, RecordingWriter]:
    memory = MemoryEventStream(shards)
    writer = RecordingWriter()
    ingest = Ingest(
        settings(tmp_path, ingest_shards=shards, **extra),
        memory,
        range(shards),
        writer,
        sink=CountingSink(),
    )
    memory.publish(events)
    drain(ingest)
    return ingest, writer


def drain(ingest: Ingest) -> None:
    while any(r.step() for r in ingest.repartitioners) or any(c.step() for c in ingest.consumers):
        pass
    for consumer in ingest.consumers:
        consumer.flush_offline()


def expected(events: list[Event], view: str) -> pd.DataFrame:
    spec = SPECS[view]
    frame = pd.DataFrame(
        [
            {**e.keys, "event_timestamp": pd.Timestamp(e.event_timestamp), **e.payload}
            for e in events
            if e.event_type is EventType.DEPARTURE
        ]
    )
    start, end = frame["event_timestamp"].min().floor("D"), frame["event_timestamp"].max().ceil("D")
    return window_aggregates(frame, spec, start, end).set_index([spec.key, "event_timestamp"])


def assert_matches_batch(writer: RecordingWriter, events: list[Event]) -> int:
    checked = 0
    for view in SPECS:
        table = expected(events, view).to_dict("index")
        for (row_view, key, at), row in writer.rows.items():
            if row_view != view:
                continue
            for column, value in table[key, at].items():
                got = row[column]
                assert math.isclose(got, value) or (math.isnan(got) and math.isnan(value)), (
                    view,
                    key,
                    at,
                    column,
                    got,
                    value,
                )
            checked += 1
    return checked


def counts(ingest: Ingest) -> dict[tuple[str, str], float]:
    found = {}
    for metric in ingest.metrics.events.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                found[sample.labels["event_type"], sample.labels["result"]] = sample.value
    return found


def test_in_order_events_give_the_batch_rows(tmp_path: Path) -> None:
    events = stream()
    ingest, writer = run(events, tmp_path)
    assert assert_matches_batch(writer, events) > 50
    assert {k for k in counts(ingest) if k[1] != "applied"} == set()
    assert isinstance(ingest.sink, CountingSink)
    assert ingest.sink.handled == sum(e.event_type is EventType.OUTCOME for e in events)
    assert writer.weather["JFK"].event_timestamp == max(
        e.event_timestamp for e in events if e.event_type is EventType.WEATHER
    )


def test_out_of_order_within_lateness_and_duplicates_change_nothing(tmp_path: Path) -> None:
    events = stream()
    _, clean = run(events, tmp_path / "clean")
    messy = shuffled_within(events + events[::5], seconds=300)
    ingest, writer = run(messy, tmp_path / "messy", ingest_allowed_lateness_s=600)
    assert_same_latest(writer, clean)
    assert assert_matches_batch(writer, events) > 50
    found = counts(ingest)
    assert sum(v for (_, result), v in found.items() if result == "duplicate") == len(events[::5])
    assert not any(result == "late" for _, result in found)


def assert_same_latest(a: RecordingWriter, b: RecordingWriter) -> None:
    """The newest row per view and key is the same (NaN equal to NaN, sums to rounding)."""

    def latest(writer: RecordingWriter) -> dict[tuple[str, str], dict[str, object]]:
        return {(view, key): row for (view, key, _), row in sorted(writer.rows.items())}

    mine, theirs = latest(a), latest(b)
    assert mine.keys() == theirs.keys()
    for where, row in mine.items():
        for column, value in row.items():
            other = theirs[where][column]
            if isinstance(value, float):
                assert math.isclose(value, other) or (math.isnan(value) and math.isnan(other))  # type: ignore[arg-type]
            else:
                assert value == other, (where, column)


def test_a_departure_later_than_the_lateness_is_counted_and_not_aggregated(tmp_path: Path) -> None:
    events = stream()
    late = departure(999, START + timedelta(minutes=5), "JFK", "AA", 500.0)
    ingest, writer = run(
        [*events, late], tmp_path, ingest_allowed_lateness_s=60, ingest_dedup_horizon_s=86400
    )
    assert counts(ingest)["departure", "late"] == 1
    assert assert_matches_batch(writer, events) > 50  # as if the late one never came
    offline = read_live(settings(tmp_path).data_dir, EventType.DEPARTURE)
    assert late.event_id.removeprefix("dep-") in set(offline["flight_id"])  # kept for training


@pytest.mark.parametrize("shards", [1, 2])
def test_a_clock_tick_closes_quiet_buckets_on_every_shard(tmp_path: Path, shards: int) -> None:
    """After the last departure nothing comes to close the later buckets; a tick 2 hours on
    does, on every shard: each key's newest row is then the bucket end the tick's watermark
    reached, equal to the batch definition's (the 1 h windows empty). It is stored nowhere."""
    events = [e for e in stream(hours=1) if e.event_type is EventType.DEPARTURE]
    at = max(e.event_timestamp for e in events) + timedelta(hours=2)
    tick = Event(clock_event_id(at), EventType.CLOCK, at, {}, {})
    ingest, writer = run([*events, tick], tmp_path, shards=shards)
    closed = pd.Timestamp(at - timedelta(seconds=600)).floor("10min")
    newest: dict[tuple[str, str], pd.Timestamp] = {}
    for view, key, end in writer.rows:
        newest[view, key] = max(end, newest.get((view, key), end))
    assert len(newest) == 3 + len({e.keys["carrier"] for e in events})
    assert set(newest.values()) == {closed}
    assert all(
        row[f"{SPECS[view].prefix}_count_1h"] == 0
        for (view, _, end), row in writer.rows.items()
        if end == closed
    )
    assert assert_matches_batch(writer, events) == len(writer.rows)
    tick_ns = pd.Timestamp(at).value
    assert [c._state and c._state.latest_seen for c in ingest.consumers] == [tick_ns] * shards
    assert len(read_live(settings(tmp_path).data_dir, EventType.DEPARTURE)) == len(events)


def test_a_restart_from_the_last_commit_loses_and_repeats_nothing(tmp_path: Path) -> None:
    events = stream()
    _, clean = run(events, tmp_path / "clean")
    memory = MemoryEventStream(1)
    memory.publish(events)
    writer = RecordingWriter()
    first = Ingest(settings(tmp_path / "restarted"), memory, [0], writer, sink=CountingSink())
    for _ in range(40):
        first.repartitioners[0].step()
        first.consumers[0].step()
    second = Ingest(settings(tmp_path / "restarted"), memory, [0], writer, sink=CountingSink())
    drain(second)
    assert_same_latest(writer, clean)
    assert assert_matches_batch(writer, events) > 50
    offline = read_live(settings(tmp_path / "restarted").data_dir, EventType.OUTCOME)
    assert (
        len(offline)
        == offline["flight_id"].nunique()
        == sum(e.event_type is EventType.OUTCOME for e in events)
    )


def test_two_shards_split_the_keys_and_write_each_row_once(tmp_path: Path) -> None:
    events = stream()
    _, one = run(events, tmp_path / "one")
    _, two = run(events, tmp_path / "two", shards=2)
    assert_same_latest(two, one)
    assert assert_matches_batch(two, events) > 50
    for kind in (EventType.DEPARTURE, EventType.WEATHER, EventType.OUTCOME):
        assert len(read_live(settings(tmp_path / "two").data_dir, kind)) == sum(
            e.event_type is kind for e in events
        )


def test_malformed_entries_go_to_the_dead_letter_stream_counted(tmp_path: Path) -> None:
    memory = MemoryEventStream(1)
    ingest = Ingest(settings(tmp_path), memory, [0], RecordingWriter(), sink=CountingSink())
    good = stream(hours=1)[0]
    bad = dataclasses.replace(good, payload={"dep_delay": "late"})
    memory.publish([good])
    memory._input.append(memory._entry({b"event": encode(bad)}, None))  # as a direct XADD
    memory._input.append(memory._entry({b"other": b"x"}, None))
    drain(ingest)
    assert [(d.field, d.entry[:1]) for d in memory.dead] == [
        ("payload.dep_delay", b"{"),
        ("event", b""),
    ]
    assert counts(ingest)["unknown", "dead_letter"] == 2
    dead = {
        s.labels["field"]: s.value
        for m in ingest.metrics.dead_letters.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert dead == {"payload": 1, "event": 1}


@pytest.mark.parametrize("shards", [1, 3])
def test_the_state_round_trips_through_its_checkpoint(tmp_path: Path, shards: int) -> None:
    ingest, _ = run(stream(hours=2), tmp_path, shards=shards)
    for consumer in ingest.consumers:
        state = consumer._state
        assert state is not None
        again = type(state).decode(state.encode(), state.shard, shards, state.lateness)
        assert again.encode() == state.encode()


def test_the_stages_run_apart_write_what_they_write_together(tmp_path: Path) -> None:
    """``LOOPLINE_INGEST_STAGE``: a repartition-only and a shard-only ingest over one stream
    (the chart's two containers) write the rows one ingest of both stages writes."""
    events = stream()
    _, together = run(events, tmp_path / "together", shards=2)
    memory, apart = MemoryEventStream(2), RecordingWriter()
    config = settings(tmp_path / "apart", ingest_shards=2)
    repartition = Ingest(config, memory, range(2), None, stage="repartition")
    shard = Ingest(config, memory, range(2), apart, sink=CountingSink(), stage="shard")
    assert (repartition.consumers, repartition.sink, shard.repartitioners) == ([], None, [])
    memory.publish(events)
    while any(r.step() for r in repartition.repartitioners):
        pass
    drain(shard)
    assert apart.rows == together.rows
    assert assert_matches_batch(apart, events) > 50
    with pytest.raises(ValueError, match="online writer"):
        Ingest(config, memory, range(2), None, stage="shard")
