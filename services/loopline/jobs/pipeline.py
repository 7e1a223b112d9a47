"""What ``loopline train`` and ``loopline retrain`` share, once: fit the network and the baseline
on a time-ordered split, score the holdout (and the champion on the same rows), check the
artifact's behaviour, gate, register, set the alias and log the gate's decision.

A version becomes visible only when the registry has written its ``lineage.json`` (last), and
gets its alias after that, so a job killed at any point before registration leaves the registry
as it was (docs/retraining.md, "What a failed retrain leaves").
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from loopline.features.training_set import TIMESTAMP, TrainingSet
from loopline.jobs import records
from loopline.model.artifact import TrainedModel, load_model, save_model
from loopline.model.behaviour import CheckResult, behaviour_checks
from loopline.model.evaluate import GradientBoostingBaseline, evaluate
from loopline.model.train import EpochReport, train_network
from loopline.registry import ModelRegistry, ModelVersion
from loopline.registry.decisions import Decision, record_decision
from loopline.registry.lineage import DataWindow, Retraining
from loopline.rollout.gate import GateDecision, decide
from loopline.settings import Settings
from loopline.spec import ModelSpec

Progress = Callable[[str], None]
OnEpoch = Callable[[EpochReport], None]
SPLITS = ("train", "validation", "holdout")
BEHAVIOUR_ROWS = 200
"""Reference rows the behavioural checks score (each check scores them a few times)."""


class Laps:
    """Seconds per named step, each step reported to ``progress`` as it ends."""

    def __init__(self, progress: Progress | None) -> None:
        self.seconds: dict[str, float] = {}
        self._progress = progress or (lambda _name: None)
        self._clock = datetime.now(UTC)

    def __call__(self, name: str) -> None:
        now = datetime.now(UTC)
        self.seconds[name] = round((now - self._clock).total_seconds(), 2)
        self._clock = now
        self._progress(name)


@dataclass(frozen=True)
class Splits:
    """Train, validation and holdout rows, in time order, and their ``[start, end)`` windows."""

    frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
    windows: tuple[DataWindow, DataWindow, DataWindow]

    @classmethod
    def at(
        cls,
        frame: pd.DataFrame,
        start: datetime,
        validation_start: datetime,
        holdout_start: datetime,
        end: datetime,
    ) -> Splits:
        """``frame``'s rows in ``[start, validation_start)``, ``[validation_start,
        holdout_start)`` and ``[holdout_start, end)`` of request time (UTC)."""
        bounds = [pd.Timestamp(m) for m in (start, validation_start, holdout_start, end)]
        pairs = list(pairwise(bounds))
        times = frame[TIMESTAMP]
        train, validation, holdout = (
            frame[(times >= low) & (times < high)].reset_index(drop=True) for low, high in pairs
        )
        windows = [
            DataWindow(start=low.to_pydatetime(), end=high.to_pydatetime()) for low, high in pairs
        ]
        return cls((train, validation, holdout), (windows[0], windows[1], windows[2]))

    @property
    def train(self) -> pd.DataFrame:
        return self.frames[0]

    @property
    def validation(self) -> pd.DataFrame:
        return self.frames[1]

    @property
    def holdout(self) -> pd.DataFrame:
        return self.frames[2]

    def rows(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in zip(SPLITS, self.frames, strict=True)}


@dataclass(frozen=True)
class Fitted:
    model: TrainedModel
    metrics: dict[str, Any]
    """Holdout metrics of the network (``model``) and the baseline, per slice, and the epochs."""
    reference: pd.DataFrame
    """Training rows kept in the artifact as the drift reference."""


@dataclass(frozen=True)
class ChampionScore:
    version: str
    metrics: dict[str, Any]
    """The champion's overall metrics on the candidate's holdout rows."""


@dataclass(frozen=True)
class Registered:
    version: ModelVersion
    gate: GateDecision
    checks: list[CheckResult]
    champion: ChampionScore | None
    decision: Decision


def fit(
    settings: Settings,
    spec: ModelSpec,
    dataset: TrainingSet,
    splits: Splits,
    laps: Laps,
    on_epoch: OnEpoch | None = None,
) -> Fitted:
    """Train the network (early stopping on validation) and the baseline on ``splits.train``;
    score both on ``splits.holdout``."""
    torch.set_num_threads(settings.torch_threads)
    label = spec.label.name
    train, validation, holdout = splits.frames
    result = train_network(
        train,
        validation,
        (train[label].to_numpy(), validation[label].to_numpy()),
        [ref.split(":", 1)[1] for ref in dataset.feature_refs],
        spec,
        settings.seed,
        on_epoch,
    )
    laps("network")
    baseline = GradientBoostingBaseline(result.model.preprocessor, settings.seed)
    baseline.fit(train, train[label].to_numpy())
    laps("baseline")
    labels = holdout[label].to_numpy()
    slices = {column: holdout[column].reset_index(drop=True) for column in spec.slices}
    model = evaluate(labels, result.model.predict_proba(holdout), spec.decision_threshold, slices)
    base = evaluate(labels, baseline.predict_proba(holdout), spec.decision_threshold, slices)
    metrics: dict[str, Any] = {
        "model": model["overall"],
        "baseline": base["overall"],
        "slices": {"model": model["slices"], "baseline": base["slices"]},
        "training": {
            "best_epoch": result.best_epoch,
            "epochs": [report.__dict__ for report in result.epochs],
        },
    }
    reference = train.sample(
        n=min(spec.training.reference_rows, len(train)), random_state=settings.seed
    )
    return Fitted(result.model, metrics, reference)


def score_champion(
    registry: ModelRegistry, spec: ModelSpec, holdout: pd.DataFrame
) -> ChampionScore | None:
    """The champion's artifact (checked against its sha256) scored on ``holdout``; None when
    the model has no champion yet."""
    if spec.name not in registry.models() or "champion" not in registry.aliases(spec.name):
        return None
    version = registry.get(spec.name, "champion")
    model = load_model(version.path, version.lineage.artifact_sha256)
    labels = holdout[spec.label.name].to_numpy()
    scores = model.predict_proba(holdout)
    return ChampionScore(
        version.version, evaluate(labels, scores, spec.decision_threshold, {})["overall"]
    )


def gate_and_register(
    settings: Settings,
    spec: ModelSpec,
    dataset: TrainingSet,
    splits: Splits,
    fitted: Fitted,
    retraining: Retraining | None = None,
) -> Registered:
    """Check, gate and register the fitted model; set the alias the gate gives it; append the
    gate's decision to the decision log. A held-back version is registered without an alias,
    its reasons in its lineage (``gate``) and in the log."""
    registry = ModelRegistry(settings.registry_dir)
    champion = score_champion(registry, spec, splits.holdout)
    checks = behaviour_checks(fitted.model, fitted.reference.head(BEHAVIOUR_ROWS), spec)
    gate = decide(
        spec.promotion,
        fitted.metrics,
        None if champion is None else champion.metrics,
        [f"{c.name}: {c.failure}" for c in checks if c.failure],
    )
    if retraining is not None and champion is not None:
        retraining = retraining.model_copy(
            update={"champion": champion.version, "champion_metrics": champion.metrics}
        )
    with tempfile.TemporaryDirectory(prefix="loopline-artifact-") as scratch:
        sha256 = save_model(fitted.model, fitted.reference, Path(scratch))
        lineage = records.lineage(
            settings, spec, dataset, splits.windows, splits.rows(), fitted.metrics, sha256
        )
        lineage.gate = records.gate_record(gate)
        lineage.retraining = retraining
        version = registry.register(spec.name, Path(scratch), lineage)
    if gate.alias:
        version = registry.set_alias(spec.name, gate.alias, version.version)
    decision = records.gate_decision(
        spec.name,
        gate,
        fitted.metrics,
        {"challenger": version.version, **({"champion": champion.version} if champion else {})},
        None if champion is None else champion.metrics,
        len(splits.holdout),
        None if retraining is None else retraining.trigger,
    )
    record_decision(settings.registry_dir, decision)
    return Registered(version, gate, checks, champion, decision)
