"""The table `make demo` ends with, from the JSON each step wrote (scripts/demo.sh) and the
model's decision log: latency served, v1 vs v2 ROC AUC on the latest month, drift, every
decision with its reasons, and the paths of the HTML reports.

Usage: demo_summary.py <directory of the steps' JSON> <registry dir> <model>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from loopline.registry.decisions import read_decisions


def load(directory: Path, name: str) -> dict[str, Any] | None:
    path = directory / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rows(directory: Path) -> list[tuple[str, str]]:
    table: list[tuple[str, str]] = []
    for name in ("replay", "replay-shadow"):
        replay = load(directory, name)
        if replay and replay.get("server_ms"):
            ms = replay["server_ms"]
            table.append(
                (
                    f"served ({name})",
                    f"{replay['predictions']:,} predictions, server time per batch call "
                    f"p50 {ms['p50']:.1f} ms, p99 {ms['p99']:.1f} ms, {replay['seconds']:.0f} s",
                )
            )
    monitor = load(directory, "monitor")
    if monitor:
        summary = monitor["summary"]
        drifted = ", ".join(summary.get("drifted_features") or []) or "none"
        share = summary.get("drift_share")
        shown = "n/a" if share is None else f"{share:.3f}"
        table.append(("drift share", f"{shown} (drifted: {drifted})"))
        table.append(("drift report", str(summary.get("report"))))
    retrain = load(directory, "retrain")
    if retrain:
        auc = retrain["holdout"]["roc_auc"]
        versions = retrain["holdout"].get("versions", {})
        table.append(
            (
                "ROC AUC, latest month",
                f"champion {versions.get('champion', '')} {auc['champion']:.4f} vs challenger "
                f"{versions.get('challenger', '')} {auc['challenger']:.4f} "
                f"({retrain['holdout']['start'][:10]} → {retrain['holdout']['end'][:10]})",
            )
        )
    return table


def main(directory: Path, registry: Path, model: str) -> None:
    width = 24
    print(f"\n{'Loopline demo':<{width}} {model}")
    for name, value in rows(directory):
        print(f"{name:<{width}} {value}")
    print(f"\nDecisions (registry/decisions/{model}.jsonl):")
    for decision in read_decisions(registry, model):
        versions = ", ".join(f"{role} {v}" for role, v in decision.versions.items())
        print(f"  {decision.at:%H:%M:%S} {decision.kind:<8} {decision.outcome:<12} {versions}")
        for reason in decision.reasons:
            print(f"      - {reason}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
