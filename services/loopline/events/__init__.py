"""Live events: departures, weather observations, outcomes and clock ticks, as producers send
them.

``POST /events`` (serving) and producers that ``XADD`` directly write them to an event stream;
``loopline ingest`` reads them back, updates the streaming aggregates and hands outcomes on.
All of them use the one record type, ``Event`` (docs/events.md).

record      the typed event, its strict parser, encoder and decoder
sink        ``OutcomeSink``: where ingest hands outcome events (the outcome join)
"""

from loopline.events.record import (
    Event,
    EventError,
    EventType,
    OutcomeStatus,
    clock_event_id,
    decode,
    departure_event_id,
    encode,
    outcome_event_id,
    parse,
    weather_event_id,
)
from loopline.events.sink import OutcomeSink

__all__ = [
    "Event",
    "EventError",
    "EventType",
    "OutcomeSink",
    "OutcomeStatus",
    "clock_event_id",
    "decode",
    "departure_event_id",
    "encode",
    "outcome_event_id",
    "parse",
    "weather_event_id",
]
