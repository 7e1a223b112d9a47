"""``loopline train``: point-in-time training set → network and baseline → holdout → registry."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from loopline.data.prepare import read_table
from loopline.features.training_set import TIMESTAMP, TrainingSet, training_set
from loopline.model.artifact import save_model
from loopline.model.evaluate import GradientBoostingBaseline, evaluate
from loopline.model.train import EpochReport, train_network
from loopline.registry import ModelRegistry, ModelVersion
from loopline.registry.lineage import DataWindow, Lineage
from loopline.rollout.gate import GateDecision, decide
from loopline.settings import Settings
from loopline.spec import ModelSpec

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainOutcome:
    version: ModelVersion
    gate: GateDecision
    """The promotion gate's decision: the alias set (None when held back) and why."""
    seconds: dict[str, float]


def _window(start: object, end: object) -> DataWindow:
    return DataWindow(
        start=datetime.fromisoformat(str(start)).replace(tzinfo=UTC),
        end=datetime.fromisoformat(str(end)).replace(tzinfo=UTC),
    )


def _split(frame: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, ...]:
    moments = [
        pd.Timestamp(d, tz="UTC") for d in (spec.split.validation_start, spec.split.holdout_start)
    ]
    stamps = frame[TIMESTAMP]
    return (
        frame[stamps < moments[0]],
        frame[(stamps >= moments[0]) & (stamps < moments[1])],
        frame[stamps >= moments[1]],
    )


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


def run_training(
    settings: Settings,
    spec: ModelSpec,
    progress: Progress | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> TrainOutcome:
    step = progress or (lambda _message: None)
    torch.set_num_threads(settings.torch_threads)
    timings: dict[str, float] = {}
    clock = datetime.now(UTC)

    def lap(name: str) -> None:
        nonlocal clock
        now = datetime.now(UTC)
        timings[name] = round((now - clock).total_seconds(), 2)
        clock = now
        step(name)

    dataset = training_set(
        settings,
        spec,
        read_table(settings, "requests"),
        read_table(settings, spec.label.source),
    )
    lap("training set")
    numeric_features = [ref.split(":", 1)[1] for ref in dataset.feature_refs]
    train, validation, holdout = _split(dataset.frame, spec)
    label = spec.label.name
    result = train_network(
        train,
        validation,
        (train[label].to_numpy(), validation[label].to_numpy()),
        numeric_features,
        spec,
        settings.seed,
        on_epoch,
    )
    lap("network")
    baseline = GradientBoostingBaseline(result.model.preprocessor, settings.seed)
    baseline.fit(train, train[label].to_numpy())
    lap("baseline")
    metrics = _holdout_metrics(
        spec, holdout, result.model.predict_proba(holdout), baseline.predict_proba(holdout)
    )
    metrics["training"] = {
        "best_epoch": result.best_epoch,
        "epochs": [report.__dict__ for report in result.epochs],
    }
    registry = ModelRegistry(settings.registry_dir)
    with tempfile.TemporaryDirectory(prefix="loopline-artifact-") as scratch:
        reference = train.sample(
            n=min(spec.training.reference_rows, len(train)), random_state=settings.seed
        )
        sha256 = save_model(result.model, reference, Path(scratch))
        lineage = _lineage(spec, dataset, (train, validation, holdout), metrics, sha256, settings)
        version = registry.register(spec.name, Path(scratch), lineage)
    gate = decide(spec.promotion, metrics, _champion_metrics(registry, spec.name))
    if gate.alias:
        registry.set_alias(spec.name, gate.alias, version.version)
    lap("evaluate and register")
    return TrainOutcome(registry.get(spec.name, version.version), gate, timings)


def _champion_metrics(registry: ModelRegistry, name: str) -> dict[str, Any] | None:
    if "champion" not in registry.aliases(name):
        return None
    return registry.get(name, "champion").lineage.metrics


def _holdout_metrics(
    spec: ModelSpec, holdout: pd.DataFrame, model_scores: np.ndarray, baseline_scores: np.ndarray
) -> dict[str, Any]:
    labels = holdout[spec.label.name].to_numpy()
    slices = {column: holdout[column].reset_index(drop=True) for column in spec.slices}
    model = evaluate(labels, model_scores, spec.decision_threshold, slices)
    baseline = evaluate(labels, baseline_scores, spec.decision_threshold, slices)
    return {
        "model": model["overall"],
        "baseline": baseline["overall"],
        "slices": {"model": model["slices"], "baseline": baseline["slices"]},
    }


def _lineage(
    spec: ModelSpec,
    dataset: TrainingSet,
    splits: tuple[pd.DataFrame, ...],
    metrics: dict[str, Any],
    sha256: str,
    settings: Settings,
) -> Lineage:
    names = ("train", "validation", "holdout")
    return Lineage(
        model_name=spec.name,
        spec=spec.model_dump(mode="json"),
        feature_service=spec.feature_service,
        features=dataset.feature_refs,
        train_window=_window(spec.split.start, spec.split.validation_start),
        validation_window=_window(spec.split.validation_start, spec.split.holdout_start),
        holdout_window=_window(spec.split.holdout_start, spec.split.end),
        rows={
            **{n: len(s) for n, s in zip(names, splits, strict=True)},
            **{f"excluded_{k}": v for k, v in dataset.excluded.items()},
        },
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
