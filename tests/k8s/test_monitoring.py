"""Alerts and dashboard: promtool checks and unit-tests the PrometheusRule's rules; the Grafana
dashboard parses and every query names a metric the predictor exports, checked against the
metric contract and against a real scrape of `loopline serve`."""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from loopline.registry.store import ModelRegistry
from tests.conftest import TrainedSetup
from tests.k8s import kube, predictor
from tests.metrics_contract import CONTRACT
from tests.redis_server import free_port

pytestmark = pytest.mark.k8s

DASHBOARD = kube.CHART / "files" / "grafana-dashboard.json"
JOBS_ROW = "Monitor and rollout jobs"
LIVE_ROW = "Live performance"

PREDICTOR_METRICS = {name: kind for name, (kind, _) in CONTRACT.items()}

MONITOR_METRICS = {
    "loopline_drift_detected": "gauge",
    "loopline_drift_share": "gauge",
    "loopline_feature_drift_score": "gauge",
    "loopline_feature_drifted": "gauge",
    "loopline_prediction_drift_score": "gauge",
    "loopline_monitor_last_run_timestamp_seconds": "gauge",
}
"""What `loopline monitor` pushes to the Pushgateway after each run (issue 11's contract), not
the predictor."""

ROLLOUT_METRICS = {"loopline_rollout_last_decision_timestamp_seconds": "gauge"}
"""What `loopline rollout` pushes (labels model and outcome: promoted, rolled-back, waiting)."""

JOB_METRICS = MONITOR_METRICS | ROLLOUT_METRICS


def _live_metrics() -> dict[str, str]:
    """What the outcome join registers on the ingest process's registry (a real one, built)."""
    from prometheus_client import CollectorRegistry

    from loopline.outcomes import build_outcome_sink
    from loopline.settings import Settings

    registry = CollectorRegistry()
    build_outcome_sink(Settings(home=Path("/nonexistent")), registry).close()
    return {family.name: family.type for family in registry.collect()}


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


def _exposed(families: dict[str, str]) -> set[str]:
    """Every series name the families expose in the text format."""
    names = set()
    for family, kind in families.items():
        names |= {family + suffix for suffix in _SUFFIXES.get(kind, ("",))}
        names.add(family)
    return names


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bloopline_[a-z0-9_]+\b", expr))


def _dashboard_rows() -> dict[str, list[str]]:
    """The dashboard's queries in panel order, by who exports their metrics: ``predictor``,
    ``jobs`` (the monitor's and rollout's row, from the Pushgateway) or ``live`` (the outcome
    join's row, from ``loopline ingest``)."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs: dict[str, list[str]] = {"predictor": [], "jobs": [], "live": []}
    row = ""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
            continue
        who = (
            "jobs"
            if row.startswith(JOBS_ROW)
            else "live"
            if row.startswith(LIVE_ROW)
            else "predictor"
        )
        exprs[who] += [target["expr"] for target in panel["targets"]]
    return exprs


def _dashboard_queries() -> tuple[list[str], list[str]]:
    """(predictor queries, job-row queries) of the dashboard, in panel order."""
    rows = _dashboard_rows()
    return rows["predictor"], rows["jobs"]


def _rules(renders: dict[str, list[kube.Doc]], variant: str) -> dict[str, Any]:
    rule = next(d for d in renders[variant] if d["kind"] == "PrometheusRule")
    return dict(rule["spec"])


def _alert_exprs(rules: dict[str, Any], group: str) -> list[str]:
    return [r["expr"] for g in rules["groups"] if g["name"] == group for r in g["rules"]]


@pytest.mark.parametrize("variant", ["all-flags", "knative-kpa"])
def test_promtool_checks_the_rules(
    renders: dict[str, list[kube.Doc]], variant: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(_rules(renders, variant)))
    out = kube.run([kube.PROMTOOL, "check", "rules", rules])
    assert "SUCCESS: 9 rules found" in out


def test_alerts_fire_when_they_should(renders: dict[str, list[kube.Doc]], tmp_path: Path) -> None:
    """promtool's rule unit tests on the rendered rules (annotations left out: they are prose)."""
    rules = _rules(renders, "all-flags")
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    shutil.copy(Path(__file__).parent / "alerts_test.yaml", tmp_path)
    out = kube.run([kube.PROMTOOL, "test", "rules", "alerts_test.yaml"], cwd=tmp_path)
    assert "SUCCESS" in out


