"""The Helm chart: lint, render every variant, validate each object against its schema, and check
which objects each variant holds. The values are checked in test_values.py, the predictor's
objects in test_inference_service.py."""

from __future__ import annotations

import json

import pytest

from tests.k8s import kube
from tests.k8s.conftest import VARIANTS

pytestmark = pytest.mark.k8s


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_strict_is_clean(variant: str) -> None:
    out = kube.run(
        [
            kube.HELM,
            "lint",
            "--strict",
            kube.CHART,
            "--namespace",
            kube.NAMESPACE,
            *kube.helm_args(VARIANTS[variant]),
        ]
    )
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out
    assert "[ERROR]" not in out


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_object_validates(renders: dict[str, list[kube.Doc]], variant: str) -> None:
    docs = renders[variant]
    assert docs
    for doc in docs:
        kube.validate(doc)
    kube.validate_prometheus_operator(docs)


def test_validation_catches_a_bad_object(renders: dict[str, list[kube.Doc]]) -> None:
    """The validators are not vacuous: a typo in a KServe object and in a core one both fail."""
    isvc = next(d for d in renders["default"] if d["kind"] == "InferenceService")
    broken = json.loads(json.dumps(isvc))
    broken["spec"]["predictor"]["model"]["storageURI"] = broken["spec"]["predictor"]["model"].pop(
        "storageUri"
    )
    with pytest.raises(AssertionError, match="storageURI"):
        kube.validate(broken)
    cron = next(d for d in renders["default"] if d["kind"] == "CronJob")
    broken = json.loads(json.dumps(cron))
    broken["spec"]["concurrencyPolicy"] = ["Forbid"]
    with pytest.raises(AssertionError, match="concurrencyPolicy"):
        kube.validate(broken)
    monitor = next(d for d in renders["all-flags"] if d["kind"] == "ServiceMonitor")
    broken = json.loads(json.dumps(monitor))
    broken["spec"]["endpoints"][0]["scheme"] = "gopher"
    with pytest.raises(AssertionError, match="scheme"):
        kube.validate_prometheus_operator([broken])


def _objects(docs: list[kube.Doc], *expected: tuple[str, str]) -> set[tuple[str, str]]:
    """The (kind, name) of every object of a render, once it is checked to hold ``expected``."""
    objects = {kube.key(d) for d in docs}
    assert set(expected) <= objects, f"not rendered: {sorted(set(expected) - objects)}"
    return objects


def test_default_render_holds_the_stack(renders: dict[str, list[kube.Doc]]) -> None:
    names = _objects(
        renders["default"],
        ("ServingRuntime", "loopline"),
        ("InferenceService", "flight-delay"),
        ("StatefulSet", "loopline-redis"),
        ("Service", "loopline-redis"),
        ("ConfigMap", "loopline-feast"),
        ("PersistentVolumeClaim", "loopline-data"),
        ("CronJob", "loopline-materialize"),
        ("CronJob", "loopline-retrain-flight-delay"),
        ("NetworkPolicy", "loopline-default-deny"),
        ("Pod", "loopline-test-ready"),
    )
    kinds = {kind for kind, _ in names}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "Secret", "ClusterRole", "Deployment"}
    cronjobs = {d["metadata"]["name"]: d for d in renders["default"] if d["kind"] == "CronJob"}
    assert set(cronjobs) == {
        "loopline-materialize",
        "loopline-monitor-flight-delay",
        "loopline-retrain-flight-delay",
        "loopline-rollout-flight-delay",
    }
    # Retraining runs when the monitor asks (a Job from the CronJob), the rest on schedules.
    assert cronjobs["loopline-retrain-flight-delay"]["spec"]["suspend"] is True
    assert cronjobs["loopline-materialize"]["spec"]["suspend"] is False


