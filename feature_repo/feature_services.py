from feast import FeatureService
from feature_views import (
    carrier_departure_stats,
    origin_departure_stats,
    origin_weather,
    plane_attributes,
)
from on_demand import flight_context

# Everything the flight-delay model v1 reads; the model spec names this service.
flight_delay_v1 = FeatureService(
    name="flight_delay_v1",
    features=[
        origin_weather,
        plane_attributes,
        origin_departure_stats,
        carrier_departure_stats,
        flight_context,
    ],
)
