"""The Helm chart: lint, render every variant, validate each object against its schema, and check
the values documentation, the values schema and the KServe objects' contract."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.k8s import kube
from tests.k8s.conftest import VARIANTS

pytestmark = pytest.mark.k8s

VALUES_YAML = kube.CHART / "values.yaml"
VALUES_SCHEMA = kube.CHART / "values.schema.json"


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


def test_default_render_holds_the_stack(renders: dict[str, list[kube.Doc]]) -> None:
    names = {kube.key(d) for d in renders["default"]}
    assert {
        ("ServingRuntime", "loopline"),
        ("InferenceService", "flight-delay"),
        ("StatefulSet", "loopline-redis"),
        ("Service", "loopline-redis"),
        ("ConfigMap", "loopline-feast"),
        ("PersistentVolumeClaim", "loopline-data"),
        ("CronJob", "loopline-materialize"),
        ("CronJob", "loopline-monitor-flight-delay"),
        ("CronJob", "loopline-rollout-flight-delay"),
        ("CronJob", "loopline-retrain-flight-delay"),
        ("Role", "loopline-monitor"),
        ("Role", "loopline-rollout"),
        ("NetworkPolicy", "loopline-default-deny"),
        ("Pod", "loopline-test-ready"),
    } <= names
    kinds = {kind for kind, _ in names}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "Secret", "ClusterRole"}
    retrain = next(d for d in renders["default"] if kube.key(d)[1].startswith("loopline-retrain"))
    assert retrain["spec"]["suspend"] is True
    others = [d for d in renders["default"] if d["kind"] == "CronJob" and d is not retrain]
    assert all(d["spec"]["suspend"] is False for d in others)


def test_optional_parts_follow_their_flags(renders: dict[str, list[kube.Doc]]) -> None:
    full = {kube.key(d) for d in renders["all-flags"]}
    assert {
        ("ServiceMonitor", "loopline"),
        ("PrometheusRule", "loopline"),
        ("ConfigMap", "loopline-grafana-dashboard"),
        ("InferenceService", "flight-delay-challenger"),
        ("CronJob", "loopline-monitor-flight-delay-challenger"),
    } <= full
    external = {kube.key(d) for d in renders["knative-hpa-external-url"]}
    assert not {k for k in external if k[0] in ("NetworkPolicy", "StatefulSet", "Role", "Pod")}
    assert ("PersistentVolumeClaim", "loopline-data") not in external
    kpa = {kube.key(d) for d in renders["knative-kpa"]}
    assert ("StatefulSet", "loopline-redis") not in kpa
    assert ("NetworkPolicy", "loopline-redis") not in kpa


def _env(container: kube.Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_inference_service_contract(renders: dict[str, list[kube.Doc]]) -> None:
    docs = renders["default"]
    runtime = next(d for d in docs if d["kind"] == "ServingRuntime")
    isvc = next(d for d in docs if d["kind"] == "InferenceService")
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] == "v2"
    assert model["modelFormat"] in [
        {"name": f["name"], "version": f["version"]}
        for f in runtime["spec"]["supportedModelFormats"]
    ]
    assert model["storageUri"] == "pvc://loopline-data/serving/flight-delay"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 4)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("cpu", 70)
    assert "canaryTrafficPercent" not in predictor
    assert model["resources"]["limits"] == {"cpu": "2", "memory": "3Gi"}
    env = _env(model)
    assert env["LOOPLINE_MODEL_PATH"] == "/mnt/models"
    assert env["LOOPLINE_REDIS_URL"] == "redis://loopline-redis:6379/0"
    assert env["LOOPLINE_FEATURE_REPO"] == "/var/run/loopline/feature_repo"

    full = renders["all-flags"]
    first, second = (d for d in full if d["kind"] == "InferenceService")
    assert (
        first["spec"]["predictor"]["minReplicas"],
        first["spec"]["predictor"]["maxReplicas"],
    ) == (
        2,
        6,
    )
    assert second["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/flight-delay/v2"
    assert _env(first["spec"]["predictor"]["model"])["LOOPLINE_REDIS_URL"] == (
        "redis://:$(REDIS_PASSWORD)@loopline-redis:6379/0"
    )


def test_knative_modes(renders: dict[str, list[kube.Doc]]) -> None:
    kpa = next(d for d in renders["knative-kpa"] if d["kind"] == "InferenceService")
    annotations = kpa["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "Knative"
    assert annotations["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"
    predictor = kpa["spec"]["predictor"]
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 8)
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["minReplicas"] == 0
    assert predictor["model"]["storageUri"] == "s3://loopline-models/prod/serving/flight-delay"
    assert _env(predictor["model"])["LOOPLINE_REDIS_URL"] == {
        "secretKeyRef": {"name": "loopline-external-redis", "key": "url"}
    }
    account = next(
        d for d in renders["knative-kpa"] if kube.key(d) == ("ServiceAccount", "loopline-predictor")
    )
    assert account["secrets"] == [{"name": "loopline-s3"}]
    hpa = next(d for d in renders["knative-hpa-external-url"] if d["kind"] == "InferenceService")
    assert hpa["metadata"]["annotations"]["autoscaling.knative.dev/class"] == (
        "hpa.autoscaling.knative.dev"
    )
    assert hpa["spec"]["predictor"]["scaleMetric"] == "cpu"
    assert hpa["spec"]["predictor"]["model"]["storageUri"] == (
        "pvc://shared-loopline/serving/flight-delay"
    )


def test_serving_runtime_ports_and_probes(renders: dict[str, list[kube.Doc]]) -> None:
    runtime = next(d for d in renders["default"] if d["kind"] == "ServingRuntime")
    (container,) = runtime["spec"]["containers"]
    assert container["args"] == ["serve", "--port=3000", "--grpc-port=8081"]
    assert container["ports"] == [
        {"name": "http1", "containerPort": 3000, "protocol": "TCP"},
        {"name": "h2c", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 3000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 3000}
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert runtime["spec"]["protocolVersions"] == ["v2", "grpc-v2"]
    # Knative allows one port per container: HTTP only.
    knative = next(d for d in renders["knative-kpa"] if d["kind"] == "ServingRuntime")
    (container,) = knative["spec"]["containers"]
    assert [p["name"] for p in container["ports"]] == ["http1"]
    assert container["args"] == ["serve", "--port=3000"]


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


# --- values: documented, typed ------------------------------------------------------------------


def _leaves(node: Any, schema: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted paths of the settings in values.yaml. The schema says where a setting is a map of
    settings (declared properties) rather than a free-form value (labels, NetworkPolicy peers);
    the keys of a list of models are documented once, as ``models[0].<key>``."""
    props = schema.get("properties")
    if isinstance(node, dict) and props:
        out: set[str] = set()
        for k, v in node.items():
            assert k in props, f"{prefix}.{k} is not in values.schema.json"
            out |= _leaves(v, props[k], f"{prefix}.{k}" if prefix else k)
        return out
    items = schema.get("items", {})
    if isinstance(node, list) and items.get("additionalProperties") is False:
        return {p for item in node for p in _leaves(item, items, f"{prefix}[0]")}
    return {prefix}