def test_optional_parts_follow_their_flags(renders: dict[str, list[kube.Doc]]) -> None:
    _objects(
        renders["all-flags"],
        ("ServiceMonitor", "loopline"),
        ("PrometheusRule", "loopline"),
        ("ConfigMap", "loopline-grafana-dashboard"),
        ("InferenceService", "flight-delay-challenger"),
        ("CronJob", "loopline-retrain-flight-delay-challenger"),
    )
    external = _objects(renders["knative-hpa-external-url"], ("CronJob", "loopline-materialize"))
    assert not {k for k in external if k[0] in ("NetworkPolicy", "Pod")}
    assert {k for k in external if k[0] == "StatefulSet"} == {("StatefulSet", "loopline-ingest")}
    loop = ("loopline-monitor-", "loopline-retrain-", "loopline-rollout-")
    assert not {k for k in external if k[1].startswith(loop)}, "jobs.*.enabled"
    assert not {k for k in external if k[0] in ("Role", "RoleBinding")}
    pushgateway = ("Deployment", "Service", "ServiceMonitor", "ServiceAccount", "NetworkPolicy")
    assert {k for k in _objects(renders["all-flags"]) if k[1] == "loopline-pushgateway"} == {
        (kind, "loopline-pushgateway") for kind in pushgateway
    }
    assert ("Job", "loopline-first-run") not in external, "jobs.firstRun.enabled"
    assert ("PersistentVolumeClaim", "loopline-data") not in external
    kpa = _objects(renders["knative-kpa"])
    assert ("StatefulSet", "loopline-redis") not in kpa
    assert ("NetworkPolicy", "loopline-redis") not in kpa


def test_helm_test_pod_calls_the_oip_ready_routes(renders: dict[str, list[kube.Doc]]) -> None:
    pod = next(d for d in renders["all-flags"] if d["kind"] == "Pod")
    assert kube.is_helm_test(pod)
    (container,) = pod["spec"]["containers"]
    assert container["args"] == [
        "http://flight-delay-predictor.loopline.svc.cluster.local/v2/health/ready",
        "http://flight-delay-predictor.loopline.svc.cluster.local/v2/models/flight-delay/ready",
        "http://flight-delay-challenger-predictor.loopline.svc.cluster.local/v2/health/ready",
        "http://flight-delay-challenger-predictor.loopline.svc.cluster.local"
        "/v2/models/flight-delay-challenger/ready",
    ]


def test_feast_configmap_is_the_repo_redis_config(renders: dict[str, list[kube.Doc]]) -> None:
    repo_config = (kube.ROOT / "feature_repo" / "feature_store.redis.yaml").read_text()
    assert (kube.CHART / "files" / "feature_store.yaml").read_text() == repo_config
    configmap = next(
        d for d in renders["default"] if kube.key(d) == ("ConfigMap", "loopline-feast")
    )
    assert configmap["data"]["feature_store.yaml"].strip() == repo_config.strip()


def test_notes_tell_how_to_reach_the_endpoints() -> None:
    out = kube.run(
        [kube.HELM, "install", "loopline", kube.CHART, "--dry-run=client", "-n", "loopline"]
    )
    notes = out.split("NOTES:", 1)[1]
    assert "http://flight-delay-predictor.loopline.svc.cluster.local" in notes
    assert "port-forward service/flight-delay-predictor 8080:80" in notes
    assert "/v2/health/ready" in notes
    assert "flight-delay-predictor.loopline.svc.cluster.local:8081" in notes
    assert "helm test loopline" in notes


def test_service_monitor_scrapes_the_predictor_services(renders: dict[str, list[kube.Doc]]) -> None:
    def monitor(variant: str) -> kube.Doc:
        return next(d for d in renders[variant] if kube.key(d) == ("ServiceMonitor", "loopline"))

    standard = monitor("all-flags")["spec"]
    assert standard["selector"]["matchExpressions"] == [
        {
            "key": "serving.kserve.io/inferenceservice",
            "operator": "In",
            "values": ["flight-delay", "flight-delay-challenger"],
        }
    ]
    assert standard["namespaceSelector"] == {"matchNames": ["loopline"]}
    assert [(e["port"], e["path"]) for e in standard["endpoints"]] == [("http1", "/metrics")]
    knative = monitor("knative-kpa")["spec"]
    assert knative["endpoints"][0]["port"] == "http-usermetric"
