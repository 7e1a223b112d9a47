from datetime import timedelta

from data_sources import (
    carrier_departure_push,
    origin_departure_push,
    planes_source,
    weather_source,
)
from entities import aircraft, carrier, origin_airport
from feast import Entity, FeatureView, Field, PushSource
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


def departure_stats_view(name: str, entity: Entity, prefix: str, source: PushSource) -> FeatureView:
    """Departure delays in the last 1 h and 3 h, refreshed every 10 min by the stream, so a row
    older than three refreshes (TTL 30 min) means the stream has stalled."""
    return FeatureView(
        name=name,
        entities=[entity],
        ttl=timedelta(minutes=30),
        schema=[
            Field(name=f"{prefix}_{stat}_{window}", dtype=Float64 if stat == "mean" else Int64)
            for window in ("1h", "3h")
            for stat in ("mean", "count")
        ],
        source=source,
        online=True,
    )


# Congestion at the origin airport.
origin_departure_stats = departure_stats_view(
    "origin_departure_stats", origin_airport, "origin_dep_delay", origin_departure_push
)

# The carrier's recent departure delays across all NYC airports.
carrier_departure_stats = departure_stats_view(
    "carrier_departure_stats", carrier, "carrier_dep_delay", carrier_departure_push
)
