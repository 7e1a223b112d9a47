"""The records a training job writes: the version's lineage and the gate's decision."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopline.features.training_set import TrainingSet
from loopline.registry.decisions import Decision
from loopline.registry.lineage import DataWindow, GateRecord, Lineage, MonitorTrigger
from loopline.rollout.gate import GateDecision
from loopline.settings import Settings
from loopline.spec import ModelSpec

Figures = dict[str, float | int | str | None]


def code_commit(settings: Settings) -> str:
    if settings.code_commit:
        return settings.code_commit
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()


def lineage(
    settings: Settings,
    spec: ModelSpec,
    dataset: TrainingSet,
    windows: tuple[DataWindow, DataWindow, DataWindow],
    rows: dict[str, int],
    metrics: dict[str, Any],
    sha256: str,
) -> Lineage:
    """``windows``: train, validation, holdout; ``rows``: per split."""
    return Lineage(
        model_name=spec.name,
        spec=spec.model_dump(mode="json"),
        feature_service=spec.feature_service,
        features=dataset.feature_refs,
        train_window=windows[0],
        validation_window=windows[1],
        holdout_window=windows[2],
        rows={**rows, **{f"excluded_{k}": v for k, v in dataset.excluded.items()}},
        code_commit=code_commit(settings),
        parameters={
            "network": spec.network.model_dump(),
            "training": spec.training.model_dump(),
            "decision_threshold": spec.decision_threshold,
            "seed": settings.seed,
        },
        metrics=metrics,
        artifact_sha256=sha256,
        reference_sample="reference_sample.parquet",
        trained_at=datetime.now(UTC),
    )


def gate_record(gate: GateDecision) -> GateRecord:
    return GateRecord(
        alias=gate.alias,
        metric=gate.metric,
        value=gate.value,
        champion_value=gate.champion_value,
        reasons=gate.reasons,
    )


def gate_decision(
    model: str,
    gate: GateDecision,
    candidate: Mapping[str, Any],
    versions: dict[str, str],
    champion: Mapping[str, Any] | None,
    holdout_rows: int,
    trigger: MonitorTrigger | None,
) -> Decision:
    """The gate's entry in the decision log: the promotion metric and ROC AUC of the challenger,
    its baseline and the champion (on the same holdout), and the drift share that triggered it."""
    figures: Figures = {"holdout_rows": holdout_rows}
    for metric in dict.fromkeys([gate.metric, "roc_auc"]):
        figures[f"challenger_{metric}"] = float(candidate["model"][metric])
        figures[f"baseline_{metric}"] = float(candidate["baseline"][metric])
        figures[f"champion_{metric}"] = None if champion is None else float(champion[metric])
    if trigger is not None:
        figures["drift_share"] = trigger.drift_share
    return Decision(
        kind="gate",
        model=model,
        outcome=gate.alias or "rejected",
        versions=versions,
        reasons=gate.reasons,
        figures=figures,
        report=None if trigger is None else trigger.path,
    )
