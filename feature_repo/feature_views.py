from datetime import timedelta

from data_sources import (
    carrier_departure_push,
    origin_departure_push,
    planes_source,
    weather_source,
)
from entities import aircraft, carrier, origin_airport
from feast import FeatureView, Field
from feast.types import Float64, Int64

WEATHER_FIELDS = ["temp", "dewp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib"]

# Weather at the origin; observations are hourly, so one missed report is tolerated (TTL 2 h).
origin_weather = FeatureView(
    name="origin_weather",
    entities=[origin_airport],
    ttl=timedelta(hours=2),
    schema=[Field(name=name, dtype=Float64) for name in WEATHER_FIELDS],
    source=weather_source,
    online=True,
)

# Static aircraft attributes; they never expire (TTL 0 means no expiry in Feast).
plane_attributes = FeatureView(
    name="plane_attributes",
    entities=[aircraft],
    ttl=timedelta(0),
    schema=[
        Field(name="plane_year", dtype=Float64),
        Field(name="seats", dtype=Float64),
        Field(name="engines", dtype=Float64),
    ],
    source=planes_source,
    online=True,
)

# Congestion at the origin: departure delays in the last 1 h and 3 h, refreshed every 10 min,
# so anything older than three refreshes (30 min) means the stream has stalled.
origin_departure_stats = FeatureView(
    name="origin_departure_stats",
    entities=[origin_airport],
    ttl=timedelta(minutes=30),
    schema=[
        Field(name="origin_dep_delay_mean_1h", dtype=Float64),
        Field(name="origin_dep_delay_count_1h", dtype=Int64),
        Field(name="origin_dep_delay_mean_3h", dtype=Float64),
        Field(name="origin_dep_delay_count_3h", dtype=Int64),
    ],
    source=origin_departure_push,
    online=True,
)

# The carrier's recent departure delays across all NYC airports, same cadence and TTL.
carrier_departure_stats = FeatureView(
    name="carrier_departure_stats",
    entities=[carrier],
    ttl=timedelta(minutes=30),
    schema=[
        Field(name="carrier_dep_delay_mean_1h", dtype=Float64),
        Field(name="carrier_dep_delay_count_1h", dtype=Int64),
        Field(name="carrier_dep_delay_mean_3h", dtype=Float64),
        Field(name="carrier_dep_delay_count_3h", dtype=Int64),
    ],
    source=carrier_departure_push,
    online=True,
)
