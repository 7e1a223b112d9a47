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

# History of the per-origin departure-delay aggregates (backfill and training).
origin_departure_stats_batch = FileSource(
    name="origin_departure_stats_batch",
    path="data/origin_departure_stats.parquet",
    timestamp_field="event_timestamp",
)

# Live per-origin aggregates are pushed here by the streaming ingester as events arrive.
origin_departure_push = PushSource(
    name="origin_departure_push", batch_source=origin_departure_stats_batch
)

# History of the per-carrier departure-delay aggregates.
carrier_departure_stats_batch = FileSource(
    name="carrier_departure_stats_batch",
    path="data/carrier_departure_stats.parquet",
    timestamp_field="event_timestamp",
)

# Live per-carrier aggregates, pushed like the per-origin ones.
carrier_departure_push = PushSource(
    name="carrier_departure_push", batch_source=carrier_departure_stats_batch
)

# Fields only the caller knows at request time; they feed the on-demand features.
flight_request = RequestSource(
    name="flight_request",
    schema=[
        Field(name="distance", dtype=Float64),
        Field(name="sched_hour", dtype=Int64),
        Field(name="weekday", dtype=Int64),
    ],
)
