"""The reliability tier: bad input, overload, slow clients, shutdown and tampering, each bounded
in time and on 127.0.0.1. It reuses the serving tier's set-up: a trained model, its features
materialized into a real redis-server, and ``loopline serve`` processes started on them."""

import pytest

from tests.integration.serving.conftest import serving, serving_redis

__all__ = ["serving", "serving_redis"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The bad-input corpus's counts (``tests/reliability/fuzz.py``), when it ran."""
    from tests.reliability.fuzz import TALLY

    if TALLY.cases:
        terminalreporter.write_line(TALLY.summary())
