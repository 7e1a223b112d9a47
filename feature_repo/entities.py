from feast import Entity, ValueType

# Departure airport: weather and departure congestion are observed per airport.
origin_airport = Entity(name="origin_airport", join_keys=["origin"], value_type=ValueType.STRING)

# Operating carrier: delays propagate through an airline's network and crews.
carrier = Entity(name="carrier", join_keys=["carrier"], value_type=ValueType.STRING)

# The aircraft (tail number): its age and size change how it copes with disruption.
aircraft = Entity(name="aircraft", join_keys=["tailnum"], value_type=ValueType.STRING)
