"""Request ids: one per row, unique, in ``uuid4().hex``'s form (the log deduplicates on them)."""

from __future__ import annotations

import string

from loopline.serving.core import _request_ids


def test_ids_are_unique_32_hex_digits() -> None:
    ids = [i for _ in range(100) for i in _request_ids(64)]
    assert len(set(ids)) == len(ids) == 6400
    assert all(len(i) == 32 and set(i) <= set(string.hexdigits.lower()) for i in ids)
    assert _request_ids(0) == []
