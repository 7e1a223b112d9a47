"""The background threads' retry loop: a failing step is reported, first failure flagged, and
retried after a doubling pause; a success resets the pause; ``stop`` ends it promptly."""

from __future__ import annotations

import threading
import time

from loopline.retry import FIRST_PAUSE_S, retry_until_stopped


class Stop(threading.Event):
    """Records each pause asked for instead of waiting it out."""

    def __init__(self) -> None:
        super().__init__()
        self.pauses: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.pauses.append(timeout)
        return self.is_set()


def test_failures_back_off_doubling_and_a_success_resets_the_pause() -> None:
    stop = Stop()
    outcomes = [False, False, False, True, False, True]
    reported: list[bool] = []

    def step() -> None:
        succeeds = outcomes.pop(0)
        if not outcomes:
            stop.set()
        if not succeeds:
            raise RuntimeError("store down")

    retry_until_stopped(stop, step, reported.append, max_pause_s=0.3)
    assert reported == [True, False, False, True]
    assert stop.pauses == [FIRST_PAUSE_S, 0.2, 0.3, FIRST_PAUSE_S]


def test_before_runs_ahead_of_each_step_and_stop_there_ends_the_loop() -> None:
    stop = threading.Event()
    calls: list[str] = []

    def before() -> None:
        calls.append("before")
        if len(calls) >= 5:
            stop.set()

    retry_until_stopped(stop, lambda: calls.append("step"), lambda first: None, before=before)
    assert calls == ["before", "step", "before", "step", "before"]


def test_stop_interrupts_a_pause() -> None:
    stop = threading.Event()

    def step() -> None:
        raise RuntimeError("down")

    arguments = (stop, step, lambda first: None)
    thread = threading.Thread(target=retry_until_stopped, args=arguments, kwargs={"max_pause_s": 9})
    thread.start()
    time.sleep(0.5)  # into the doubling pauses: 0.1, 0.2, 0.4 ...
    started = time.monotonic()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 1.0
