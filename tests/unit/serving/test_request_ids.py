"""Request ids: one per row, the caller's where it gave one, else unique, in ``uuid4().hex``'s
form (the log deduplicates on them)."""

from __future__ import annotations

import string

from loopline.serving.core import _request_ids
from loopline.serving.schema import Row


def test_ids_are_unique_32_hex_digits() -> None:
    ids = [i for _ in range(100) for i in _request_ids([Row({}, 0.0, None)] * 64)]
    assert len(set(ids)) == len(ids) == 6400
    assert all(len(i) == 32 and set(i) <= set(string.hexdigits.lower()) for i in ids)
    assert _request_ids([]) == []


def test_a_callers_id_is_kept() -> None:
    first, given, last = _request_ids(
        [Row({}, 0.0, None), Row({}, 0.0, "f-1", "order-7"), Row({}, 0.0, None)]
    )
    assert given == "order-7"
    assert len({first, given, last}) == 3
