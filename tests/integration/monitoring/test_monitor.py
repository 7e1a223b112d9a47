"""``loopline monitor`` on a real live window: what it decided, wrote and pushed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from loopline.monitoring.drift import Reference, compute_drift
from loopline.monitoring.monitor import champion_reference, model_columns
from loopline.monitoring.report import run_report
from loopline.monitoring.window import Window, logged, window_frame
from loopline.outcomes import read_labelled
from loopline.registry import ModelRegistry
from loopline.registry.decisions import read_decisions
from tests.conftest import TrainedSetup
from tests.integration.monitoring.conftest import Monitored
from tests.integration.replay.conftest import LiveSetup

pytestmark = pytest.mark.integration


def test_the_summary_follows_the_contract_and_the_decision_is_logged(
    monitored: Monitored, trained: TrainedSetup
) -> None:
    summary = monitored.output["summary"]
    latest = json.loads((monitored.reports / trained.spec.name / "latest-monitor.json").read_text())
    assert latest == summary
    assert summary["model"] == trained.spec.name
    assert summary["champion_version"] == "v1"
    assert summary["rows"] > 500
    assert summary["decision"] in ("retrain", "no-retrain")
    assert set(summary["drifted_features"]) == {
        name for name, one in summary["drift"]["features"].items() if one["drifted"]
    }
    report = Path(summary["report"])
    assert report.name == "report.html"
    assert report.parent.parent == monitored.reports / trained.spec.name
    assert report.parent.name.startswith("monitor-")
    assert json.loads((report.parent / "summary.json").read_text()) == summary
    decisions = read_decisions(monitored.home / "registry", trained.spec.name)
    (decision,) = [d for d in decisions if d.kind == "monitor"]  # training logged the gate's
    assert decision.kind == "monitor"
    assert decision.outcome == summary["decision"] == monitored.output["outcome"]
    assert decision.reasons == summary["reasons"]
    assert decision.report == summary["report"]
    assert summary["push"] == "pushed"


def test_the_run_is_in_the_evidently_workspace(monitored: Monitored, trained: TrainedSetup) -> None:
    """What ``evidently ui --workspace <reports>/workspace`` lists."""
    from evidently.ui.workspace import Workspace

    workspace = Workspace(str(monitored.reports / "workspace"))
    (project,) = workspace.search_project(trained.spec.name)
    assert len(workspace.list_runs(project.id)) == 1


def test_drift_equals_evidentlys_on_the_whole_window(
    monitored: Monitored, live: LiveSetup, trained: TrainedSetup
) -> None:
    """The decision's scores (the fast path, on every row) against Evidently's on the same rows
    (the window is below ``monitor_report_rows``, so the report read every row too)."""
    summary = monitored.output["summary"]
    settings = live.settings
    version = ModelRegistry(trained.settings.registry_dir).get(trained.spec.name, "champion")
    columns = model_columns(trained.spec, version)
    window = Window(
        pd.Timestamp(summary["window"]["start"]), pd.Timestamp(summary["window"]["end"])
    )
    current = window_frame(logged(settings, window), trained.spec.name, "v1", columns)
    reference = champion_reference(settings, version)
    ours = compute_drift(Reference(reference, columns), current, trained.spec.drift)
    theirs = run_report(
        reference, current, columns, trained.spec.drift, name="check", timestamp=window.end
    ).drift
    assert summary["report_rows"] == summary["rows"] == len(current)
    assert {f.name: f.score for f in ours.features} == pytest.approx(
        {f.name: f.score for f in theirs.features}, rel=1e-9, abs=1e-12
    )
    assert summary["drift"]["features"].keys() == {f.name for f in ours.features}
    for feature in ours.features:
        assert summary["drift"]["features"][feature.name]["score"] == pytest.approx(feature.score)


def test_live_performance_counts_the_joined_outcomes(monitored: Monitored, live: LiveSetup) -> None:
    performance = monitored.output["summary"]["performance"]
    frame = read_labelled(live.settings.labelled_dir)
    labelled = frame[frame["delayed"].notna()]
    assert performance["predictions"] == monitored.output["summary"]["rows"]
    assert performance["labelled"] == len(labelled)
    assert performance["missing"] == 0
    assert (
        performance["labelled"]
        + performance["without_label"]
        + performance["expired"]
        + (performance["pending"])
        == performance["predictions"]
    )
    assert performance["roc_auc"] is not None
    assert 0.5 < performance["roc_auc"] < 1.0


def test_prometheus_scrapes_the_pushed_gauges(monitored: Monitored) -> None:
    import httpx

    from tests.integration.serving.server import wait_until

    summary = monitored.output["summary"]
    model = summary["model"]

    def query(expression: str) -> list[dict[str, object]]:
        answer = httpx.get(f"{monitored.prometheus_url}/api/v1/query", params={"query": expression})
        result: list[dict[str, object]] = answer.json()["data"]["result"]
        return result

    wait_until(lambda: bool(query(f'loopline_drift_share{{model="{model}"}}')), 30, "a scrape")
    (share,) = query(f'loopline_drift_share{{model="{model}"}}')
    assert float(share["value"][1]) == pytest.approx(summary["drift_share"])  # type: ignore[index]
    scores = {
        sample["metric"]["feature"]: float(sample["value"][1])  # type: ignore[index]
        for sample in query(f'loopline_feature_drift_score{{model="{model}"}}')
    }
    features = summary["drift"]["features"]
    assert scores == pytest.approx({name: one["score"] for name, one in features.items()})
    (detected,) = query(f'loopline_drift_detected{{model="{model}"}}')
    assert float(detected["value"][1]) == float(summary["drift"]["detected"])  # type: ignore[index]
    assert query(f'loopline_prediction_drift_score{{model="{model}"}}')
    assert query(
        f'loopline_monitor_last_run_timestamp_seconds{{model="{model}",job="loopline-monitor"}}'
    )


def test_the_report_renders_in_headless_chromium_without_the_network(
    monitored: Monitored, tmp_path: Path
) -> None:
    """Evidently embeds its JS and fonts: the page renders offline, with no console error,
    and names every drifted feature."""
    import subprocess

    report = Path(monitored.output["summary"]["report"])
    result = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=15000",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "error" in line.lower()], console
    assert "Uncaught" not in result.stderr
    dom = result.stdout
    assert "Dataset Drift" in dom or "Drifted" in dom or "drift" in dom.lower()
    for name in monitored.output["summary"]["drift"]["features"]:
        assert name in dom
