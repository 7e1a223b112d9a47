"""``loopline retrain`` on the suite's champion and two labelled live weeks: the window slides
into the live period, both models are scored on the same latest holdout, the gate decides and
logs, and a retrain killed half-way changes nothing."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from loopline.jobs.retraining import run_retraining
from loopline.registry import ModelRegistry
from loopline.registry.decisions import read_decisions
from loopline.spec import load_spec
from tests.integration.retrain.conftest import RetrainSetup, retrain_spec_file

pytestmark = pytest.mark.integration

LOOPLINE = str(Path(sys.executable).with_name("loopline"))


def test_the_window_slides_into_the_live_period_and_a_challenger_is_registered(
    retrain_setup: RetrainSetup, tmp_path: Path
) -> None:
    """The good path, with the gate asking only that the challenger be no worse than the
    champion minus 1 (which two fast models beat the other is not what is tested here)."""
    settings = retrain_setup.settings
    spec = load_spec(retrain_spec_file(tmp_path, promotion={"min_improvement": -1.0}))
    monitor = settings.reports_dir / spec.name / "latest-monitor.json"
    monitor.parent.mkdir(parents=True)
    monitor.write_text(
        json.dumps(
            {
                "model": spec.name,
                "champion_version": "v1",
                "drift_share": 0.42,
                "rows": 9000,
                "decision": "retrain",
                "drifted_features": ["temp"],
                "report": "/r/report.html",
                "window": {
                    "start": "2013-09-01T00:00:00+00:00",
                    "end": "2013-09-15T00:00:00+00:00",
                },
            }
        )
    )
    outcome = run_retraining(settings, spec)

    labelled = retrain_setup.labelled.rows
    end = labelled.loc[labelled["label"].notna(), "outcome_timestamp"].max()
    lineage = outcome.registered.version.lineage
    retraining = lineage.retraining
    assert retraining is not None
    assert pd.Timestamp(retraining.window.end) == end
    assert pd.Timestamp(retraining.window.start) == end - pd.Timedelta(days=21)
    assert lineage.holdout_window.start == retraining.window.end - pd.Timedelta(days=7)
    # Live rows (served and labelled after 2013-09-01) in training and the holdout, each
    # counted once: a live request in the holdout is one the labelled dataset holds.
    live_from = pd.Timestamp("2013-09-01", tz="UTC")
    assert pd.Timestamp(retraining.live_from) >= live_from
    assert lineage.train_window.end > live_from.to_pydatetime()
    labelled_holdout = labelled[
        (labelled["label"].notna())
        & (labelled["event_timestamp"] >= pd.Timestamp(lineage.holdout_window.start))
        & (labelled["outcome_timestamp"] <= end)
    ]
    assert retraining.live_rows["holdout"] == len(labelled_holdout) == lineage.rows["holdout"]
    assert 0 < retraining.live_rows["train"] < lineage.rows["train"]
    assert retraining.live_rows["validation"] == lineage.rows["validation"]

    # The trigger, by path, sha256 and drift share.
    assert retraining.trigger is not None
    assert retraining.trigger.path == str(monitor)
    assert retraining.trigger.sha256 == hashlib.sha256(monitor.read_bytes()).hexdigest()
    assert retraining.trigger.drift_share == 0.42

    # The champion scored on the same rows, not its own holdout of March.
    champion = ModelRegistry(settings.registry_dir).get(spec.name, "champion")
    assert retraining.champion == champion.version == "v1"
    assert retraining.champion_metrics["rows"] == lineage.metrics["model"]["rows"]  # type: ignore[index]
    assert champion.lineage.metrics["model"]["rows"] != retraining.champion_metrics["rows"]  # type: ignore[index]

    registry = ModelRegistry(settings.registry_dir)
    assert registry.aliases(spec.name) == {"champion": "v1", "challenger": "v2"}
    decision = list(read_decisions(settings.registry_dir, spec.name))[-1]
    assert decision.kind == "gate"
    assert decision.outcome == "challenger"
    assert decision.versions == {"champion": "v1", "challenger": "v2"}
    assert decision.figures["champion_roc_auc"] == retraining.champion_metrics["roc_auc"]
    assert decision.figures["challenger_roc_auc"] == lineage.metrics["model"]["roc_auc"]  # type: ignore[index]
    assert decision.figures["drift_share"] == 0.42
    assert decision.report == str(monitor)
    summary = outcome.summary()
    assert summary["holdout"]["roc_auc"] == {
        "champion": decision.figures["champion_roc_auc"],
        "challenger": decision.figures["challenger_roc_auc"],
    }


def test_a_challenger_worse_than_the_champion_is_kept_without_an_alias(
    retrain_setup: RetrainSetup, tmp_path: Path
) -> None:
    """A learning rate that leaves the network at its random start: far worse than v1."""
    settings = retrain_setup.settings
    spec = load_spec(retrain_spec_file(tmp_path, training={"learning_rate": 1e-9, "epochs": 1}))
    outcome = run_retraining(settings, spec)

    gate = outcome.registered.gate
    assert gate.alias is None
    assert gate.champion_value is not None
    assert gate.value < gate.champion_value
    assert any("does not beat the champion's" in reason for reason in gate.reasons)
    registry = ModelRegistry(settings.registry_dir)
    assert [v.version for v in registry.versions(spec.name)] == ["v1", "v2"]
    assert registry.aliases(spec.name) == {"champion": "v1"}
    kept = registry.get(spec.name, "v2").lineage
    assert kept.gate is not None
    assert kept.gate.reasons == gate.reasons
    decision = list(read_decisions(settings.registry_dir, spec.name))[-1]
    assert decision.outcome == "rejected"
    assert decision.reasons == gate.reasons
    assert decision.figures["challenger_roc_auc"] == gate.value
    assert decision.figures["champion_roc_auc"] == gate.champion_value


def test_a_retrain_killed_while_training_leaves_the_registry_as_it_was(
    retrain_setup: RetrainSetup, tmp_path: Path
) -> None:
    settings = retrain_setup.settings
    spec_file = retrain_spec_file(tmp_path, training={"epochs": 4, "patience": 4})
    registry = ModelRegistry(settings.registry_dir)
    name = retrain_setup.trained.spec.name
    before = ([v.version for v in registry.versions(name)], registry.aliases(name))
    champion_sha = registry.get(name, "champion").registered_sha256
    logged = len(list(read_decisions(settings.registry_dir, name)))

    process = subprocess.Popen(
        [LOOPLINE, "retrain", "--model", str(spec_file)],
        env=retrain_setup.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen = []
    for line in process.stderr:  # epoch lines go to stderr as training runs
        seen.append(line)
        if line.strip().startswith("epoch 1:"):
            process.send_signal(signal.SIGKILL)
            break
    assert process.wait(timeout=60) == -signal.SIGKILL, "".join(seen)

    assert ([v.version for v in registry.versions(name)], registry.aliases(name)) == before
    assert registry.get(name, "champion").registered_sha256 == champion_sha
    assert len(list(read_decisions(settings.registry_dir, name))) == logged
    listed = subprocess.run(
        [LOOPLINE, "models", "list", "--json"],
        env=retrain_setup.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert [row["version"] for row in json.loads(listed.stdout)] == before[0]

    again = subprocess.run(
        [LOOPLINE, "retrain", "--model", str(spec_file), "--json"],
        env=retrain_setup.env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["challenger"]["version"] == "v2"
    assert summary["decision"]["kind"] == "gate"
    assert set(summary["holdout"]["roc_auc"]) == {"champion", "challenger"}
    assert len(list(read_decisions(settings.registry_dir, name))) == logged + 1
