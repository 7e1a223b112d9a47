"""``loopline monitor``: the champion's live window against its training reference, then the
decision to retrain or not (docs/monitoring.md).

One run reads the window of logged predictions (``window``), computes drift on all of it
(``drift``), renders Evidently's report of it (``report``; on a seeded sample above
``monitor_report_rows``), measures live performance from the joined outcomes (``performance``),
decides, writes ``report.html`` and ``summary.json`` (and ``latest-monitor.json``, which
retraining reads), appends the decision to the decision log and pushes the gauges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
import pandas as pd

from loopline.files import write_text_atomic
from loopline.model.artifact import REFERENCE_SAMPLE, load_model
from loopline.monitoring.drift import PREDICTION, DriftResult, Reference, compute_drift
from loopline.monitoring.gauges import JOB, monitor_gauges
from loopline.monitoring.performance import WindowPerformance, live_performance
from loopline.monitoring.report import WORKSPACE, run_report
from loopline.monitoring.stattests import ColumnKind
from loopline.monitoring.window import Window, live_frame
from loopline.pushgateway import PushOutcome, push
from loopline.registry import ModelRegistry, ModelVersion
from loopline.registry.decisions import Decision, record_decision
from loopline.settings import Settings
from loopline.spec import ModelSpec

MonitorDecision = Literal["retrain", "no-retrain", "too-few-rows"]
LATEST = "latest-monitor.json"


@dataclass(frozen=True)
class MonitorResult:
    """What one run found and decided; ``retrain`` is what a caller acts on."""

    model: str
    champion_version: str
    window: Window
    rows: int
    drift: DriftResult | None
    """None when the window is empty."""
    performance: WindowPerformance
    decision: MonitorDecision
    reasons: list[str]
    report: Path | None
    """``report.html``; None when the window is empty."""
    report_rows: int
    """Rows of the window Evidently's report was built on (all, or a seeded sample)."""
    summary_path: Path
    push: PushOutcome

    @property
    def retrain(self) -> bool:
        return self.decision == "retrain"

    def summary(self) -> dict[str, Any]:
        drift = self.drift
        return {
            "model": self.model,
            "champion_version": self.champion_version,
            "window": self.window.as_dict(),
            "rows": self.rows,
            "drift_share": None if drift is None else drift.share,
            "drifted_features": [] if drift is None else drift.drifted_features,
            "decision": self.decision,
            "reasons": self.reasons,
            "report": None if self.report is None else str(self.report),
            "report_rows": self.report_rows,
            "drift": None if drift is None else drift.as_dict(),
            "performance": self.performance.as_dict(),
            "push": self.push,
        }

    def to_decision(self) -> Decision:
        drift = self.drift
        prediction = None if drift is None or drift.prediction is None else drift.prediction
        return Decision(
            kind="monitor",
            model=self.model,
            outcome=self.decision,
            versions={"champion": self.champion_version},
            reasons=self.reasons,
            figures={
                "rows": self.rows,
                "drift_share": None if drift is None else drift.share,
                "prediction_drift": None if prediction is None else prediction.score,
                "live_roc_auc": self.performance.roc_auc,
                "labelled": self.performance.labelled,
                "pending": self.performance.pending,
                "missing": self.performance.missing,
            },
            report=None if self.report is None else str(self.report),
        )


def model_columns(spec: ModelSpec, version: ModelVersion) -> dict[str, ColumnKind]:
    """What the model reads: the request fields (by the spec's kinds), then its features."""
    columns: dict[str, ColumnKind] = dict(spec.request_fields)
    columns.update((ref.split(":", 1)[-1], "numeric") for ref in version.lineage.features)
    return columns


def champion_reference(settings: Settings, version: ModelVersion) -> pd.DataFrame:
    """The champion's reference sample with its own scores on it (``probability``)."""
    import torch

    torch.set_num_threads(settings.torch_threads)
    model = load_model(version.path, version.registered_sha256)
    frame = pd.read_parquet(version.path / REFERENCE_SAMPLE)
    frame[PREDICTION] = model.predict_proba(frame)
    return frame


