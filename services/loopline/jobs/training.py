"""``loopline train``: point-in-time training set over the spec's split → network and baseline →
holdout → behavioural checks → gate → registry (the steps in ``jobs.pipeline``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from loopline.data.prepare import read_table
from loopline.features.training_set import training_set
from loopline.jobs.pipeline import (
    Laps,
    OnEpoch,
    Progress,
    Registered,
    Splits,
    fit,
    gate_and_register,
)
from loopline.registry import ModelVersion
from loopline.rollout.gate import GateDecision
from loopline.settings import Settings
from loopline.spec import ModelSpec


@dataclass(frozen=True)
class TrainOutcome:
    registered: Registered
    """Everything the registration step knew: checks, the champion's score, the decision."""
    seconds: dict[str, float]

    @property
    def version(self) -> ModelVersion:
        return self.registered.version

    @property
    def gate(self) -> GateDecision:
        """The promotion gate's decision: the alias set (None when held back) and why."""
        return self.registered.gate


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def run_training(
    settings: Settings,
    spec: ModelSpec,
    progress: Progress | None = None,
    on_epoch: OnEpoch | None = None,
) -> TrainOutcome:
    laps = Laps(progress)
    dataset = training_set(
        settings,
        spec,
        read_table(settings, "requests"),
        read_table(settings, spec.label.source),
    )
    laps("training set")
    split = spec.split
    splits = Splits.at(
        dataset.frame,
        *(_utc(d) for d in (split.start, split.validation_start, split.holdout_start, split.end)),
    )
    fitted = fit(settings, spec, dataset, splits, laps, on_epoch)
    registered = gate_and_register(settings, spec, dataset, splits, fitted)
    laps("evaluate and register")
    return TrainOutcome(registered, laps.seconds)
