from typing import Any

from data_sources import flight_request
from feast import Field
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64
from feature_views import origin_departure_stats


# Request-time derived features, computed identically for training rows and live requests.
# Python mode: no pandas round trip on the serving path.
@on_demand_feature_view(
    sources=[flight_request, origin_departure_stats],
    schema=[
        Field(name="hour_sin", dtype=Float64),
        Field(name="hour_cos", dtype=Float64),
        Field(name="is_weekend", dtype=Float64),
        Field(name="log_distance", dtype=Float64),
        Field(name="origin_delay_trend", dtype=Float64),
    ],
    mode="python",
)
def flight_context(inputs: dict[str, Any]) -> dict[str, Any]:
    import math  # the UDF is serialised on its own: imports must live inside it

    hours = [2 * math.pi * h / 24 for h in inputs["sched_hour"]]
    trend = [
        None if recent is None or longer is None else recent - longer
        for recent, longer in zip(
            inputs["origin_dep_delay_mean_1h"], inputs["origin_dep_delay_mean_3h"], strict=True
        )
    ]
    return {
        "hour_sin": [math.sin(h) for h in hours],
        "hour_cos": [math.cos(h) for h in hours],
        "is_weekend": [1.0 if day >= 5 else 0.0 for day in inputs["weekday"]],
        "log_distance": [math.log1p(d) for d in inputs["distance"]],
        "origin_delay_trend": trend,
    }
