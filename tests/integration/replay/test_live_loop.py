"""Replay a slice of the live period through a real server and ingest; the outcome join's
gauges on ingest's /metrics equal scikit-learn on the labelled dataset, and the features the
fresh predictions were served with equal Feast's point-in-time features."""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import roc_auc_score

from loopline.features.store import apply
from loopline.monitoring.skew import check_skew
from loopline.outcomes import read_labelled
from loopline.replay import replay
from tests.integration.replay.conftest import LiveSetup

pytestmark = pytest.mark.integration
REPO_MODULES = {"data_sources", "entities", "feature_services", "feature_views", "on_demand"}
"""The feature repo's modules: ``feast apply`` imports them by name, so a changed one is only
read again once the earlier import is forgotten."""
STREAMED = {
    f"{entity}_dep_delay_{stat}_{window}"
    for entity in ("origin", "carrier")
    for stat in ("mean", "count")
    for window in ("1h", "3h")
} | {"origin_delay_trend"}
"""The features ingest's departure aggregates feed (``origin_delay_trend`` reads two)."""
START = datetime(2013, 9, 1, tzinfo=UTC)
END = datetime(2013, 9, 2, 6, tzinfo=UTC)
"""30 hours from where the online store was materialized (local 20:00 to 02:00 two days on)."""


@pytest.fixture(scope="module")
def counted_before(live: LiveSetup) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The counters before the replay: once BentoML has switched ``prometheus_client`` to
    multiprocess values, same-named series of another module's join in this process share
    their value, so the replay's counts are increases from here (each series made first, so
    that the shared value shows)."""
    for result in ("labelled", "excluded", "expired"):
        live.join.metrics.joined.labels("v1", result)
    return scrape(live.metrics_url)


@pytest.fixture(scope="module")
def replayed(live: LiveSetup, counted_before: dict[object, float]) -> dict[str, object]:
    summary = replay(live.settings, live.spec, START, END, speed=None)
    live.join.flush()
    return summary


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_every_request_is_served_and_every_outcome_joined(
    live: LiveSetup, replayed: dict[str, object]
) -> None:
    frame = read_labelled(live.settings.labelled_dir)
    assert replayed["requests_failed"] == 0
    assert replayed["predictions"] == len(frame) > 500
    assert replayed["outcomes_joined"] == len(frame)
    assert set(frame["status"]) <= {"on_time", "delayed", "cancelled", "diverted"}
    statuses = replayed["feature_status"]
    assert isinstance(statuses, dict)
    assert statuses["origin_weather"]["fresh"] > 0.9 * len(frame)
    server_ms = replayed["server_ms"]
    assert isinstance(server_ms, dict)
    assert 0 < server_ms["p50"] <= server_ms["p99"]


def test_live_roc_auc_on_metrics_equals_sklearn_on_the_dataset(
    live: LiveSetup,
    replayed: dict[str, object],
    counted_before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
) -> None:
    samples = scrape(live.metrics_url)
    frame = read_labelled(live.settings.labelled_dir)
    labelled = frame[frame["delayed"].notna()]
    window = labelled[
        labelled["outcome_timestamp"] > frame["outcome_timestamp"].max() - timedelta(hours=24)
    ]
    (version,) = set(window["model_version"])
    live_auc = samples["loopline_live_roc_auc", (("model_version", version), ("window", "24h"))]
    offline = roc_auc_score(window["delayed"].astype(int), window["probability"])
    assert abs(live_auc - offline) <= 1e-9
    labels = (("model_version", version), ("window", "24h"))
    assert samples["loopline_live_labelled", labels] == len(window)
    excluded = (
        "loopline_outcome_joined_total",
        (("model_version", version), ("result", "excluded")),
    )
    counted = samples.get(excluded, 0) - counted_before.get(excluded, 0)
    assert counted == frame["delayed"].isna().sum()


def test_fresh_features_as_served_equal_point_in_time_features(
    live: LiveSetup, replayed: dict[str, object]
) -> None:
    """Every fresh value, the streamed aggregates of quiet hours included (the replay's clock
    ticks close their buckets as the offline rows have them), equals Feast's point in time."""
    report = check_skew(live.settings, live.spec, 1000).as_dict()
    assert report["sampled"] == min(1000, replayed["predictions"])
    features = report["features"]
    assert sum(f["compared"] for f in features.values()) > 10_000
    assert all(features[name]["compared"] > 500 for name in STREAMED)
    mismatched = {n: f["mismatched"] for n, f in features.items() if f["mismatched"]}
    assert mismatched == {}, report["worst"]


def test_a_definition_changed_after_serving_shows_as_skew(
    live: LiveSetup, replayed: dict[str, object], tmp_path: Path
) -> None:
    """The on-demand ``log_distance`` redefined offline: only it (and all of it) is skewed."""
    repo = tmp_path / "feature_repo"
    shutil.copytree(live.settings.feature_repo, repo, ignore=shutil.ignore_patterns("*.db"))
    source = repo / "on_demand.py"
    text = source.read_text()
    assert '"log_distance": [math.log1p(d)' in text
    source.write_text(text.replace("math.log1p(d)", "math.log1p(d) + 0.01"))
    changed = live.settings.model_copy(update={"feature_repo": repo, "redis_url": None})
    for module in REPO_MODULES:
        sys.modules.pop(module, None)
    apply(changed)
    report = check_skew(changed, live.spec, 300).as_dict()
    rates = {name: f["mismatch_rate"] for name, f in report["features"].items()}
    assert rates.pop("log_distance") == 1.0
    assert set(rates.values()) <= {0.0, None}  # every other definition is unchanged
