"""``loopline retrain``: a challenger trained on a sliding window that ends at the latest labelled
outcome, judged against the champion on the same, most recent holdout (docs/retraining.md).

The window's requests come from two places: the history (the prepared ``requests`` table's
``history`` split, labelled by the prepared outcomes) and the live period, which only the
labelled dataset knows: the requests the platform served, with the outcomes the join matched to
them (``outcomes.read_labelled``). A label counts only if it was known by the window's end.
Features for every row, history and live alike, come from Feast's ``get_historical_features``,
as of each request's timestamp (the same point-in-time join as ``loopline train``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from loopline.data.prepare import read_manifest, read_table
from loopline.errors import RetrainError
from loopline.features.training_set import TIMESTAMP, training_set
from loopline.jobs.pipeline import (
    Laps,
    OnEpoch,
    Progress,
    Registered,
    Splits,
    fit,
    gate_and_register,
)
from loopline.outcomes.dataset import read_labelled
from loopline.registry.lineage import DataWindow, MonitorTrigger, Retraining
from loopline.settings import Settings
from loopline.spec import ModelSpec

MONITOR_SUMMARY = "latest-monitor.json"
"""The monitor's latest summary, ``<reports>/<model>/latest-monitor.json`` (the contract)."""


class _MonitorSummary(BaseModel):
    """The keys of a monitor summary a retrain records; the others are not read."""

    model_config = ConfigDict(extra="ignore")
    decision: str | None = None
    drift_share: float | None = None
    champion_version: str | None = None
    report: str | None = None


def read_trigger(settings: Settings, model: str) -> MonitorTrigger | None:
    """What the latest monitor run said, with the summary's path and sha256; None when the
    monitor has not run."""
    path = settings.reports_dir / model / MONITOR_SUMMARY
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        summary = _MonitorSummary.model_validate_json(data)
    except ValidationError as error:
        raise RetrainError(f"{path} is not a monitor summary: {error}") from None
    return MonitorTrigger(
        path=str(path), sha256=hashlib.sha256(data).hexdigest(), **summary.model_dump()
    )


@dataclass(frozen=True)
class Labelled:
    """The live period as the labelled dataset has it, in the shape of the prepared tables."""

    requests: pd.DataFrame
    outcomes: pd.DataFrame
    """``request_id``, ``status``, the label, and ``event_timestamp``: when it became known."""
    latest_outcome: datetime | None
    """When the latest label became known; None when nothing is labelled yet."""


def labelled_requests(settings: Settings, spec: ModelSpec) -> Labelled:
    """The model's served requests and their outcomes, one row per request id (a flight
    predicted by two versions is one training row)."""
    frame = read_labelled(settings.labelled_dir)
    if "model" in frame.columns:
        frame = frame[frame["model"] == spec.name]
    fields = list(
        dict.fromkeys([spec.request_id, TIMESTAMP, *spec.entity_keys, *spec.request_fields])
    )
    label = spec.label.name
    if frame.empty:
        empty = pd.DataFrame(columns=fields)
        return Labelled(
            empty, pd.DataFrame(columns=[spec.request_id, "status", label, TIMESTAMP]), None
        )
    frame = frame.drop_duplicates(spec.request_id, keep="first")
    outcomes = frame[[spec.request_id, "status", label, "outcome_timestamp"]].rename(
        columns={"outcome_timestamp": TIMESTAMP}
    )
    known = frame.loc[frame[label].notna(), "outcome_timestamp"]
    latest = None if known.empty else pd.Timestamp(known.max()).to_pydatetime()
    return Labelled(frame[fields].reset_index(drop=True), outcomes.reset_index(drop=True), latest)


def sliding_window(spec: ModelSpec, end: datetime) -> tuple[datetime, datetime, datetime, datetime]:
    """``start, validation_start, holdout_start, end`` of the window ending at ``end``."""
    days = spec.retraining
    holdout_start = end - timedelta(days=days.holdout_days)
    return (
        end - timedelta(days=days.window_days),
        holdout_start - timedelta(days=days.validation_days),
        holdout_start,
        end,
    )


@dataclass(frozen=True)
class RetrainOutcome:
    registered: Registered
    retraining: Retraining
    seconds: dict[str, float]

    def summary(self) -> dict[str, Any]:
        """What ``loopline retrain --json`` prints: the gate's decision (as logged), both
        models' holdout figures side by side, the window and what triggered it."""
        registered = self.registered
        champion = registered.champion
        challenger = registered.version.lineage.metrics["model"]
        assert isinstance(challenger, dict)
        return {
            "decision": registered.decision.model_dump(mode="json"),
            "challenger": registered.version.to_summary(),
            "alias_set": registered.gate.alias,
            "holdout": {
                **registered.version.lineage.holdout_window.model_dump(mode="json"),
                "rows": challenger["rows"],
                "roc_auc": {
                    "champion": None if champion is None else champion.metrics["roc_auc"],
                    "challenger": challenger["roc_auc"],
                },
                "versions": registered.decision.versions,
            },
            "checks": {check.name: check.failure for check in registered.checks},
            "retraining": self.retraining.model_dump(mode="json"),
            "rows": registered.version.lineage.rows,
            "seconds": self.seconds,
        }


def _concat(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Both frames' rows; an empty one (no live data yet) is left out, not allowed to turn
    typed columns into objects."""
    return first if second.empty else pd.concat([first, second], ignore_index=True)


def run_retraining(
    settings: Settings,
    spec: ModelSpec,
    progress: Progress | None = None,
    on_epoch: OnEpoch | None = None,
) -> RetrainOutcome:
    laps = Laps(progress)
    trigger = read_trigger(settings, spec.name)
    live = labelled_requests(settings, spec)
    end = live.latest_outcome or read_manifest(settings).live_from
    start, validation_start, holdout_start, _ = sliding_window(spec, end)
    live_ids = set(live.requests[spec.request_id])
    requests = read_table(settings, "requests")
    history = requests.loc[requests["split"] == "history", list(live.requests.columns)]
    history = history[~history[spec.request_id].isin(live_ids)]  # served: the log's is kept
    reference = read_table(settings, spec.label.source)
    reference = reference[reference[spec.request_id].isin(history[spec.request_id])]
    outcomes = _concat(reference, live.outcomes)
    outcomes = outcomes[outcomes[TIMESTAMP] <= pd.Timestamp(end)]  # labels known by the end
    dataset = training_set(
        settings,
        spec,
        _concat(history, live.requests),
        outcomes,
        (pd.Timestamp(start), pd.Timestamp(end)),
    )
    if dataset.frame.empty:
        raise RetrainError(f"no labelled requests in {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}")
    laps("training set")
    splits = Splits.at(dataset.frame, start, validation_start, holdout_start, end)
    in_live = [frame[frame[spec.request_id].isin(live_ids)] for frame in splits.frames]
    live_times = pd.concat([frame[TIMESTAMP] for frame in in_live])
    retraining = Retraining(
        window=DataWindow(start=start, end=end),
        live_from=None if live_times.empty else live_times.min().to_pydatetime(),
        live_rows={name: len(frame) for name, frame in zip(splits.rows(), in_live, strict=True)},
        trigger=trigger,
    )
    fitted = fit(settings, spec, dataset, splits, laps, on_epoch)
    registered = gate_and_register(settings, spec, dataset, splits, fitted, retraining)
    laps("evaluate and register")
    assert registered.version.lineage.retraining is not None
    return RetrainOutcome(registered, registered.version.lineage.retraining, laps.seconds)
