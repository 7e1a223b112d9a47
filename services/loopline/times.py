"""Times as the platform reads them: ISO 8601 text is UTC unless it carries an offset."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_to_epoch(text: str) -> float:
    """Epoch seconds of an ISO 8601 time; ``ValueError`` if ``text`` is not one."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
