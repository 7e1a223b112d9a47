"""Live events for tests: departures, weather and outcomes over a few hours, deterministic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from loopline.events import Event, EventType, departure_event_id, outcome_event_id, weather_event_id
from loopline.events.record import WEATHER_FIELDS

START = datetime(2013, 9, 1, 6, tzinfo=UTC)
ORIGINS = ("EWR", "JFK", "LGA")
CARRIERS = ("AA", "B6", "DL", "UA")


def departure(i: int, at: datetime, origin: str, carrier: str, delay: float) -> Event:
    flight = f"20130901-{carrier}{i}-{origin}"
    keys = {"flight_id": flight, "origin": origin, "carrier": carrier}
    return Event(departure_event_id(flight), EventType.DEPARTURE, at, keys, {"dep_delay": delay})


def weather(origin: str, hour: datetime, temp: float) -> Event:
    payload: dict[str, float | None] = dict.fromkeys(WEATHER_FIELDS, None)
    payload |= {"temp": temp, "humid": 60.0, "visib": 10.0}
    return Event(
        weather_event_id(origin, hour), EventType.WEATHER, hour, {"origin": origin}, payload
    )


def outcome(flight: str, at: datetime, arr_delay: float) -> Event:
    status = "delayed" if arr_delay > 15 else "on_time"
    payload = {"status": status, "arr_delay": arr_delay, "delayed": int(arr_delay > 15)}
    return Event(outcome_event_id(flight), EventType.OUTCOME, at, {"flight_id": flight}, payload)


def stream(hours: int = 6, per_hour: int = 40, seed: int = 3) -> list[Event]:
    """Departures (with their outcomes 2 h later) and hourly weather, in event-time order."""
    rng = np.random.default_rng(seed)
    events: list[Event] = []
    for i in range(hours * per_hour):
        at = START + timedelta(seconds=float(rng.uniform(0, hours * 3600)))
        at = at.replace(microsecond=0)
        origin, carrier = ORIGINS[i % 3], CARRIERS[int(rng.integers(0, 4))]
        delay = float(np.round(rng.normal(10, 20), 1))
        dep = departure(i, at, origin, carrier, delay)
        events.append(dep)
        events.append(outcome(dep.keys["flight_id"], at + timedelta(hours=2), delay - 5))
    for hour in range(hours + 3):
        for origin in ORIGINS:
            events.append(weather(origin, START + timedelta(hours=hour), 50.0 + hour))
    return sorted(events, key=lambda e: (e.event_timestamp, e.event_id))


def shuffled_within(events: list[Event], seconds: float, seed: int = 5) -> list[Event]:
    """``events`` reordered, none moved by more than ``seconds`` of event time."""
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(0, seconds, len(events))
    order = sorted(
        range(len(events)), key=lambda i: events[i].event_timestamp.timestamp() + jitter[i]
    )
    return [events[i] for i in order]