def test_dashboard_queries_name_contract_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "loopline-overview"
    predictor_exprs, job_exprs = _dashboard_queries()
    assert len(predictor_exprs) >= 12
    used = set().union(*map(_metric_names, predictor_exprs))
    assert used <= _exposed(PREDICTOR_METRICS), used - _exposed(PREDICTOR_METRICS)
    # Every metric of the contract is on the dashboard.
    assert {m for m in PREDICTOR_METRICS if not _exposed({m: PREDICTOR_METRICS[m]}) & used} == set()
    # Every gauge the monitor and rollout push has a panel in their row, and only those.
    assert set().union(*map(_metric_names, job_exprs)) == set(JOB_METRICS)


def test_live_performance_row_and_alerts_name_what_the_outcome_join_exports(
    renders: dict[str, list[kube.Doc]],
) -> None:
    live = _exposed(_live_metrics())
    used = set().union(*map(_metric_names, _dashboard_rows()["live"]))
    assert "loopline_live_roc_auc" in used
    assert used <= live, used - live
    alerts = set().union(
        *map(_metric_names, _alert_exprs(_rules(renders, "all-flags"), "loopline.live"))
    )
    assert alerts == {"loopline_live_roc_auc", "loopline_outcome_joined_total"}
    assert alerts <= live


def test_dashboard_configmap_carries_the_dashboard(renders: dict[str, list[kube.Doc]]) -> None:
    configmap = next(
        d
        for d in renders["all-flags"]
        if kube.key(d) == ("ConfigMap", "loopline-grafana-dashboard")
    )
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["loopline.json"]) == json.loads(DASHBOARD.read_text())


def test_alerts_name_contract_metrics(renders: dict[str, list[kube.Doc]]) -> None:
    rules = _rules(renders, "all-flags")
    predictor_used = set().union(*map(_metric_names, _alert_exprs(rules, "loopline.predictor")))
    assert predictor_used <= _exposed(PREDICTOR_METRICS)
    loop = _alert_exprs(rules, "loopline.loop")
    assert set().union(*map(_metric_names, loop)) == {
        "loopline_drift_detected",
        "loopline_rollout_last_decision_timestamp_seconds",
    }
    assert set().union(*map(_metric_names, loop)) <= set(JOB_METRICS)
    # The failed retrain comes from kube-state-metrics: a Job of the retrain CronJob.
    assert any("kube_job_failed{" in expr for expr in loop)


@pytest.fixture(scope="module")
def scrape(trained: TrainedSetup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """/metrics of a real `loopline serve` (this virtualenv) after one inference request."""
    root = tmp_path_factory.mktemp("scrape")
    model_dir = ModelRegistry(trained.settings.registry_dir).export(
        trained.spec.name, "champion", root / "model"
    )
    port, grpc_port = free_port(), free_port()
    env = predictor.serve_env(
        model_dir=model_dir, feature_repo=trained.settings.feature_repo, home=root / "home"
    )
    loopline = Path(sys.executable).parent / "loopline"
    command: list[str | Path] = [
        loopline,
        "serve",
        "--port",
        str(port),
        "--grpc-port",
        str(grpc_port),
    ]
    with predictor.running(command, env=env, cwd=root, port=port, log=root / "serve.log") as base:
        requests = pd.read_parquet(trained.settings.data_dir / "requests.parquet")
        example = requests.iloc[-1].to_dict()
        assert predictor.infer_once(base, trained.spec, example) == 200
        # Prediction-log records count once durable (fsynced): give the sink a moment.
        deadline = time.monotonic() + 10
        while True:
            status, body = predictor.get(f"{base}/metrics")
            assert status == 200
            families = {f.name for f in text_string_to_metric_families(body.decode())}
            if set(PREDICTOR_METRICS) <= families or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        yield body.decode()


def test_dashboard_and_alerts_name_metrics_of_a_real_scrape(
    scrape: str, renders: dict[str, list[kube.Doc]]
) -> None:
    families = {f.name: f.type for f in text_string_to_metric_families(scrape)}
    missing_from_contract = {
        name for name, kind in PREDICTOR_METRICS.items() if families.get(name) != kind
    }
    assert missing_from_contract == set(), f"the predictor does not export {missing_from_contract}"
    exposed = _exposed(families)
    predictor_exprs, _ = _dashboard_queries()
    rules = _rules(renders, "all-flags")
    exprs = [*predictor_exprs, *_alert_exprs(rules, "loopline.predictor")]
    for expr in exprs:
        assert _metric_names(expr) <= exposed, expr
    # The endpoint names the queries select are endpoints the predictor labels.
    endpoints = {
        sample.labels["endpoint"]
        for family in text_string_to_metric_families(scrape)
        if family.name == "loopline_request_duration_seconds"
        for sample in family.samples
    }
    selected = {
        name
        for expr in exprs
        for alternatives in re.findall(r'endpoint=~"([^"]+)"', expr)
        for name in alternatives.split("|")
    }
    assert selected
    assert selected <= endpoints, selected - endpoints