def _values_and_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    return yaml.safe_load(VALUES_YAML.read_text()), json.loads(VALUES_SCHEMA.read_text())


def test_every_value_is_documented() -> None:
    text = VALUES_YAML.read_text()
    documented = set(re.findall(r"^\s*## @param (\S+) \S", text, flags=re.MULTILINE))
    leaves = _leaves(*_values_and_schema())
    assert leaves - documented == set(), "values without a ## @param line"
    assert documented - leaves == set(), "## @param lines naming no value"
    assert 300 <= len(text.splitlines()) < 1000


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    if (
        schema.get("type") == "array"
        and schema.get("items", {}).get("additionalProperties") is False
    ):
        return _schema_paths(schema["items"], f"{prefix}[0]")
    props = schema.get("properties")
    if not props:
        return {prefix}
    out: set[str] = set()
    for k, v in props.items():
        out |= _schema_paths(v, f"{prefix}.{k}" if prefix else k)
    return out


def test_values_schema_matches_values() -> None:
    values, schema = _values_and_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(values, schema)
    # Every value has a schema entry and every schema entry a value (global is Helm's own).
    assert _leaves(values, schema) == _schema_paths(schema) - {"global"}


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["predictor.autoscaling.class=bogus"], "class"),
        (["kserve.deploymentMode=Serverless"], "deploymentMode"),
        (["image.pullPolicy=Sometimes"], "pullPolicy"),
        (["typo=1"], "typo"),
        (["predictor.autoscaling.cpuUtilization=150"], "cpuUtilization"),
        (["securityContext.runAsUser=0"], "runAsUser"),
        (["predictor.autoscaling.class=kpa"], "needs kserve.deploymentMode=Knative"),
        (["modelStorage.type=s3"], "needs modelStorage.s3.bucket"),
        (["redis.enabled=false"], "externalRedis.url or externalRedis.existingSecret"),
    ],
)
def test_invalid_values_are_refused(sets: list[str], message: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        kube.helm_template(sets=sets)


def test_canary_needs_knative(tmp_path: Path) -> None:
    values = tmp_path / "canary.yaml"
    values.write_text(
        yaml.safe_dump(
            {"models": [{"name": "flight-delay", "spec": "x", "canaryTrafficPercent": 5}]}
        )
    )
    with pytest.raises(AssertionError, match="canaryTrafficPercent needs"):
        kube.run([kube.HELM, "template", "x", kube.CHART, "--values", values])


def test_service_monitor_scrapes_the_predictor_services(renders: dict[str, list[kube.Doc]]) -> None:
    def monitor(variant: str) -> kube.Doc:
        return next(d for d in renders[variant] if d["kind"] == "ServiceMonitor")

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
