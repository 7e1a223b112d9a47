from feast import Field, FileSource, PushSource, RequestSource
from feast.types import Float64, Int64

# Paths are relative to this repo; `loopline data prepare` writes them.

# Hourly METAR-style observations per origin airport.
weather_source = FileSource(
    name="weather_source",
    path="data/weather.parquet",
    timestamp_field="event_timestamp",
)

# FAA registry snapshot of each aircraft; stamped before the first flight.
planes_source = FileSource(
    name="planes_source",
    path="data/planes.parquet",
    timestamp_field="event_timestamp",
)


def aggregate_push_source(name: str) -> PushSource:
    """Live aggregates are pushed here by the streaming ingester; their history (backfill and
    training) is the parquet file of the same name."""
    batch = FileSource(
        name=f"{name}_batch", path=f"data/{name}.parquet", timestamp_field="event_timestamp"
    )
    return PushSource(name=f"{name}_push", batch_source=batch)


# Per-origin departure-delay aggregates.
origin_departure_push = aggregate_push_source("origin_departure_stats")

# Per-carrier departure-delay aggregates.
carrier_departure_push = aggregate_push_source("carrier_departure_stats")

# Fields only the caller knows at request time; they feed the on-demand features.
flight_request = RequestSource(
    name="flight_request",
    schema=[
        Field(name="distance", dtype=Float64),
        Field(name="sched_hour", dtype=Int64),
        Field(name="weekday", dtype=Int64),
    ],
)
