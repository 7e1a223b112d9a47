"""The Redis sink reads a segment a bounded piece at a time: a backlog left while Redis was
down costs one piece of memory per retry, not the whole backlog (issue 12: RSS grew 101 MB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.predictions import redis_sink
from loopline.predictions.redis_sink import _complete_lines


def test_lines_are_read_a_bounded_piece_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_sink, "READ_BYTES", 64)
    lines = [b"%03d" % i + b"x" * 20 for i in range(100)]
    path = tmp_path / "segment.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines) + b"torn")
    size, offset, read = path.stat().st_size, 0, []
    while piece := _complete_lines(path, offset, size):
        assert sum(len(line) + 1 for line in piece) <= 64
        read += piece
        offset += sum(len(line) + 1 for line in piece)
    assert read == lines  # and the torn last line is never read
    assert offset == size - len(b"torn")


def test_a_line_longer_than_a_piece_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_sink, "READ_BYTES", 8)
    path = tmp_path / "segment.jsonl"
    path.write_bytes(b"y" * 100 + b"\nz\n")
    # The piece doubles until it holds a whole line (here it then holds the next one too).
    assert _complete_lines(path, 0, path.stat().st_size)[0] == b"y" * 100
