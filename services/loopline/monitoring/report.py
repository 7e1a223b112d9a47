"""The one place Loopline calls Evidently: the drift report of a window, as HTML and as a run
in an Evidently workspace (``evidently ui --workspace <reports>/workspace`` shows the history).

The report tests each feature column with the method ``stattests`` computes (so the HTML shows
the numbers the monitor decided on), counts the drifted share with the spec's ``drift_share``
(``DataDriftPreset``), and tests the prediction column apart (``ValueDrift``). What Evidently
answered comes back as our own ``DriftResult``; nothing outside this module reads Evidently's
objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from loopline.monitoring.drift import PREDICTION, DriftResult, FeatureDrift
from loopline.monitoring.stattests import METHODS, ColumnKind
from loopline.spec import DriftSpec

WORKSPACE = "workspace"
"""The Evidently workspace's directory, under the reports directory."""


@dataclass(frozen=True)
class EvidentlyRun:
    drift: DriftResult
    """Evidently's own values, as our result."""
    snapshot: Any
    """The ``evidently.core.report.Snapshot`` (kept for ``save``)."""

    def save(self, html: Path, workspace: Path, project: str) -> str:
        """Write the HTML report and add the run to ``workspace``'s ``project`` (created when
        missing); returns the run's id in the workspace."""
        from evidently.ui.workspace import Workspace

        html.parent.mkdir(parents=True, exist_ok=True)
        self.snapshot.save_html(str(html))
        store = Workspace.create(str(workspace))
        found = store.search_project(project)
        target = found[0] if found else store.create_project(project, "Loopline drift monitor")
        return str(store.add_run(target.id, self.snapshot, include_data=False).id)


def run_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Mapping[str, ColumnKind],
    spec: DriftSpec,
    *,
    name: str,
    timestamp: datetime,
    scores_only: bool = False,
) -> EvidentlyRun:
    """Evidently's drift report of ``current`` against ``reference`` over ``columns`` (and
    ``probability`` when both sides have it). ``scores_only``: the per-column ``ValueDrift``
    metrics alone (those the preset generates), without the preset's dataset-level tables,
    which recompute every column (the benchmark's check on a million rows)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    features = [name for name in columns if _present(reference, current, name)]
    with_prediction = _present(reference, current, PREDICTION)
    numeric = [n for n in features if columns[n] == "numeric"]
    definition = DataDefinition(
        numerical_columns=numeric + ([PREDICTION] if with_prediction else []),
        categorical_columns=[n for n in features if columns[n] == "categorical"],
    )
    kept = features + ([PREDICTION] if with_prediction else [])
    tested = kept if scores_only else kept[len(features) :]
    metrics: list[Any] = [
        ValueDrift(
            column=n, method=METHODS[columns.get(n, "numeric")], threshold=spec.stattest_threshold
        )
        for n in tested
    ]
    if not scores_only:
        preset = DataDriftPreset(
            columns=features,
            num_method=METHODS["numeric"],
            cat_method=METHODS["categorical"],
            threshold=spec.stattest_threshold,
            drift_share=spec.drift_share,
        )
        metrics.insert(0, preset)
    snapshot = Report(metrics).run(
        Dataset.from_pandas(_typed(current[kept], columns), data_definition=definition),
        Dataset.from_pandas(_typed(reference[kept], columns), data_definition=definition),
        timestamp=timestamp,
        name=name,
    )
    scores = _value_drifts(snapshot.dict())
    drifts = [
        FeatureDrift(n, columns[n], METHODS[columns[n]], scores[n], spec.stattest_threshold)
        for n in features
    ]
    prediction = None
    if with_prediction:
        threshold = spec.stattest_threshold
        prediction = FeatureDrift(
            PREDICTION, "numeric", METHODS["numeric"], scores[PREDICTION], threshold
        )
    return EvidentlyRun(DriftResult(drifts, prediction, spec.drift_share), snapshot)


def _present(reference: pd.DataFrame, current: pd.DataFrame, name: str) -> bool:
    """Evidently refuses a column with no value on either side."""
    return all(
        name in frame.columns
        and frame[name].replace([float("inf"), -float("inf")], None).notna().any()
        for frame in (reference, current)
    )


def _typed(frame: pd.DataFrame, columns: Mapping[str, ColumnKind]) -> pd.DataFrame:
    """Categorical values as text (a served ``5`` and a trained ``"5"`` are one category),
    numbers as floats, as ``stattests.summarise`` reads them."""
    typed = {}
    for name in frame.columns:
        column = frame[name]
        if columns.get(name) == "categorical":
            typed[name] = column.where(column.isna(), column.astype(str)).astype(object)
        else:
            typed[name] = pd.to_numeric(column, errors="coerce").astype("float64")
    return pd.DataFrame(typed, index=frame.index)


def _value_drifts(snapshot: dict[str, Any]) -> dict[str, float]:
    """Column -> drift score, from the snapshot's ``ValueDrift`` metrics."""
    return {
        metric["config"]["column"]: float(metric["value"])
        for metric in snapshot["metrics"]
        if metric["config"].get("type") == "evidently:metric_v2:ValueDrift"
    }