def run_monitor(
    settings: Settings,
    spec: ModelSpec,
    window_days: float | None = None,
    now: datetime | None = None,
) -> MonitorResult:
    end = now or datetime.now(UTC)
    window = Window(end - timedelta(days=window_days or settings.monitor_window_days), end)
    version = ModelRegistry(settings.registry_dir).get(spec.name, "champion")
    columns = model_columns(spec, version)
    reference = Reference(champion_reference(settings, version), columns)
    current = live_frame(settings, window, spec.name, version.version, columns)
    delay = timedelta(hours=settings.outcome_max_delay_hours)
    performance = live_performance(
        current, settings.labelled_dir, spec.label.name, delay, spec.drift.min_rows
    )
    directory = settings.reports_dir / spec.name / f"monitor-{end:%Y%m%dT%H%M%SZ}"
    drift, html, report_rows = None, None, 0
    if len(current):
        drift = compute_drift(reference, current, spec.drift)
        shown = current
        if len(current) > settings.monitor_report_rows:
            shown = current.sample(settings.monitor_report_rows, random_state=settings.seed)
        html, report_rows = directory / "report.html", len(shown)
        run = run_report(
            reference.frame,
            shown,
            columns,
            spec.drift,
            name=f"{spec.name} {version.version}",
            timestamp=end,
        )
        run.save(html, settings.reports_dir / WORKSPACE, spec.name)
    decision, reasons = decide(spec, len(current), drift, performance)
    pushed = push(settings.pushgateway_url, JOB, spec.name, monitor_gauges(spec.name, drift, end))
    result = MonitorResult(
        spec.name,
        version.version,
        window,
        len(current),
        drift,
        performance,
        decision,
        reasons,
        html,
        report_rows,
        directory / "summary.json",
        pushed,
    )
    text = orjson.dumps(result.summary(), option=orjson.OPT_INDENT_2).decode()
    write_text_atomic(result.summary_path, text)
    write_text_atomic(settings.reports_dir / spec.name / LATEST, text)
    record_decision(settings.registry_dir, result.to_decision())
    return result


def decide(
    spec: ModelSpec, rows: int, drift: DriftResult | None, performance: WindowPerformance
) -> tuple[MonitorDecision, list[str]]:
    """Retrain when the features drifted (share ≥ ``drift.drift_share``), the predictions
    drifted (score ≥ ``drift.stattest_threshold``) or live ROC AUC fell below the promotion
    gate's ``min_value``; with fewer than ``drift.min_rows`` rows, no decision."""
    if rows < spec.drift.min_rows or drift is None:
        return "too-few-rows", [
            f"{rows} predictions in the window, fewer than drift.min_rows {spec.drift.min_rows}"
        ]
    triggers, calm = [], []
    share = f"{drift.share:.2f} of {len(drift.features)} features drifted"
    if drift.detected:
        named = ", ".join(drift.drifted_features)
        triggers.append(f"{share} (≥ drift_share {drift.drift_share_threshold}): {named}")
    else:
        calm.append(f"{share} (< drift_share {drift.drift_share_threshold})")
    if drift.prediction is not None:
        said = f"prediction drift {drift.prediction.score:.3f}"
        threshold = f"stattest_threshold {drift.prediction.threshold}"
        if drift.prediction.drifted:
            triggers.append(f"{said} ≥ {threshold}")
        else:
            calm.append(f"{said} < {threshold}")
    auc, floor = performance.roc_auc, spec.promotion.min_value
    if auc is None:
        calm.append(f"live ROC AUC not measured: {performance.labelled} labelled predictions")
    elif auc < floor:
        triggers.append(f"live ROC AUC {auc:.3f} < promotion.min_value {floor}")
    else:
        calm.append(f"live ROC AUC {auc:.3f} ≥ promotion.min_value {floor}")
    return ("retrain", triggers) if triggers else ("no-retrain", calm)
