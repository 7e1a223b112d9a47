from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from loopline.errors import RegistryError
from loopline.registry.decisions import (
    Decision,
    decisions_path,
    read_decisions,
    record_decision,
)


def test_decisions_round_trip_in_order(tmp_path: Path) -> None:
    first = Decision(
        kind="monitor",
        model="flight-delay",
        outcome="retrain",
        versions={"champion": "v1"},
        reasons=["drift share 0.45 reaches 0.30"],
        figures={"drift_share": 0.45},
        report="reports/flight-delay/monitor/report.html",
    )
    second = Decision(kind="gate", model="flight-delay", outcome="rejected")
    record_decision(tmp_path, first)
    record_decision(tmp_path, second)
    assert list(read_decisions(tmp_path, "flight-delay")) == [first, second]
    assert list(read_decisions(tmp_path, "other-model")) == []


def _append(root: Path, worker: int) -> None:
    for n in range(50):
        record_decision(
            root,
            Decision(kind="rollout", model="m", outcome="waiting", figures={"w": worker, "n": n}),
        )


def test_concurrent_writers_never_interleave_lines(tmp_path: Path) -> None:
    workers = [multiprocessing.Process(target=_append, args=(tmp_path, w)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    decisions = list(read_decisions(tmp_path, "m"))
    assert sorted((d.figures["w"], d.figures["n"]) for d in decisions) == [
        (w, n) for w in range(4) for n in range(50)
    ]


def test_a_corrupt_line_is_reported_with_its_number(tmp_path: Path) -> None:
    record_decision(tmp_path, Decision(kind="gate", model="m", outcome="challenger"))
    with decisions_path(tmp_path, "m").open("a") as log:
        log.write('{"kind": "vote"}\n')
    with pytest.raises(RegistryError, match=r"m\.jsonl:2"):
        list(read_decisions(tmp_path, "m"))
