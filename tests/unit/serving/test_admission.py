"""Admission: the queue bounded in rows and in time, refusals at once, nothing held after."""

from __future__ import annotations

import pytest

from loopline.errors import Overloaded
from loopline.serving.admission import Admission


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rows_over_the_limit_are_refused_and_released_rows_admit_again() -> None:
    admission = Admission(max_rows=10, deadline_s=1.0)
    with admission.admit(6), admission.admit(4):
        assert admission.rows == 10
        with pytest.raises(Overloaded, match="10 rows queued, the limit is 10"):
            admission.check(1)
        with pytest.raises(Overloaded), admission.admit(1):
            pass
    assert (admission.rows, admission.in_flight) == (0, 0)
    with admission.admit(10):
        pass


def test_a_request_larger_than_the_limit_is_admitted_alone() -> None:
    admission = Admission(max_rows=10, deadline_s=1.0)
    with admission.admit(50), pytest.raises(Overloaded):
        admission.check(1)
    with admission.admit(1), pytest.raises(Overloaded):
        admission.check(50)


def test_a_queue_whose_oldest_request_waited_past_the_deadline_refuses() -> None:
    clock = Clock()
    admission = Admission(max_rows=100, deadline_s=0.05, clock=clock)
    first, second = admission.admit(1), admission.admit(1)
    first.__enter__()
    clock.now += 0.01
    second.__enter__()
    clock.now += 0.045  # the first has waited 55 ms, the second 45 ms
    with pytest.raises(Overloaded, match="oldest queued request has waited 55 ms"):
        admission.check()
    first.__exit__(None, None, None)
    admission.check()  # the oldest now is the second
    second.__exit__(None, None, None)
    assert admission.oldest_wait() == 0.0


def test_the_request_limit_still_applies() -> None:
    admission = Admission(max_rows=100, deadline_s=1.0, max_requests=2)
    with admission.admit(1), admission.admit(1), pytest.raises(Overloaded, match="2 requests"):
        admission.check()


def test_a_failed_block_releases_its_rows() -> None:
    admission = Admission(max_rows=10, deadline_s=1.0)
    with pytest.raises(RuntimeError), admission.admit(5):
        raise RuntimeError("the prediction failed")
    assert admission.rows == 0
    assert admission.oldest_wait() == 0.0
